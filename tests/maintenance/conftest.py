"""Fixtures for maintenance tests: the controllable clock, the fake provider (real Twilio SDK), a routing-map
entry whose info updates go out by SMS, two services and subscribers who follow them (or not)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from tests.provider_env import UNLIMITED_RATES, use_fake_provider

from .helpers import API_FOLLOWER, CATEGORY_FAN, OUTSIDER, T0


@pytest.fixture
def clock_at() -> Iterator[Callable[[datetime], None]]:
    from broadcaster import clock

    clock.set_now(T0)
    yield clock.set_now
    clock.set_now(None)


@pytest.fixture
def fake(fake: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811  (tests/conftest.py)
    return use_fake_provider(fake, monkeypatch, webhook=True, **UNLIMITED_RATES, APPROVAL_AUDIENCE_THRESHOLD="0")


@pytest.fixture
def world(client: Any, admin: dict[str, str]) -> dict[str, Any]:
    """Category `platform` (info -> SMS, reach either), `billing` (unrelated), services api and web, and three
    subscribers: one of the category, one following `api`, one of `billing` only."""
    for slug, name in (("platform", "Platform"), ("billing", "Billing")):
        resp = client.post(
            "/v1/categories",
            headers=admin,
            json={"slug": slug, "name": name, "channels": {"info": ["twilio-sms"], "major": ["twilio-sms"]}},
        )
        assert resp.status_code == 201, resp.text
    for slug, name in (("api", "Public API"), ("web", "Website")):
        resp = client.post("/v1/services", headers=admin, json={"slug": slug, "name": name})
        assert resp.status_code == 201, resp.text
    for phone, fields in (
        (CATEGORY_FAN, {"categories": ["platform"]}),
        (API_FOLLOWER, {"categories": ["billing"], "services": ["api"]}),
        (OUTSIDER, {"categories": ["billing"]}),
    ):
        resp = client.post("/v1/subscribers", headers=admin, json={"phone": phone, **fields})
        assert resp.status_code == 201, resp.text
    return {"category": "platform"}
