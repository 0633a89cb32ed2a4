"""Transient errors are retried with bounded, jittered backoff; permanent ones recorded; failover works."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select


def _rows(bid: int) -> list:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        return list(session.scalars(select(Delivery).where(Delivery.broadcast_id == bid).order_by(Delivery.id)))


def test_retry_strategy_is_bounded_jittered_and_honours_retry_after():
    from broadcaster.delivery.retry import RetryStrategy

    s = RetryStrategy(max_attempts=4, base_seconds=1.0, max_seconds=30.0)
    for attempts in (1, 2, 3):
        delays = [s.delay(attempts) for _ in range(200)]
        assert all(0 <= d <= 2 ** (attempts - 1) for d in delays)
        assert len(set(delays)) > 100  # jitter
    assert s.delay(4) is None
    assert s.delay(1, retry_after=7) >= 7
    assert s.delay(1, retry_after=1000) == 1000
    assert s.delay(1, retry_after=10**6) == 3600


def test_transient_then_success_permanent_and_exhausted(memory, drain, add_subscribers, publish, emergency_category):
    from broadcaster.delivery.testing import permanent, transient

    add_subscribers(4)
    memory.script["+15550000001"] = [transient("429", "too many requests", retry_after=0.01), transient()]
    memory.script["+15550000002"] = [permanent("21610", "recipient unsubscribed at carrier")]
    memory.script["+15550000003"] = [transient("timeout", "read timeout")] * 10
    out = publish(channels=["memory"])
    drain()
    rows = {r.address: r for r in _rows(out["broadcast_id"])}
    assert (rows["+15550000001"].status, rows["+15550000001"].attempts) == ("sent", 3)
    assert rows["+15550000002"].status == "failed"
    assert rows["+15550000002"].attempts == 1
    assert (rows["+15550000002"].error_code, rows["+15550000002"].error_reason) == (
        "21610",
        "recipient unsubscribed at carrier",
    )
    exhausted = rows["+15550000003"]
    assert exhausted.status == "failed" and exhausted.attempts == 4  # RETRY_MAX_ATTEMPTS
    assert exhausted.error_reason == (
        "gave up after 4 attempts: read timeout (the last attempt timed out: the provider may have sent it)"
    )
    assert exhausted.outcome_unknown and exhausted.suspect_duplicate  # the memory adapter cannot look sends up
    assert rows["+15550000004"].status == "sent"
    # every attempt is accounted for, none lost or repeated after success
    attempts = [a for _, a in memory.attempts]
    assert attempts.count("+15550000001") == 3 and attempts.count("+15550000004") == 1
    assert attempts.count("+15550000003") == 4


def test_failover_to_second_adapter_of_the_kind(memory, drain, add_subscribers, publish, emergency_category):
    from broadcaster.delivery.testing import transient

    add_subscribers(3)
    memory.always_fail["memory"] = transient("503", "provider outage")
    out = publish(channels=["sms"])
    drain()
    rows = _rows(out["broadcast_id"])
    assert {(r.status, r.provider, r.attempts) for r in rows} == {("sent", "memory-backup", 3)}
    assert {name for name, *_ in memory.sent} == {"memory-backup"}


def test_retry_after_sets_next_attempt(memory, add_subscribers, publish, emergency_category):
    import asyncio

    from broadcaster.db import get_engine, session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.delivery.testing import transient
    from broadcaster.delivery.worker import Worker, claim
    from broadcaster.models import utcnow

    add_subscribers(1)
    memory.script["+15550000001"] = [transient("429", "slow down", retry_after=5)]
    out = publish(channels=["memory"])
    with session_scope() as session:
        plan_next(session)
    batch = claim(get_engine(), "w-test", 10, 60)
    worker = Worker(worker_id="w-test")
    before = utcnow()
    asyncio.run(worker.process(batch))
    [row] = _rows(out["broadcast_id"])
    assert row.status == "pending" and row.error_code == "429"
    assert row.next_attempt_at >= before + timedelta(seconds=5)
    assert claim(get_engine(), "w-test", 10, 60) == []  # not due yet
