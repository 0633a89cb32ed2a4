"""Claiming: index use, lease recovery, and (PostgreSQL) several worker processes through the real Twilio
adapter to the fake provider server: every delivery sent exactly once; a SIGKILLed worker loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func, select, text


def test_sqlite_claim_query_uses_the_status_id_index(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite planner check")
    from broadcaster.db import get_engine
    from broadcaster.delivery.worker import CLAIM_SQLITE

    inner = CLAIM_SQLITE[CLAIM_SQLITE.index("SELECT id") : CLAIM_SQLITE.index(")", CLAIM_SQLITE.index("SELECT id"))]
    with get_engine().connect() as conn:
        plan = conn.execute(
            text(f"EXPLAIN QUERY PLAN {inner}"), {"now": "2030-01-01", "n": 500, "channel": "sms", "below": 9}
        ).all()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "USING INDEX ix_deliveries_pending" in details, details  # not a full table scan
    assert "TEMP B-TREE" not in details, details  # and no sort: the index gives id order


def test_postgres_claim_query_uses_the_partial_index(db_url):
    """With every row pending and fresh statistics the planner must still choose the partial index, not
    the primary key (which turns the claim quadratic as sent rows pile up in front of it)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL planner check")
    from broadcaster.db import get_engine
    from broadcaster.delivery.worker import CLAIM_PG

    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO broadcasts (id, kind, state, channels, skipped, test, total, created_at) "
                "VALUES (1, 'update', 'sending', '[]', '{}', false, 0, now())"
            )
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (broadcast_id, channel, address, locale, status, attempts, next_attempt_at, "
                "created_at, updated_at) SELECT 1, 'sms', '+1555' || g, 'en', 'pending', 0, now(), now(), now() "
                "FROM generate_series(1, 20000) g"
            )
        )
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE deliveries"))
    inner = CLAIM_PG[CLAIM_PG.index("SELECT id") : CLAIM_PG.index(")", CLAIM_PG.index("SELECT id"))]
    with get_engine().connect() as conn:
        plan = (
            conn.execute(text(f"EXPLAIN {inner}"), {"now": "2030-01-01", "n": 500, "channel": "sms", "below": 9})
            .scalars()
            .all()
        )
    assert any("ix_deliveries_pending" in line for line in plan), plan


