"""The send hold and Stop (issue 21): SEND_HOLD_SECONDS between publishing or approving and the first provider call,
durable across worker restarts, cancelled by Stop before anything reaches a provider; the typed confirmation of a
critical send. Counted at the fake provider server, through the real Twilio adapter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tests.provider_env import UNLIMITED_RATES, use_fake_provider

PEOPLE = ["+15550000001", "+15550000002", "+15550000003"]
TESTERS = ["+15550000004"]


@pytest.fixture
def fake(fake, db_url, monkeypatch):  # noqa: F811  (the module's fake provider, tests/conftest.py)
    return use_fake_provider(fake, monkeypatch, webhook=False, SEND_HOLD_SECONDS="3600", **UNLIMITED_RATES)


@pytest.fixture
def people(add_subscribers) -> None:
    add_subscribers(3)
    add_subscribers(1, test_group=True)


def _texts(fake) -> list[str]:
    return sorted(
        r.form_value("To") or ""
        for r in fake.requests("twilio")
        if r.method == "POST" and r.path.endswith("/Messages.json")
    )


def _publish(client, who, *, severity: str = "minor", title: str = "Water outage", **update: Any) -> dict[str, Any]:
    inc = client.post(
        "/v1/incidents", headers=who, json={"title": title, "category": "emergency", "severity": severity}
    )
    assert inc.status_code == 201, inc.text
    body = {"body": "Water is off in the north district.", "channels": ["twilio-sms"]} | update
    upd = client.post(f"/v1/incidents/{inc.json()['id']}/updates", headers=who, json=body)
    assert upd.status_code == 201, upd.text
    pub = client.post(f"/v1/updates/{upd.json()['id']}/publish", headers=who)
    assert pub.status_code in (200, 202), pub.text
    return pub.json() | {"etag": pub.headers.get("ETag")}


def _plan_once() -> int | None:
    """One worker's look for broadcasts to plan (what a freshly restarted worker does first)."""
    from broadcaster.delivery.worker import Worker
    from broadcaster.settings import get_settings

    Worker(get_settings()).housekeeping()
    return None


def _end_hold(broadcast_id: int) -> None:
    """Move the broadcast's hold into the past (as if its SEND_HOLD_SECONDS had run out)."""
    from broadcaster.db import session_scope
    from broadcaster.models import utcnow
    from broadcaster.models.delivery import Broadcast

    with session_scope() as session:
        row = session.get(Broadcast, broadcast_id)
        assert row is not None
        row.not_before = utcnow() - timedelta(seconds=1)


def test_a_live_send_waits_out_the_hold_even_across_worker_restarts(
    client, admin, fake, drain, people, emergency_category
):
    published = _publish(client, admin)
    bid = published["broadcast_id"]
    report = client.get(f"/v1/broadcasts/{bid}", headers=admin).json()
    assert report["state"] == "planning" and report["not_before"] is not None
    for _ in range(2):  # two workers come and go during the hold: nothing is planned, nothing sent
        _plan_once()
        report = client.get(f"/v1/broadcasts/{bid}", headers=admin).json()
        assert report["state"] == "planning" and report["total"] == 0
    assert _texts(fake) == []

    _end_hold(bid)
    drain(max_seconds=60)
    assert _texts(fake) == PEOPLE + TESTERS
    assert client.get(f"/v1/broadcasts/{bid}", headers=admin).json()["state"] == "done"


def test_a_short_hold_ends_by_itself(client, admin, fake, drain, people, emergency_category, monkeypatch):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("SEND_HOLD_SECONDS", "0.5")
    get_settings.cache_clear()
    bid = _publish(client, admin)["broadcast_id"]
    assert client.get(f"/v1/broadcasts/{bid}", headers=admin).json()["not_before"] is not None
    drain(max_seconds=60)  # the worker plans it once the hold is over
    assert _texts(fake) == PEOPLE + TESTERS


