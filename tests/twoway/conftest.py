"""Fixtures for two-way updates: the fake provider, three subscribers, a published question."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.approving import confirm
from tests.delivery.conftest import add_subscribers, drain  # noqa: F401  (fixtures reused)
from tests.provider_env import UNLIMITED_RATES, use_fake_provider

PHONES = ["+15550000001", "+15550000002", "+15550000003"]
EMAILS = ["s0001@example.org", "s0002@example.org", "s0003@example.org"]
QUESTION = {
    "text": "Are you safe?",
    "options": [
        {"label": "I'm safe", "keywords": ["SAFE", "OK", "YES"]},
        {"label": "I need help", "needs_help": True, "keywords": ["SOS"]},
    ],
}


@pytest.fixture
def fake(fake, db_url, monkeypatch):  # noqa: F811  (the module's fake provider, tests/conftest.py)
    return use_fake_provider(
        fake,
        monkeypatch,
        webhook=True,
        **UNLIMITED_RATES,
        SECRET_KEY="responses-test-secret",
        APPROVAL_SEVERITY="none",
    )


def new_update(client, who, *, channels: list[str], question: dict[str, Any] | None = None) -> dict[str, Any]:
    inc = client.post(
        "/v1/incidents", headers=who, json={"title": "Flooding", "category": "emergency", "severity": "major"}
    )
    assert inc.status_code == 201, inc.text
    body: dict[str, Any] = {"body": "Flooding in the north district.", "summary": "Flooding (north)"}
    body["channels"] = channels
    body["question"] = question if question is not None else QUESTION
    resp = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=who, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def asked(client, admin, fake, drain, add_subscribers, emergency_category) -> dict[str, Any]:  # noqa: F811
    """Three subscribers asked "Are you safe?" by SMS, voice, e-mail and webhook; everything sent."""
    add_subscribers(3, name="Ann")
    update = new_update(client, admin, channels=["twilio-sms", "twilio-voice", "sendgrid", "webhook"])
    resp = client.post(f"/v1/updates/{update['id']}/publish", json=confirm(update["id"]), headers=admin)
    assert resp.status_code == 200, resp.text
    drain(max_seconds=60)
    return update


def twilio_post(client, path_and_query: str, params: dict[str, str], *, sign: bool = True):
    """POST a Twilio webhook, signed with the auth token the way Twilio signs (or not)."""
    from twilio.request_validator import RequestValidator

    from broadcaster.settings import get_settings

    token = get_settings().twilio_auth_token
    assert token is not None
    headers = {}
    if sign:
        sig = RequestValidator(token.get_secret_value()).compute_signature(f"http://testserver{path_and_query}", params)
        headers["X-Twilio-Signature"] = sig
    return client.post(path_and_query, data=params, headers=headers)


_sid = {"n": 0}


def sms(client, sender: str, body: str, sid: str | None = None, *, sign: bool = True):
    if sid is None:
        _sid["n"] += 1
        sid = f"SMin{_sid['n']:06d}"
    params = {"From": sender, "To": "+15005550006", "Body": body, "MessageSid": sid}
    return twilio_post(client, "/v1/webhooks/twilio/inbound", params, sign=sign)


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"
