"""Test sends (issue 11): only the test group, on every channel, visibly TEST, never waiting for approval.

Counted at the fake provider, through the real Twilio, SendGrid, X and webhook adapters. Subscribers 1-3 are
the public, 4-5 the test group.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.provider_env import UNLIMITED_RATES, use_fake_provider

PUBLIC = ["+15550000001", "+15550000002", "+15550000003"]
TESTERS = ["+15550000004", "+15550000005"]
PUBLIC_EMAILS = ["s0001@example.org", "s0002@example.org", "s0003@example.org"]
TESTER_EMAILS = ["s0004@example.org", "s0005@example.org"]
CHANNELS = ["twilio-sms", "twilio-voice", "sendgrid", "x", "webhook", "banner"]


@pytest.fixture
def fake(fake, db_url, monkeypatch):  # noqa: F811  (the module's fake provider, tests/conftest.py)
    return use_fake_provider(fake, monkeypatch, webhook=True, **UNLIMITED_RATES)


@pytest.fixture
def audience(add_subscribers) -> None:
    add_subscribers(3)
    add_subscribers(2, test_group=True)


def _sms(fake) -> list[tuple[str, str]]:
    return [
        (r.form_value("To") or "", r.form_value("Body") or "")
        for r in fake.requests("twilio")
        if r.method == "POST" and r.path.endswith("/Messages.json")
    ]


def _calls(fake) -> list[tuple[str, str]]:
    return [
        (r.form_value("To") or "", r.form_value("Twiml") or "")
        for r in fake.requests("twilio")
        if r.method == "POST" and r.path.endswith("/Calls.json")
    ]


def _emails(fake) -> list[dict[str, Any]]:
    out = []
    for r in fake.requests("sendgrid"):
        if r.method != "POST" or not r.path.endswith("/mail/send"):
            continue
        body = r.json
        for p in body["personalizations"]:
            for to in p["to"]:
                subject = p.get("subject") or body.get("subject")
                out.append({"to": to["email"], "subject": subject, "content": body.get("content", [])})
    return out


def _posts(fake) -> list[Any]:
    return [r for r in fake.requests("x") if r.method == "POST"] + [
        r for r in fake.requests("webhook") if r.method == "POST"
    ]


def _new_update(client, who, incident_id: int, **fields: Any) -> dict[str, Any]:
    body = {"body": "Siren drill at noon in the north district.", "summary": "Siren drill at noon"} | fields
    resp = client.post(f"/v1/incidents/{incident_id}/updates", headers=who, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def _incident(client, who, severity: str = "critical") -> int:
    body = {"title": "Siren drill", "category": "emergency", "severity": severity}
    resp = client.post("/v1/incidents", headers=who, json=body)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def test_a_test_send_reaches_only_the_test_group_on_every_channel(
    client, admin, auth, fake, drain, audience, emergency_category, monkeypatch
):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_AUDIENCE_THRESHOLD", "1")  # would need approval if it were live
    get_settings.cache_clear()
    editor = auth("read", "write")  # a test send needs no publish scope, and no second person
    update = _new_update(client, admin, _incident(client, admin), test=True, channels=CHANNELS)
    resp = client.post(f"/v1/updates/{update['id']}/publish", headers=editor)
    assert resp.status_code == 200, resp.text  # never 202: a test send does not wait for approval
    assert resp.json()["approval_required"] is False
    bid = resp.json()["broadcast_id"]
    drain(max_seconds=60)

    sms, calls, emails = _sms(fake), _calls(fake), _emails(fake)
    assert sorted(to for to, _ in sms) == TESTERS
    assert sorted(to for to, _ in calls) == TESTERS
    assert sorted(e["to"] for e in emails) == TESTER_EMAILS
    assert _posts(fake) == []  # X and the webhook have no test group: a test never posts publicly
    assert all(body.startswith("[TEST] ") for _, body in sms)
    assert all("TEST" in twiml for _, twiml in calls)
    for email in emails:
        assert email["subject"].startswith("[TEST] ")
        assert all("TEST" in part["value"] for part in email["content"])

    report = client.get(f"/v1/broadcasts/{bid}", headers=admin).json()
    assert report["test"] is True and report["state"] == "done"
    assert set(report["skipped"]) == {"x", "webhook", "banner"}
    assert all("test group" in reason for reason in report["skipped"].values())
    banner = client.get("/v1/banner").json()
    assert "Siren drill" not in str(banner)


def test_a_test_correction_of_a_live_update_never_reaches_nor_cancels_the_public(
    client, admin, fake, drain, audience, emergency_category
):
    from broadcaster.db import session_scope
    from broadcaster.delivery.audience import audience_counts
    from broadcaster.models import Update

    incident = _incident(client, admin, severity="minor")
    live = _new_update(client, admin, incident, body="Water is off in the north.", channels=["twilio-sms"])
    published = client.post(f"/v1/updates/{live['id']}/publish", headers=admin)
    assert published.status_code == 200, published.text
    live_bid = published.json()["broadcast_id"]
    drain(max_seconds=60)
    assert sorted(to for to, _ in _sms(fake)) == PUBLIC + TESTERS
    fake.reset()

    for kind in ("correction", "cancel"):
        test = _new_update(client, admin, incident, kind=kind, corrects=live["id"], test=True)
        with session_scope() as session:  # what preview and ETA count: the test group on the original's channels
            assert audience_counts(session, session.get(Update, test["id"])) == {"twilio-sms": 2}
        resp = client.post(f"/v1/updates/{test['id']}/publish", headers=admin)
        assert resp.status_code == 200, resp.text
        drain(max_seconds=60)
        sent = _sms(fake)
        assert sorted(to for to, _ in sent) == TESTERS, kind
        assert all(body.startswith("[TEST] ") for _, body in sent)
        fake.reset()
    # the test cancel did not cancel the live broadcast
    assert client.get(f"/v1/broadcasts/{live_bid}", headers=admin).json()["state"] == "done"


def test_a_test_correction_skips_whoever_left_the_test_group(client, admin, fake, drain, audience, emergency_category):
    incident = _incident(client, admin, severity="minor")
    test = _new_update(client, admin, incident, test=True, channels=["twilio-sms"])
    assert client.post(f"/v1/updates/{test['id']}/publish", headers=admin).status_code == 200
    drain(max_seconds=60)
    assert sorted(to for to, _ in _sms(fake)) == TESTERS
    fake.reset()
    [leaver] = client.get("/v1/subscribers", headers=admin, params={"q": TESTERS[0]}).json()["items"]
    assert client.patch(f"/v1/subscribers/{leaver['id']}", headers=admin, json={"test_group": False}).status_code == 200

    fix = _new_update(client, admin, incident, kind="correction", corrects=test["id"], test=True)
    assert client.post(f"/v1/updates/{fix['id']}/publish", headers=admin).status_code == 200
    drain(max_seconds=60)
    assert [to for to, _ in _sms(fake)] == TESTERS[1:]


def test_the_preview_of_a_test_send_counts_only_the_test_group(client, admin, fake, audience, emergency_category):
    update = _new_update(client, admin, _incident(client, admin), test=True, channels=CHANNELS)
    preview = client.post(f"/v1/updates/{update['id']}/preview", headers=admin).json()
    by = {c["channel"]: c for c in preview["channels"]}
    assert {name: by[name]["recipients"] for name in CHANNELS} == {
        "twilio-sms": 2,
        "twilio-voice": 2,
        "sendgrid": 2,
        "x": 0,
        "webhook": 0,
        "banner": 0,
    }
    for name in ("x", "webhook", "banner"):
        assert any("test group" in w for w in by[name]["warnings"])
    for name in CHANNELS:
        assert "TEST" in (by[name]["text"] or ""), name
    assert by["sendgrid"]["subject"].startswith("[TEST] ") and "TEST" in by["sendgrid"]["html"]


def test_the_html_email_keeps_the_marker_when_a_template_drops_it(tmp_path, monkeypatch):
    from broadcaster.rendering.compose import _ensure_html_marker

    assert _ensure_html_marker("<html><body><p>Hi</p></body></html>", "[TEST] ").startswith(
        '<html><body><p style="font-weight:bold">[TEST]</p>'
    )
    assert _ensure_html_marker("<p>[TEST] Hi</p>", "[TEST] ") == "<p>[TEST] Hi</p>"
    assert _ensure_html_marker("<p>Hi</p>", "") == "<p>Hi</p>"
