"""Maintenance notices go out at the right times, exactly once, through the real Twilio SDK to the fake provider.

The clock is pinned and moved (broadcaster.clock), never slept on. Counted at the fake provider.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from .helpers import (
    API_FOLLOWER,
    CATEGORY_FAN,
    T0,
    drain,
    service_states,
    sms,
    window_body,
)

TOLD = sorted([CATEGORY_FAN, API_FOLLOWER])


def _runner(db_url: str) -> Any:
    """A fresh runner on its own engine (a restarted worker process)."""
    from broadcaster.db import make_engine
    from broadcaster.maintenance.runner import MaintenanceRunner

    return MaintenanceRunner(engine=make_engine(db_url), poll=0.05)


def _new_sms(fake: Any, seen: int) -> list[tuple[str, str]]:
    return sms(fake)[seen:]


def test_notices_go_out_at_their_times_once_across_a_restart(client, admin, world, fake, clock_at, db_url):
    resp = client.post("/v1/maintenance", headers=admin, json=window_body())
    assert resp.status_code == 201, resp.text
    window = resp.json()
    assert window["state"] == "scheduled"
    planned = sorted((n["kind"], n["due_at"]) for n in window["notices"])
    assert planned == [
        ("completed", "2026-12-10T14:00:00Z"),
        ("created", "2026-12-10T08:00:00Z"),
        ("reminder", "2026-12-10T11:00:00Z"),
        ("started", "2026-12-10T13:00:00Z"),
    ]

    runner = _runner(db_url)
    # at creation: the "created" notice, to the category's subscriber and the api follower, not the outsider
    assert runner.run_once() == {"sent": 1, "skipped": 0, "failed": 0}
    assert runner.run_once() == {"sent": 0, "skipped": 0, "failed": 0}
    drain()
    got = _new_sms(fake, 0)
    assert sorted(to for to, _ in got) == TOLD
    assert all("Scheduled maintenance: Database upgrade" in body for _, body in got)
    seen = len(sms(fake))

    # two hours on: nothing is due yet (the reminder is at 11:00)
    clock_at(T0 + timedelta(hours=2, minutes=59))
    assert runner.run_once()["sent"] == 0
    drain()
    assert _new_sms(fake, seen) == []

    # 11:00: the reminder, two hours before
    clock_at(T0 + timedelta(hours=3))
    assert runner.run_once()["sent"] == 1
    drain()
    got = _new_sms(fake, seen)
    assert sorted(to for to, _ in got) == TOLD
    assert all("Maintenance in 2 hours: Database upgrade" in body for _, body in got)
    seen = len(sms(fake))
    assert service_states(client, admin) == {"api": "operational", "web": "operational"}

    # the worker stops; the start (13:00) falls due while it is down; a new process comes back at 13:20
    runner.engine.dispose()
    clock_at(T0 + timedelta(hours=5, minutes=20))
    restarted = _runner(db_url)
    assert restarted.run_once() == {"sent": 1, "skipped": 0, "failed": 0}
    assert restarted.run_once()["sent"] == 0
    assert _runner(db_url).run_once()["sent"] == 0  # and a third process finds nothing left either
    drain()
    got = _new_sms(fake, seen)
    assert sorted(to for to, _ in got) == TOLD
    assert all("Maintenance in progress: Database upgrade" in body for _, body in got)
    seen = len(sms(fake))
    assert service_states(client, admin) == {"api": "maintenance", "web": "maintenance"}
    assert client.get(f"/v1/maintenance/{window['id']}", headers=admin).json()["state"] == "in_progress"

    # 14:00: the end; the services go back
    clock_at(T0 + timedelta(hours=6))
    assert restarted.run_once()["sent"] == 1
    drain()
    got = _new_sms(fake, seen)
    assert sorted(to for to, _ in got) == TOLD
    assert all("Maintenance completed: Database upgrade" in body for _, body in got)
    assert service_states(client, admin) == {"api": "operational", "web": "operational"}
    final = client.get(f"/v1/maintenance/{window['id']}", headers=admin).json()
    assert final["state"] == "completed"
    assert sorted((n["kind"], n["state"]) for n in final["notices"]) == [
        ("completed", "sent"),
        ("created", "sent"),
        ("reminder", "sent"),
        ("started", "sent"),
    ]
    assert len(sms(fake)) == 8  # 4 notices x 2 subscribers, nothing twice
    incident = client.get(f"/v1/incidents/{final['incident_id']}", headers=admin).json()
    assert incident["status"] == "resolved" and incident["severity"] == "info"

    # the history of each service names the window
    from broadcaster.db import session_scope
    from broadcaster.models.services import ServiceStateChange

    with session_scope() as session:
        rows = session.execute(
            select(ServiceStateChange.state, ServiceStateChange.maintenance_id).where(
                ServiceStateChange.maintenance_id.is_not(None)
            )
        ).all()
    assert sorted(rows) == sorted([("maintenance", window["id"])] * 2 + [("operational", window["id"])] * 2)


def test_a_stale_reminder_is_skipped_after_the_worker_was_down_past_the_start(
    client, admin, world, fake, clock_at, db_url
):
    resp = client.post("/v1/maintenance", headers=admin, json=window_body())
    assert resp.status_code == 201, resp.text
    wid = resp.json()["id"]
    assert _runner(db_url).run_once()["sent"] == 1  # created
    # down from 08:00 to 13:30: the reminder (11:00) is stale, the start (13:00) still goes out
    clock_at(T0 + timedelta(hours=5, minutes=30))
    assert _runner(db_url).run_once() == {"sent": 1, "skipped": 1, "failed": 0}
    drain()
    bodies = [body for _, body in sms(fake)]
    assert sum("Maintenance in" in b and "progress" not in b for b in bodies) == 0
    assert sum("Maintenance in progress" in b for b in bodies) == 2
    notices = {n["kind"]: n for n in client.get(f"/v1/maintenance/{wid}", headers=admin).json()["notices"]}
    assert notices["reminder"]["state"] == "skipped" and "stale" in notices["reminder"]["reason"]
    assert notices["started"]["state"] == "sent"


def test_silent_moments_publish_but_send_nothing(client, admin, world, fake, clock_at, db_url):
    body = window_body(notify={"at_creation": False, "hours_before": [], "at_start": False, "at_end": False})
    resp = client.post("/v1/maintenance", headers=admin, json=body)
    assert resp.status_code == 201, resp.text
    runner = _runner(db_url)
    assert runner.run_once()["sent"] == 1  # the created notice: public surfaces only
    clock_at(T0 + timedelta(hours=5))
    assert runner.run_once()["sent"] == 1
    assert service_states(client, admin) == {"api": "maintenance", "web": "maintenance"}
    clock_at(T0 + timedelta(hours=6))
    assert runner.run_once()["sent"] == 1
    drain()
    assert sms(fake) == []
    assert service_states(client, admin) == {"api": "operational", "web": "operational"}


def test_two_runners_at_once_send_each_notice_once(client, admin, world, fake, clock_at, db_url):
    """Several processes race for the same due notices (on PostgreSQL: SKIP LOCKED; on SQLite: the write lock)."""
    ids = []
    for i in range(6):
        resp = client.post("/v1/maintenance", headers=admin, json=window_body(title=f"Upgrade {i}"))
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    runners = [_runner(db_url) for _ in range(3)]
    results: list[dict[str, int]] = []
    barrier = threading.Barrier(len(runners))

    def go(r: Any) -> None:
        barrier.wait()
        results.append(r.run_once())

    threads = [threading.Thread(target=go, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(r["failed"] for r in results) == 0
    assert sum(r["sent"] for r in results) == 6
    assert sum(r["sent"] for r in (r.run_once() for r in runners)) == 0

    from broadcaster.db import session_scope
    from broadcaster.models import Update
    from broadcaster.models.delivery import Broadcast

    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Update)) == 6
        assert session.scalar(select(func.count()).select_from(Broadcast)) == 6
    drain()
    got = sms(fake)
    assert len(got) == 12  # 6 windows x 2 subscribers
    assert len(set(got)) == 12


def test_move_and_cancel_reach_those_who_were_told(client, admin, world, fake, clock_at, db_url):
    resp = client.post("/v1/maintenance", headers=admin, json=window_body())
    wid = resp.json()["id"]
    runner = _runner(db_url)
    assert runner.run_once()["sent"] == 1
    drain()
    assert sorted(to for to, _ in sms(fake)) == TOLD
    seen = len(sms(fake))
    # someone subscribes after the first notice: they were not told, so a change is not for them
    late = client.post("/v1/subscribers", headers=admin, json={"phone": "+15550000009", "categories": ["platform"]})
    assert late.status_code == 201, late.text

    moved = client.patch(
        f"/v1/maintenance/{wid}",
        headers=admin,
        json={"starts_at": "2026-12-11T13:00:00Z", "ends_at": "2026-12-11T15:00:00Z"},
    )
    assert moved.status_code == 200, moved.text
    out = moved.json()
    assert out["revision"] == 1
    pending = sorted((n["kind"], n["due_at"]) for n in out["notices"] if n["state"] == "pending")
    assert pending == [
        ("completed", "2026-12-11T15:00:00Z"),
        ("moved", "2026-12-10T08:00:00Z"),
        ("reminder", "2026-12-11T11:00:00Z"),
        ("started", "2026-12-11T13:00:00Z"),
    ]
    assert sorted(n["kind"] for n in out["notices"] if n["state"] == "superseded") == [
        "completed",
        "reminder",
        "started",
    ]
    assert runner.run_once()["sent"] == 1
    drain()
    got = _new_sms(fake, seen)
    assert sorted(to for to, _ in got) == TOLD
    assert all("Maintenance moved: Database upgrade" in body for _, body in got)
    seen = len(sms(fake))

    # the old reminder time passes: nothing (it was re-planned for the new start)
    clock_at(T0 + timedelta(hours=3))
    assert runner.run_once()["sent"] == 0

    cancelled = client.post(f"/v1/maintenance/{wid}/cancel", headers=admin)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert runner.run_once()["sent"] == 1
    drain()
    got = _new_sms(fake, seen)
    assert sorted(to for to, _ in got) == TOLD
    assert all("Maintenance cancelled: Database upgrade" in body for _, body in got)
    # nothing else ever goes out for it
    clock_at(T0 + timedelta(days=2))
    assert runner.run_once()["sent"] == 0
    drain()
    assert len(sms(fake)) == seen + 2
    incident_id = cancelled.json()["incident_id"]
    assert client.get(f"/v1/incidents/{incident_id}", headers=admin).json()["status"] == "resolved"
    assert client.post(f"/v1/maintenance/{wid}/cancel", headers=admin).status_code == 409


def test_cancel_while_running_restores_the_services(client, admin, world, fake, clock_at, db_url):
    # api is degraded before the window: it goes back to degraded, not operational
    resp = client.post("/v1/services/api/state", headers=admin, json={"state": "degraded", "reason": "slow replica"})
    assert resp.status_code == 200, resp.text
    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    runner = _runner(db_url)
    clock_at(T0 + timedelta(hours=5))
    assert runner.run_once() == {"sent": 1, "skipped": 2, "failed": 0}  # created/reminder stale, started sent
    drain()
    assert service_states(client, admin) == {"api": "maintenance", "web": "maintenance"}
    # only the end of a running window can move
    bad = client.patch(f"/v1/maintenance/{wid}", headers=admin, json={"starts_at": "2026-12-10T13:30:00Z"})
    assert bad.status_code == 422 and bad.json()["field"] == "starts_at"
    later = client.patch(f"/v1/maintenance/{wid}", headers=admin, json={"ends_at": "2026-12-10T15:00:00Z"})
    assert later.status_code == 200, later.text
    resp = client.post(f"/v1/maintenance/{wid}/cancel", headers=admin)
    assert resp.status_code == 200, resp.text
    assert service_states(client, admin) == {"api": "degraded", "web": "operational"}
    assert runner.run_once()["sent"] == 1  # the "cancelled" notice (the moved one was dropped with the window)
    drain()
    bodies = [body for _, body in sms(fake)]
    assert sum("Maintenance in progress" in b for b in bodies) == 2
    assert sum("Maintenance cancelled" in b for b in bodies) == 2
    assert sum("Maintenance moved" in b for b in bodies) == 0
    clock_at(T0 + timedelta(hours=7))
    assert runner.run_once()["sent"] == 0
    assert service_states(client, admin) == {"api": "degraded", "web": "operational"}


def test_a_failed_attempt_writes_nothing_and_is_retried(client, admin, world, fake, clock_at, db_url, monkeypatch):
    from broadcaster.publishing import service as publishing

    real = publishing.publish
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(publishing, "publish", flaky)
    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]
    runner = _runner(db_url)
    assert runner.run_once() == {"sent": 0, "skipped": 0, "failed": 1}
    created = next(n for n in client.get(f"/v1/maintenance/{wid}", headers=admin).json()["notices"])
    assert created["kind"] == "created" and created["state"] == "pending" and created["update_id"] is None
    assert created["attempts"] == 1 and "database hiccup" in created["last_error"]
    assert runner.run_once()["sent"] == 0  # backing off
    clock_at(T0 + timedelta(minutes=1))
    assert runner.run_once() == {"sent": 1, "skipped": 0, "failed": 0}
    drain()
    assert sorted(to for to, _ in sms(fake)) == TOLD  # once each: the failed attempt published nothing

    from broadcaster.db import session_scope
    from broadcaster.models import Update

    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Update)) == 1


def test_the_runner_runs_beside_the_worker(client, admin, world, fake, clock_at, db_url):
    """`broadcaster worker` and the in-process worker start a MaintenanceRunner among their side runners."""
    import asyncio

    from broadcaster.delivery.lifecycle import start_runners, stop_runners
    from broadcaster.maintenance.runner import MaintenanceRunner
    from broadcaster.settings import get_settings

    wid = client.post("/v1/maintenance", headers=admin, json=window_body()).json()["id"]

    def created_state() -> str:
        notices = client.get(f"/v1/maintenance/{wid}", headers=admin).json()["notices"]
        return next(n["state"] for n in notices if n["kind"] == "created")

    async def main() -> list[str]:
        runners = start_runners(get_settings())
        try:
            for _ in range(600):  # bounded wait for the first round (no timing is asserted)
                if await asyncio.to_thread(created_state) == "sent":
                    break
                await asyncio.sleep(0.05)
        finally:
            await stop_runners(runners)
        return [type(r).__name__ for r, _ in runners]

    names = asyncio.run(main())
    assert MaintenanceRunner.__name__ in names
    assert created_state() == "sent"
