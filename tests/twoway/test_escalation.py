"""Escalation rules and the escalation runner: validation (422 naming the field), steps exactly once per person,
stop on answer and on close, quiet hours, the threshold summary. The clock is moved, nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.core.helpers import approve_map_change
from tests.twoway.escalation_helpers import (
    actions,
    add_people,
    answer,
    ask,
    close,
    due,
    make_update,
    resent,
    system_deliveries,
)

from broadcaster import clock

TWO_STEPS = {
    "steps": [{"after_minutes": 10, "channel": "voice"}, {"after_minutes": 15, "channel": "secondary"}],
}


@pytest.fixture(autouse=True)
def pinned_clock() -> Iterator[datetime]:
    """Noon UTC on a fixed day; every test moves it forward itself."""
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    clock.set_now(start)
    yield start
    clock.set_now(None)


@pytest.fixture
def memory(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The in-memory adapters (channel "memory" is an SMS kind), recordings reset."""
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.delivery.testing import MemoryAdapter
    from broadcaster.settings import get_settings

    monkeypatch.setenv("MEMORY_ADAPTER_ENABLED", "true")
    monkeypatch.setenv("WORKER_POLL_SECONDS", "0.05")
    get_settings.cache_clear()
    adapter_classes.cache_clear()
    MemoryAdapter.reset()
    yield MemoryAdapter
    MemoryAdapter.reset()


def drain() -> None:
    """Run a worker until nothing is pending."""
    import asyncio

    from broadcaster.delivery.worker import Worker

    asyncio.run(Worker().run(until_idle=True, max_seconds=30))


def tick() -> dict[str, int]:
    from broadcaster.responses.escalation_runner import Escalator

    return Escalator().tick()


# --- rules --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"steps": [{"after_minutes": 10, "channel": "fax"}]}, "escalation.steps.0.channel"),
        ({"steps": [{"after_minutes": 10, "channel": "banner"}]}, "escalation.steps.0.channel"),
        ({"steps": [{"channel": "voice"}]}, "escalation.steps.0"),
        ({"steps": [{"after_minutes": 10, "after_seconds": 5, "channel": "voice"}]}, "escalation.steps.0"),
        ({"steps": [{"after_minutes": 0, "channel": "voice"}]}, "escalation.steps.0.after_minutes"),
        ({"steps": [{"after_minutes": 20000, "channel": "voice"}]}, "escalation.steps.0"),
        ({"steps": [{"after_minutes": 1, "channel": "sms"}] * 6}, "escalation.steps"),
        (
            {"threshold": {"percent": 150, "after_minutes": 5, "group": {"tag": "managers"}}},
            "escalation.threshold.percent",
        ),
        ({"threshold": {"percent": 50, "after_minutes": 5, "group": {}}}, "escalation.threshold.group"),
        (
            {"threshold": {"percent": 50, "after_minutes": 5, "group": {"emails": ["not-an-email"]}}},
            "escalation.threshold.group.emails.0",
        ),
        (
            {"threshold": {"percent": 50, "after_minutes": 5, "group": {"phones": ["5551234"]}}},
            "escalation.threshold.group.phones",
        ),
        ({"stepz": []}, "escalation.stepz"),
    ],
)
def test_bad_rules_are_a_422_naming_the_field(db_url, rules, field):
    from broadcaster.errors import Unprocessable
    from broadcaster.responses.escalation import parse_rules

    with pytest.raises(Unprocessable) as err:
        parse_rules(rules)
    assert err.value.field == field, err.value


def test_category_escalation_in_the_routing_map(client, admin, auth, emergency_category):
    good = {
        "steps": [{"after_minutes": 10, "channel": "voice"}, {"after_seconds": 30, "channel": "secondary"}],
        "threshold": {"percent": 60, "after_minutes": 30, "group": {"emails": ["Ops@Example.org"], "tag": "managers"}},
    }
    # escalation rules loosen safety: the admin proposes them, a second person approves (docs/core.md)
    proposal = client.patch("/v1/categories/emergency", headers=admin, json={"escalation": good})
    approve_map_change(client, proposal, auth("read", "publish"))
    resp = client.get("/v1/categories/emergency", headers=admin)
    assert resp.status_code == 200, resp.text
    stored = resp.json()["escalation"]
    assert stored["steps"][1] == {"after_seconds": 30.0, "channel": "secondary"}
    assert stored["threshold"]["group"]["emails"] == ["Ops@example.org"]
    assert stored["respect_quiet_hours"] is True

    bad = {"steps": [{"after_minutes": 10, "channel": "banner"}]}
    resp = client.patch("/v1/categories/emergency", headers=admin, json={"escalation": bad})
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "escalation.steps.0.channel"
    assert client.get("/v1/categories/emergency", headers=admin).json()["escalation"] == stored  # nothing written

    exported = client.get("/v1/routing-map", headers=admin)
    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert body["categories"][0]["escalation"] == stored
    body["categories"][0]["escalation"] = bad
    resp = client.put("/v1/routing-map", headers=admin, json=body)
    assert resp.status_code == 422
    assert resp.json()["field"] == "categories.0.escalation.steps.0.channel", resp.json()

    resp = client.patch("/v1/categories/emergency", headers=admin, json={"escalation": None})
    assert resp.status_code == 200 and resp.json()["escalation"] is None


