"""Fixtures for area targeting: located subscribers, named areas, the fake provider behind the real Twilio SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from tests.provider_env import UNLIMITED_RATES, use_fake_provider


def square(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> list[list[float]]:
    """A closed counter-clockwise ring."""
    return [[min_lon, min_lat], [max_lon, min_lat], [max_lon, max_lat], [min_lon, max_lat], [min_lon, min_lat]]


@pytest.fixture
def fake(fake: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:  # noqa: F811  (tests/conftest.py)
    """The module's fake provider server with every adapter pointed at it (SMS through the real Twilio SDK)."""
    return use_fake_provider(fake, monkeypatch, webhook=False, **UNLIMITED_RATES)


@pytest.fixture
def drain(db_url: str) -> Callable[..., Any]:
    """Run a worker until nothing is planning, pending or in flight."""

    def run(max_seconds: float = 30) -> Any:
        from broadcaster.delivery.worker import Worker
        from broadcaster.settings import get_settings

        worker = Worker(get_settings())
        asyncio.run(worker.run(until_idle=True, max_seconds=max_seconds))
        return worker

    return run


@pytest.fixture
def located(client, admin) -> Callable[..., int]:
    """Create a subscriber through the API: `located(name, lat=, lon=, areas=)`; phone +1555200NNNN."""
    counter = {"n": 0}

    def add(name: str, lat: float | None = None, lon: float | None = None, areas: list[str] | None = None) -> int:
        counter["n"] += 1
        body: dict[str, Any] = {"phone": f"+1555200{counter['n']:04d}", "name": name}
        if lat is not None:
            body |= {"lat": lat, "lon": lon}
        if areas:
            body["areas"] = areas
        resp = client.post("/v1/subscribers", headers=admin, json=body)
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    return add


@pytest.fixture
def sms_category(client, admin) -> dict:
    resp = client.post(
        "/v1/categories",
        headers=admin,
        json={"slug": "water", "name": "Water", "channels": {"major": ["twilio-sms"], "minor": ["twilio-sms"]}},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def draft(client, admin, sms_category) -> Callable[..., dict]:
    """Create an incident in `water` with one draft update carrying `area`; returns the update JSON."""

    def make(area: dict[str, Any] | None, **update: Any) -> dict:
        inc = client.post(
            "/v1/incidents", headers=admin, json={"title": "Water main", "category": "water", "severity": "major"}
        )
        assert inc.status_code == 201, inc.text
        body = {"body": "Water main break on 5th Ave.", "summary": "Water main break"} | update
        if area is not None:
            body["area"] = area
        upd = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=admin, json=body)
        assert upd.status_code == 201, upd.text
        return upd.json()

    return make


@pytest.fixture
def preview_count(client, admin) -> Callable[[int], int]:
    """Recipients the preview shows on twilio-sms for the update."""

    def count(update_id: int) -> int:
        resp = client.post(f"/v1/updates/{update_id}/preview", headers=admin)
        assert resp.status_code == 200, resp.text
        [sms] = [c for c in resp.json()["channels"] if c["channel"] == "twilio-sms"]
        return int(sms["recipients"])

    return count


@pytest.fixture
def sent_to(client, admin, fake, drain) -> Callable[[int], list[str]]:
    """Publish the update, run the worker, and return the phone numbers the fake Twilio received (sorted)."""

    def go(update_id: int) -> list[str]:
        resp = client.post(f"/v1/updates/{update_id}/publish", headers=admin)
        assert resp.status_code == 200, resp.text
        drain()
        requests = [r for r in fake.requests("twilio") if r.path.endswith("/Messages.json") and r.method == "POST"]
        return sorted(str(r.form_value("To")) for r in requests)

    return go