def test_stop_during_the_hold_sends_nothing(client, admin, auth, fake, drain, people, emergency_category):
    bid = _publish(client, admin)["broadcast_id"]
    editor = auth("read", "write")
    assert client.post(f"/v1/broadcasts/{bid}/stop", headers=editor).status_code == 403

    stopped = client.post(f"/v1/broadcasts/{bid}/stop", headers=admin)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"id": bid, "state": "cancelled", "sent": 0}
    _end_hold(bid)
    drain(max_seconds=60)
    assert _texts(fake) == []  # nothing reached the provider
    report = client.get(f"/v1/broadcasts/{bid}", headers=admin).json()
    assert report["state"] == "cancelled" and report["total"] == 0
    again = client.post(f"/v1/broadcasts/{bid}/stop", headers=admin)
    assert again.status_code == 409 and again.json()["field"] == "broadcast_id"
    entries = client.get("/v1/audit", headers=admin, params={"action": "broadcast.stop"}).json()["items"]
    assert [(e["target_id"], e["after"]["state"]) for e in entries] == [(str(bid), "cancelled")]


def test_stop_after_the_hold_is_409_and_cancel_still_works(
    client, admin, fake, drain, people, emergency_category, monkeypatch
):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("SEND_HOLD_SECONDS", "0")
    get_settings.cache_clear()
    bid = _publish(client, admin)["broadcast_id"]
    assert client.get(f"/v1/broadcasts/{bid}", headers=admin).json()["not_before"] is None
    _plan_once()  # planned: the deliveries exist, a worker may hand them over any moment
    late = client.post(f"/v1/broadcasts/{bid}/stop", headers=admin)
    assert late.status_code == 409 and late.json()["error"] == "hold_over", late.text
    assert client.post(f"/v1/broadcasts/{bid}/cancel", headers=admin).json()["cancelled"] == 4


def test_a_test_send_skips_the_hold(client, admin, fake, drain, people, emergency_category):
    bid = _publish(client, admin, test=True)["broadcast_id"]
    assert client.get(f"/v1/broadcasts/{bid}", headers=admin).json()["not_before"] is None
    drain(max_seconds=60)
    assert _texts(fake) == TESTERS


def test_a_critical_approval_needs_the_typed_title(client, make_key, fake, drain, people, emergency_category):
    alice = {"Authorization": f"Bearer {make_key('admin', name='alice')}"}
    bob = {"Authorization": f"Bearer {make_key('admin', name='bob')}"}
    asked = _publish(client, alice, severity="critical", title="Gas leak  Main Street")
    assert asked["approval_required"] is True
    uid, approve = asked["update"]["id"], {**bob, "If-Match": asked["etag"]}

    missing = client.post(f"/v1/updates/{uid}/approve", headers=approve)
    assert missing.status_code == 422 and missing.json()["field"] == "confirm", missing.text
    wrong = client.post(f"/v1/updates/{uid}/approve", headers=approve, json={"confirm": "Gas leak"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "confirm", wrong.text
    assert client.get(f"/v1/updates/{uid}", headers=bob).json()["state"] == "pending_approval"  # nothing changed

    ok = client.post(f"/v1/updates/{uid}/approve", headers=approve, json={"confirm": " gas leak main street"})
    assert ok.status_code == 200, ok.text
    bid = ok.json()["broadcast_id"]
    assert client.get(f"/v1/broadcasts/{bid}", headers=bob).json()["not_before"] is not None  # held too
    assert client.post(f"/v1/broadcasts/{bid}/stop", headers=bob).status_code == 200
    _end_hold(bid)
    drain(max_seconds=60)
    assert _texts(fake) == []


def test_a_critical_publish_without_approval_needs_the_typed_title(
    client, admin, fake, people, emergency_category, monkeypatch
):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("APPROVAL_SEVERITY", "none")
    get_settings.cache_clear()
    inc = client.post(
        "/v1/incidents", headers=admin, json={"title": "Flood", "category": "emergency", "severity": "critical"}
    ).json()
    upd = client.post(f"/v1/incidents/{inc['id']}/updates", headers=admin, json={"body": "Leave now."}).json()
    refused = client.post(f"/v1/updates/{upd['id']}/publish", headers=admin)
    assert refused.status_code == 422 and refused.json()["field"] == "confirm"
    assert client.get(f"/v1/updates/{upd['id']}", headers=admin).json()["state"] == "draft"
    ok = client.post(f"/v1/updates/{upd['id']}/publish", headers=admin, json={"confirm": "FLOOD"})
    assert ok.status_code == 200, ok.text