# --- steps ------------------------------------------------------------------------------------------------------


def test_steps_run_once_per_person_and_stop_when_they_answer(client, admin, emergency_category, pinned_clock):
    people = add_people(10)
    upd = make_update(client, admin)
    qid = ask(upd, people, TWO_STEPS, channels=("sms",))

    assert tick()["armed"] == 1
    assert {at for _, at in due(qid).values()} == {pinned_clock + timedelta(minutes=10)}
    answer(qid, people[:3])

    clock.advance(timedelta(minutes=9, seconds=59))
    tick()
    assert resent(upd) == {}, "nothing is due before the delay"

    clock.advance(timedelta(seconds=2))
    tick()
    tick()  # a second look takes nothing twice
    assert resent(upd, "voice") == dict.fromkeys(people[3:], 1)
    assert actions(qid) == [(p, 1, "resend", "voice") for p in people[3:]]
    step_two_at = clock.now() + timedelta(minutes=15)
    assert {p: due(qid)[p] for p in people[3:]} == dict.fromkeys(people[3:], (1, step_two_at))
    assert {p: due(qid)[p][0] for p in people[:3]} == dict.fromkeys(people[:3], 0)

    answer(qid, [people[3]], key="2", channel="voice")  # answers the call
    clock.advance(timedelta(minutes=15, seconds=1))
    tick()
    # asked by SMS, called: the secondary contact is their email
    assert resent(upd, "email") == dict.fromkeys(people[4:], 1)
    assert resent(upd) == {p: (2 if p in people[4:] else 1) for p in people[3:]}
    assert all(due(qid)[p] == (2, None) for p in people[4:]), "no step after the last one"

    clock.advance(timedelta(hours=5))
    tick()
    assert sum(resent(upd).values()) == 7 + 6


def test_secondary_contact_skips_people_without_another_address(client, admin, emergency_category):
    with_email = add_people(2)
    phone_only = add_people(2, start=100, email=None)
    upd = make_update(client, admin)
    qid = ask(
        upd,
        with_email + phone_only,
        {"steps": [{"after_minutes": 5, "channel": "secondary"}]},
        channels=("sms", "email"),
    )
    tick()
    clock.advance(timedelta(minutes=6))
    tick()
    # asked by SMS and email: the other kind left is voice
    assert resent(upd, "voice") == dict.fromkeys(with_email + phone_only, 1)

    upd2 = make_update(client, admin)
    qid2 = ask(upd2, phone_only, {"steps": [{"after_minutes": 5, "channel": "email"}]}, channels=("sms",))
    tick()
    clock.advance(timedelta(minutes=6))
    tick()
    assert resent(upd2) == {}
    assert actions(qid2) == [(p, 1, "skipped", "email") for p in phone_only]
    assert due(qid2) == dict.fromkeys(phone_only, (1, None))
    assert qid != qid2


def test_closing_stops_everything_and_cancels_queued_resends(client, admin, emergency_category, memory):
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Broadcast, Delivery
    from broadcaster.responses.escalation_runner import stop_question

    people = add_people(6)
    rules = {"steps": [{"after_minutes": 1, "channel": "memory"}, {"after_minutes": 1, "channel": "memory"}]}
    upd = make_update(client, admin)
    qid = ask(upd, people, rules)
    upd2 = make_update(client, admin)
    qid2 = ask(upd2, people, rules)
    tick()
    clock.advance(timedelta(minutes=2))
    tick()
    assert sum(resent(upd).values()) == 6 and sum(resent(upd2).values()) == 6

    # closed through the runner's sweep (whatever closed it) and through stop_question (the close endpoint)
    close(qid)
    tick()
    close(qid2)
    with session_scope() as session:
        assert stop_question(session, qid2) == 6
    for u, q in ((upd, qid), (upd2, qid2)):
        assert all(at is None for _, at in due(q).values())
        with session_scope() as session:
            statuses = session.scalars(
                select(Delivery.status)
                .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                .where(Broadcast.update_id == u, Broadcast.kind == "escalation")
            ).all()
        assert set(statuses) == {"cancelled"}
    clock.advance(timedelta(hours=1))
    tick()
    assert sum(resent(upd).values()) == 6 and sum(resent(upd2).values()) == 6
    assert memory.sent == []