def test_large_fan_out_refreshes_postgres_statistics(
    db_url, monkeypatch, memory, add_subscribers, publish, emergency_category
):
    """After planning a large broadcast the worker ANALYZEs deliveries, so claims are planned for its real size
    at once instead of after autovacuum's next round."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL statistics")
    from broadcaster.db import get_engine
    from broadcaster.delivery import planner
    from broadcaster.delivery.worker import Worker

    def reltuples() -> float:
        with get_engine().connect() as conn:
            return float(conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'deliveries'")).scalar_one())

    monkeypatch.setattr(planner, "ANALYZE_AFTER_ROWS", 40)
    add_subscribers(30)
    publish(channels=["memory"])
    Worker().housekeeping()
    assert reltuples() <= 0  # 30 rows: below the threshold, statistics untouched (never analyzed: -1)
    add_subscribers(30)
    publish(channels=["memory"])
    Worker().housekeeping()
    assert reltuples() == 90  # 30 + 60 rows planned, counted by ANALYZE


def test_expired_lease_is_taken_again(memory, drain, add_subscribers, publish, emergency_category):
    from broadcaster.db import get_engine, session_scope
    from broadcaster.delivery.planner import plan_next
    from broadcaster.delivery.worker import Worker, claim, requeue_expired
    from broadcaster.models.delivery import Delivery

    add_subscribers(3)
    out = publish(channels=["memory"])
    with session_scope() as session:
        plan_next(session)
    crashed = claim(get_engine(), "crashed-worker", 2, -1)  # lease already over: the worker "died"
    assert len(crashed) == 2
    other = claim(get_engine(), "other", 10, 60)
    assert [o.id for o in other] == [3]  # rows held by another worker are skipped until requeued
    asyncio.run(Worker(worker_id="other").process(other))
    assert requeue_expired(get_engine()) == 2
    drain()
    with session_scope() as session:
        rows = list(session.scalars(select(Delivery).where(Delivery.broadcast_id == out["broadcast_id"])))
    assert Counter(r.status for r in rows) == {"sent": 3}
    assert sorted(r.attempts for r in rows) == [1, 2, 2]
    assert sorted(a for _, a, _, _ in memory.sent) == sorted(r.address for r in rows)


# --- PostgreSQL: real worker processes -------------------------------------------------------------------


def _worker_env(db_url: str, fake, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(fake.env(webhook=False))
    env.update(
        {
            "DATABASE_URL": db_url,
            "PUBLIC_URL": "http://testserver",
            "TWILIO_SMS_RATE_PER_SECOND": "100000",
            "WORKER_BATCH_SIZE": "50",
            "WORKER_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


def _start_worker(env: dict[str, str], tmp_path: Path, name: str) -> subprocess.Popen:
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
    exe = Path(sys.executable).with_name("broadcaster")
    return subprocess.Popen([str(exe), "worker"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _sent_ids(fake) -> list[str]:
    ids = []
    for req in fake.requests("twilio"):
        if req.path.endswith("/Messages.json") and req.status and req.status < 300:
            callback = req.form_value("StatusCallback") or ""
            ids += parse_qs(urlparse(callback).query).get("delivery_id", [])
    return ids


def _counts(bid: int) -> dict[str, int]:
    from broadcaster.db import session_scope
    from broadcaster.models.delivery import Delivery

    with session_scope() as session:
        rows = session.execute(
            select(Delivery.status, func.count()).where(Delivery.broadcast_id == bid).group_by(Delivery.status)
        ).all()
    return {s: int(n) for s, n in rows}


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.mark.postgres
def test_two_worker_processes_send_each_delivery_exactly_once(
    db_url, tmp_path, add_subscribers, publish, emergency_category
):
    if not db_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED with several processes needs PostgreSQL")
    from broadcaster.db import session_scope
    from broadcaster.fakes.testing import running_fake
    from broadcaster.models.delivery import Delivery

    n = 1000
    add_subscribers(n)
    with running_fake() as fake:
        env = _worker_env(db_url, fake, tmp_path)
        procs = [_start_worker(env, tmp_path, f"w{i}") for i in range(2)]
        try:
            time.sleep(1.5)  # both idle and LISTENing before the publish
            out = publish(channels=["twilio-sms"])
            bid = out["broadcast_id"]
            _wait(lambda: _counts(bid).get("sent", 0) == n, 90, "all deliveries sent")
        finally:
            _stop(procs)
        sent = Counter(_sent_ids(fake))
    with session_scope() as session:
        rows = session.execute(select(Delivery.id, Delivery.claimed_by).where(Delivery.broadcast_id == bid)).all()
    assert len(rows) == n
    assert set(sent) == {str(r.id) for r in rows}
    assert max(sent.values()) == 1, "a delivery reached the provider twice"
    assert len({r.claimed_by for r in rows}) == 2, "both workers should have claimed batches"


@pytest.mark.postgres
def test_worker_killed_mid_batch_loses_nothing(db_url, tmp_path, add_subscribers, publish, emergency_category):
    if not db_url.startswith("postgresql"):
        pytest.skip("worker processes and leases are tested on PostgreSQL")
    from broadcaster.db import session_scope
    from broadcaster.fakes.testing import running_fake
    from broadcaster.models.delivery import Delivery

    n = 120
    add_subscribers(n)
    with running_fake() as fake:
        fake.inject("twilio", None, delay=30, times=10_000)  # the provider hangs: the worker is mid-batch
        env = _worker_env(db_url, fake, tmp_path, WORKER_LEASE_SECONDS="2", PROVIDER_TIMEOUT_SECONDS="60")
        victim = _start_worker(env, tmp_path, "victim")
        try:
            out = publish(channels=["twilio-sms"])
            bid = out["broadcast_id"]
            _wait(lambda: _counts(bid).get("sending", 0) > 0, 30, "the first worker to claim a batch")
            _wait(lambda: len(fake.requests("twilio")) > 0, 30, "the first worker to be calling the provider")
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            with session_scope() as session:
                orphaned = set(
                    session.scalars(
                        select(Delivery.id).where(Delivery.broadcast_id == bid, Delivery.status == "sending")
                    )
                )
            assert orphaned
            time.sleep(1)  # let the fake notice the dropped connections of the killed worker
            fake.reset()  # the provider recovers; only what happens from here on is recorded
            rescuer = _start_worker(env, tmp_path, "rescuer")
            try:
                _wait(lambda: _counts(bid).get("sent", 0) == n, 60, "all deliveries sent after the lease")
            finally:
                _stop([rescuer])
        finally:
            _stop([victim])
        sent = Counter(_sent_ids(fake))
    with session_scope() as session:
        rows = {r.id: r for r in session.scalars(select(Delivery).where(Delivery.broadcast_id == bid))}
    assert _counts(bid) == {"sent": n}
    # after the kill, every delivery reached the recovered provider exactly once (the killed worker's
    # hanging calls never completed on its side; they carried the same idempotency key)
    assert set(sent) == {str(i) for i in rows}
    assert max(sent.values()) == 1
    assert all(rows[i].attempts == 2 for i in orphaned)  # the orphaned batch was taken again
