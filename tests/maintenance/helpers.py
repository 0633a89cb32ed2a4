"""Helpers of the maintenance tests: provider arrivals, draining the worker, a window's request body."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

#: the tests' "now" (the clock is pinned here, then moved)
T0 = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)

#: follows the "platform" category / follows the "api" service / follows neither (another category)
CATEGORY_FAN = "+15550000001"
API_FOLLOWER = "+15550000002"
OUTSIDER = "+15550000003"


def sms(fake: Any) -> list[tuple[str, str]]:
    """(To, Body) of every SMS that reached the fake Twilio, in arrival order."""
    return [
        (r.form_value("To") or "", r.form_value("Body") or "")
        for r in fake.requests("twilio")
        if r.method == "POST" and r.path.endswith("/Messages.json")
    ]


def drain(max_seconds: float = 60) -> None:
    """Run a delivery worker until nothing is planning, pending or in flight."""
    from broadcaster.delivery.worker import Worker
    from broadcaster.settings import get_settings

    asyncio.run(Worker(get_settings()).run(until_idle=True, max_seconds=max_seconds))


def window_body(**overrides: Any) -> dict[str, Any]:
    """A window 5 h after T0, lasting 1 h, on api and web, with every notice (reminder 2 h before)."""
    body: dict[str, Any] = {
        "title": "Database upgrade",
        "message": "The API may answer slowly.",
        "services": ["api", "web"],
        "category": "platform",
        "starts_at": "2026-12-10T13:00:00Z",
        "ends_at": "2026-12-10T14:00:00Z",
        "notify": {"at_creation": True, "hours_before": [2], "at_start": True, "at_end": True},
    }
    return body | overrides


def service_states(client: Any, headers: dict[str, str]) -> dict[str, str]:
    resp = client.get("/v1/services", headers=headers)
    assert resp.status_code == 200, resp.text
    items = resp.json()
    items = items["items"] if isinstance(items, dict) else items
    return {s["slug"]: s["state"] for s in items}