def test_a_resend_is_dropped_for_someone_who_answered_before_the_worker_sent_it(
    client, admin, emergency_category, memory
):
    from sqlalchemy import select

    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    people = add_people(5)
    upd = make_update(client, admin)
    qid = ask(upd, people, {"steps": [{"after_minutes": 1, "channel": "memory"}]})
    tick()
    clock.advance(timedelta(minutes=2))
    tick()
    answer(qid, people[:2])  # answered after the step was queued, before the worker got to it
    drain()
    assert sorted(a for _, a, _, _ in memory.sent) == sorted(f"+1555100{i:04d}" for i in range(2, 5))
    with session_scope() as session:
        rows = dict(
            session.execute(
                select(Delivery.subscriber_id, Delivery.error_reason).where(Delivery.status == "cancelled")
            ).all()
        )
    assert rows == dict.fromkeys(people[:2], "answered meanwhile")


def test_a_runner_killed_before_its_commit_leaves_nothing_and_the_next_takes_the_step_once(
    client, admin, emergency_category, monkeypatch
):
    from tests.twoway.escalation_helpers import count

    from broadcaster.models.delivery import Delivery
    from broadcaster.models.responses import EscalationAction
    from broadcaster.responses import escalation_runner

    people = add_people(8)
    upd = make_update(client, admin)
    qid = ask(upd, people, {"steps": [{"after_minutes": 1, "channel": "voice"}]})
    tick()
    clock.advance(timedelta(minutes=2))
    real = escalation_runner.Escalator._resend

    def crash(self, *args):
        real(self, *args)  # actions, deliveries and the step written in the transaction...
        raise RuntimeError("killed between claiming and committing")  # ...and never committed

    monkeypatch.setattr(escalation_runner.Escalator, "_resend", crash)
    with pytest.raises(RuntimeError):
        tick()
    assert count(EscalationAction) == 0 and count(Delivery) == 0
    assert all(step == 0 for step, _ in due(qid).values())
    monkeypatch.undo()
    tick()
    tick()
    assert resent(upd) == dict.fromkeys(people, 1)
    assert count(EscalationAction) == 8


# --- quiet hours ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("severity", "lane"), [("major", 1), ("critical", 0)])
def test_quiet_hours_hold_non_critical_steps_until_they_end(
    client, admin, emergency_category, monkeypatch, severity, lane
):
    from broadcaster.settings import get_settings

    monkeypatch.setenv("QUIET_HOURS", "22:00-07:00")
    monkeypatch.setenv("QUIET_HOURS_TIMEZONE", "Europe/Paris")  # UTC+2 in June: 20:00-05:00 UTC
    get_settings.cache_clear()
    clock.set_now(datetime(2026, 6, 1, 19, 55, tzinfo=UTC))  # 21:55 in Paris
    people = add_people(4)
    upd = make_update(client, admin, severity=severity)
    qid = ask(upd, people, {"steps": [{"after_minutes": 10, "channel": "voice"}]}, priority=lane)
    tick()
    clock.advance(timedelta(minutes=11))  # 22:06 in Paris
    tick()
    if severity == "critical":
        assert resent(upd) == dict.fromkeys(people, 1), "critical updates ignore quiet hours"
        return
    assert resent(upd) == {}
    end = datetime(2026, 6, 2, 5, 0, tzinfo=UTC)  # 07:00 in Paris
    assert {at for _, at in due(qid).values()} == {end}
    clock.set_now(end - timedelta(seconds=1))
    tick()
    assert resent(upd) == {}
    clock.set_now(end)
    tick()
    assert resent(upd) == dict.fromkeys(people, 1)


def test_quiet_hours_arithmetic():
    from zoneinfo import ZoneInfo

    from broadcaster.clock import parse_quiet_hours, quiet_until

    tz = ZoneInfo("UTC")
    night = parse_quiet_hours("22:00-07:00")
    at = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    assert quiet_until(at, night, tz) == datetime(2026, 1, 6, 7, 0, tzinfo=UTC)
    assert quiet_until(datetime(2026, 1, 5, 3, 0, tzinfo=UTC), night, tz) == datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    assert quiet_until(datetime(2026, 1, 5, 7, 0, tzinfo=UTC), night, tz) is None
    assert quiet_until(datetime(2026, 1, 5, 21, 59, tzinfo=UTC), night, tz) is None
    lunch = parse_quiet_hours("12:00-13:30")
    assert quiet_until(datetime(2026, 1, 5, 12, 10, tzinfo=UTC), lunch, tz) == datetime(2026, 1, 5, 13, 30, tzinfo=UTC)
    assert parse_quiet_hours("") is None
    for bad in ("22-07", "25:00-07:00", "10:00-10:00"):
        with pytest.raises(ValueError):
            parse_quiet_hours(bad)


def test_bad_quiet_hours_setting_is_refused(monkeypatch):
    from pydantic import ValidationError

    from broadcaster.settings import Settings

    with pytest.raises(ValidationError, match="quiet_hours"):
        Settings(quiet_hours="late")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="quiet_hours_timezone"):
        Settings(quiet_hours_timezone="Mars/Olympus")  # type: ignore[call-arg]


# --- threshold --------------------------------------------------------------------------------------------------


def test_threshold_sends_one_summary_listing_who_has_not_answered(client, admin, emergency_category, pinned_clock):
    people = add_people(10)
    rules = {
        "threshold": {
            "percent": 60,
            "after_minutes": 30,
            "group": {"emails": ["ops@example.org", "OPS@example.org"], "phones": ["+15559990000"]},
        }
    }
    upd = make_update(client, admin)
    qid = ask(upd, people, rules)
    upd_ok = make_update(client, admin)
    qid_ok = ask(upd_ok, people, rules)
    answer(qid, people[:5])  # 50% < 60%
    answer(qid_ok, people[:6])  # 60%: met
    clock.advance(timedelta(minutes=29))
    tick()
    assert system_deliveries() == []
    clock.advance(timedelta(minutes=2))
    tick()
    tick()
    sent = system_deliveries()
    assert [(c, a) for c, a, _ in sent] == [("email", "ops@example.org"), ("sms", "+15559990000")]
    email = sent[0][2]
    assert email["subject"] == "Escalation: 5 of 10 have not answered “Are you safe?”"
    for i in range(5, 10):
        assert f"Person {i} · +1555100{i:04d} · p{i:04d}@example.org" in email["text"]
    for i in range(5):
        assert f"Person {i} " not in email["text"]
    assert f"/v1/updates/{upd}/responses" in email["text"]
    assert len(sent[1][2]["text"]) <= 320
    assert actions(qid) == [(0, 0, "summary", "group")]
    assert actions(qid_ok) == [(0, 0, "threshold_met", "group")]


# --- two runners at once --------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_runners_take_each_step_exactly_once(client, admin, emergency_category, is_postgres):
    """Two runners (threads, separate connections) on the same due people: each person's step is taken once
    (SKIP LOCKED; the unique escalation action is the backstop)."""
    import threading

    from tests.twoway.escalation_helpers import count

    from broadcaster.models.responses import EscalationAction
    from broadcaster.responses.escalation_runner import Escalator

    if not is_postgres:
        pytest.skip("concurrent runners are tested on PostgreSQL (SQLite has one writer)")
    people = add_people(3000)
    upd = make_update(client, admin)
    qid = ask(
        upd, people, {"steps": [{"after_minutes": 1, "channel": "voice"}, {"after_minutes": 1, "channel": "email"}]}
    )
    tick()
    answer(qid, people[:1000])
    totals: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            escalator = Escalator()
            for _ in range(2):
                totals.append(escalator.tick())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    for _ in range(2):
        clock.advance(timedelta(minutes=2))
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    assert resent(upd, "voice") == dict.fromkeys(people[1000:], 1)
    assert resent(upd, "email") == dict.fromkeys(people[1000:], 1)
    assert count(EscalationAction) == 4000
    assert sum(t["resent"] for t in totals) == 4000


def test_threshold_group_by_tag_reaches_tagged_subscribers_once(client, admin, emergency_category):
    from sqlalchemy import insert

    from broadcaster.db import get_engine
    from broadcaster.models.audience import SubscriberTag

    people = add_people(4)
    manager_email = add_people(1, start=500)[0]
    manager_phone = add_people(1, start=600, email=None)[0]
    with get_engine().begin() as conn:
        conn.execute(
            insert(SubscriberTag),
            [{"subscriber_id": s, "tag": "managers"} for s in (manager_email, manager_phone)],
        )
    rules = {
        "threshold": {
            "percent": 50,
            "after_seconds": 30,
            "group": {"tag": "managers", "emails": ["p0500@example.org"]},
        }
    }
    upd = make_update(client, admin)
    ask(upd, people, rules)
    clock.advance(timedelta(seconds=31))
    tick()
    tick()
    sent = [(c, a) for c, a, _ in system_deliveries()]
    assert sent == [("email", "p0500@example.org"), ("sms", "+15551000600")]
