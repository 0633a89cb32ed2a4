"""Fan-out benchmark on the local PostgreSQL: every figure is printed next to a baseline measured in the
same run on the same machine, and the ratio is what counts (docs/delivery.md, perf-baseline.md §3).

    .venv/bin/python bench/fanout.py                      # 1M recipients (default)
    .venv/bin/python bench/fanout.py --recipients 200000  # quicker
    BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/fanout.py

Phases (each bounded in time; the private database is dropped at the end, even on error):
  1. baseline: psycopg COPY of N delivery-shaped rows into a copy of the deliveries table
  2. publish API latency (POST /v1/updates/{id}/publish, in-process TestClient) with an N-subscriber audience
  3. fan-out planning of N recipients (our INSERT ... SELECT), ratio to 1.
  4. claim + mark-sent, 2 processes: the raw SKIP LOCKED loop of perf-baseline §3b vs ours (`claim` + `_record`)
  5. the full worker (claim, render, send through the in-memory adapter, record), 2 processes: rows/s, RSS
  6. publish -> first provider call latency with one idle worker process (LISTEN/NOTIFY wake-up)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PHASE_LIMIT = 150.0  # seconds per claim phase


def log(msg: str) -> None:
    print(msg, flush=True)


def configure(url: str, extra: dict[str, str] | None = None) -> None:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "MEMORY_ADAPTER_ENABLED": "true",
            "WORKER_IN_PROCESS": "false",
            "APPROVAL_SEVERITY": "none",
            "SEND_HOLD_SECONDS": "0",  # measured from publish to the first call: no send hold
            "WORKER_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "WARNING",
        }
        | (extra or {})
    )
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.db import reset_engine
    from broadcaster.settings import get_settings

    get_settings.cache_clear()
    adapter_classes.cache_clear()
    reset_engine()


def psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- setup ---------------------------------------------------------------------------------------------


def seed_subscribers(
    url: str,
    total: int,
    categories: tuple[str, str],
    category_of: str,
    *,
    emails: bool = True,
    region: tuple[float, float, float, float] | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Categories `categories` (ids 1 and 2, each with an incident), then `total` subscribers generated in SQL
    (phone +1555NNNNNNN, confirmed email when `emails`, a uniform random location in `region` = (min_lon,
    min_lat, max_lon, max_lat) when given), each in the category `category_of` (SQL of `g`, the subscriber id,
    giving 1, 2 or NULL for none) says; then VACUUM ANALYZE."""
    from broadcaster.db import session_scope
    from broadcaster.models import Category, Incident

    with session_scope() as session:
        for slug in categories:
            session.add(Category(slug=slug, name=slug.title(), channels={"major": ["memory"]}))
        session.flush()
        for i, slug in enumerate(categories, start=1):
            session.add(Incident(title=slug.title(), category_id=i, severity="major"))
    values: dict[str, Any] = {"total": total, **(params or {})}
    email = "'user' || g || '@example.org'" if emails else "NULL"
    located, location = "", ""
    if region is not None:
        located = ", lat, lon"
        location = ", :min_lat + random() * (:max_lat - :min_lat), :min_lon + random() * (:max_lon - :min_lon)"
        values.update(min_lon=region[0], min_lat=region[1], max_lon=region[2], max_lat=region[3])
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(
            text(
                "INSERT INTO subscribers (id, phone, email, name, locale, all_categories, email_confirmed, "
                f"email_opted_out, sms_opted_out, test_group, source, created_at, updated_at{located}) "
                f"SELECT g, '+1555' || lpad(g::text, 7, '0'), {email}, '', 'en', false, "
                f"{'true' if emails else 'false'}, false, false, false, 'bench', now(), now(){location} "
                "FROM generate_series(1, :total) g"
            ),
            values,
        )
        conn.execute(text("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :total)"), values)
        conn.execute(
            text(
                "INSERT INTO subscriber_categories (subscriber_id, category_id) "
                f"SELECT g, c FROM (SELECT g, {category_of} AS c FROM generate_series(1, :total) g) s "
                "WHERE c IS NOT NULL"
            ),
            values,
        )
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE subscribers"))
        conn.execute(text("VACUUM ANALYZE subscriber_categories"))
    eng.dispose()


def seed(url: str, n: int) -> None:
    """The first n subscribers in `emergency` (category 1), 5 more in `small` (category 2)."""
    seed_subscribers(url, n + 5, ("emergency", "small"), "CASE WHEN g <= :n THEN 1 ELSE 2 END", params={"n": n})


def new_update(incident_id: int) -> int:
    from broadcaster.db import session_scope
    from broadcaster.models import Update

    with session_scope() as session:
        upd = Update(incident_id=incident_id, body="Bench update body", summary="Bench", state="draft")
        session.add(upd)
        session.flush()
        return upd.id


# --- phases --------------------------------------------------------------------------------------------


def copy_baseline(url: str, n: int) -> float:
    import psycopg

    from broadcaster.models import utcnow

    now = utcnow()
    rows = [(1, "memory", f"+1555{i:07d}", i, "en", "pending", 0, now, now, now) for i in range(1, n + 1)]
    with psycopg.connect(psycopg_url(url)) as conn:
        conn.execute("CREATE TABLE copy_baseline (LIKE deliveries INCLUDING ALL)")
        conn.commit()
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY copy_baseline (broadcast_id, channel, address, subscriber_id, locale, status, attempts, "
                "next_attempt_at, created_at, updated_at) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE copy_baseline")
        conn.commit()
    return elapsed


def hook_latency(repeats: int) -> list[float]:
    """`start_broadcast` alone (the delivery engine's share of the publish transaction)."""
    from broadcaster.db import session_scope
    from broadcaster.delivery.entrypoints import start_broadcast
    from broadcaster.models import Update

    times = []
    for _ in range(repeats):
        uid = new_update(1)
        with session_scope() as session:
            upd = session.get(Update, uid)
            started = time.perf_counter()
            start_broadcast(session, upd)  # type: ignore[arg-type]
            session.commit()
            times.append(time.perf_counter() - started)
    eng = create_engine(os.environ["DATABASE_URL"])
    with eng.begin() as conn:
        conn.execute(text("DELETE FROM broadcasts"))
    eng.dispose()
    return times


def counts_latency(repeats: int) -> list[float]:
    """`audience_counts` (preview, and the core's approval-threshold rule during publish)."""
    from broadcaster.db import session_scope
    from broadcaster.delivery.audience import audience_counts
    from broadcaster.models import Update

    uid = new_update(1)
    times = []
    for _ in range(repeats):
        with session_scope() as session:
            upd = session.get(Update, uid)
            started = time.perf_counter()
            audience_counts(session, upd)  # type: ignore[arg-type]
            times.append(time.perf_counter() - started)
    return times


def publish_latency(repeats: int) -> list[float]:
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app
    from broadcaster.db import session_scope
    from broadcaster.security import create_key

    with session_scope() as session:
        _, key = create_key(session, "bench", ["admin"])
    headers = {"Authorization": f"Bearer {key}"}
    times = []
    with TestClient(create_app(run_worker=False)) as client:
        for _ in range(repeats):
            uid = new_update(1)
            started = time.perf_counter()
            resp = client.post(f"/v1/updates/{uid}/publish", headers=headers)
            times.append(time.perf_counter() - started)
            assert resp.status_code == 200, resp.text
    eng = create_engine(os.environ["DATABASE_URL"])
    with eng.begin() as conn:  # these broadcasts were only for timing: never plan them
        conn.execute(text("DELETE FROM broadcasts"))
    eng.dispose()
    return times


def plan_big() -> tuple[int, float, int]:
    from broadcaster.db import session_scope
    from broadcaster.delivery import planner
    from broadcaster.delivery.entrypoints import start_broadcast
    from broadcaster.models import Update

    uid = new_update(1)
    with session_scope() as session:
        bid = start_broadcast(session, session.get(Update, uid))
    assert bid is not None
    started = time.perf_counter()
    with session_scope() as session:
        planned = planner.plan_next(session)
    elapsed = time.perf_counter() - started
    assert planned == bid
    with session_scope() as session:
        from broadcaster.models.delivery import Broadcast

        total = session.get(Broadcast, bid).total  # type: ignore[union-attr]
    return bid, elapsed, total


def reset_pending(url: str) -> None:
    import psycopg

    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        conn.execute(
            "UPDATE deliveries SET status='pending', attempts=0, claimed_by=NULL, lease_expires_at=NULL, "
            "next_attempt_at=now() - interval '1 second', provider=NULL, provider_message_id=NULL, sent_at=NULL"
        )
        conn.execute("UPDATE broadcasts SET state='sending', finished_at=NULL")
        conn.execute("VACUUM ANALYZE deliveries")
        conn.execute("CHECKPOINT")


def _raw_loop(url: str, out: Any) -> None:
    import psycopg

    done, marks = 0, []
    started = time.monotonic()
    with psycopg.connect(psycopg_url(url), autocommit=True) as conn:
        while time.monotonic() - started < PHASE_LIMIT:
            ids = [
                r[0]
                for r in conn.execute(
                    # the order of ix_deliveries_pending (channel, priority, id), as workers claim per channel
                    "UPDATE deliveries SET status='sending' WHERE id IN (SELECT id FROM deliveries "
                    "WHERE status='pending' AND channel='memory' ORDER BY priority, id LIMIT 500 "
                    "FOR UPDATE SKIP LOCKED) RETURNING id"
                )
            ]
            if not ids:
                break
            conn.execute("UPDATE deliveries SET status='sent' WHERE id = ANY(%s)", (ids,))
            done += len(ids)
            marks.append((time.monotonic(), len(ids)))
    out.put((done, marks, 0))


def _ours_loop(url: str, out: Any) -> None:
    configure(url)
    from broadcaster.db import get_engine
    from broadcaster.delivery.worker import Outcome, Worker, claim

    worker = Worker()
    engine = get_engine()
    done, marks = 0, []
    started = time.monotonic()
    while time.monotonic() - started < PHASE_LIMIT:
        batch = claim(engine, worker.id, 500, 60, channel="memory")
        if not batch:
            break
        worker._record([Outcome(d.id, d.channel, "sent", "memory", f"m{d.id}") for d in batch])
        done += len(batch)
        marks.append((time.monotonic(), len(batch)))
    out.put((done, marks, 0))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that across fork+exec, so
    a spawned worker would report the bench parent's peak (which holds the 1M-row COPY baseline)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _full_worker(url: str, out: Any) -> None:
    configure(url, {"WORKER_BATCH_SIZE": "500"})
    from broadcaster.delivery.testing import MemoryAdapter
    from broadcaster.delivery.worker import Worker

    MemoryAdapter.record = False
    MemoryAdapter.limits = type(MemoryAdapter.limits)(batch_size=500)
    worker = Worker()
    marks: list[tuple[float, int]] = []
    original = worker._record

    def record(outcomes: list[Any]) -> None:
        original(outcomes)
        marks.append((time.monotonic(), len(outcomes)))

    worker._record = record  # type: ignore[method-assign]
    with contextlib.suppress(TimeoutError):
        asyncio.run(worker.run(until_idle=True, max_seconds=PHASE_LIMIT))
    rss_mb = peak_rss_mb()
    out.put((worker.sent, marks, rss_mb))


def run_two(target: Any, url: str) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, out)) for _ in range(2)]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [out.get(timeout=PHASE_LIMIT + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    marks = sorted(m for r in results for m in r[1])
    total = sum(r[0] for r in results)
    if not marks:
        return {"rows": 0, "rate": 0.0, "first_rate": 0.0, "last_rate": 0.0, "rss_mb": 0.0, "seconds": 0.0}
    t0, t1 = marks[0][0], marks[-1][0]
    span = max(t1 - t0, 1e-6)
    third = span / 3
    first = sum(n for t, n in marks if t <= t0 + third) / third
    last = sum(n for t, n in marks if t >= t1 - third) / third
    wall = t1 - started
    return {
        "rows": total,
        "rate": total / span,
        "first_rate": first,
        "last_rate": last,
        "rss_mb": max(r[2] for r in results),
        "seconds": wall,
    }


def _idle_worker(url: str, logfile: str) -> None:
    configure(url, {"MEMORY_ADAPTER_LOG": logfile})
    from broadcaster.delivery.lifecycle import run_worker_process

    run_worker_process()


def first_call_latency(url: str, repeats: int) -> list[float]:
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app
    from broadcaster.db import session_scope
    from broadcaster.security import create_key

    logfile = Path(tempfile.mkdtemp()) / "sends.jsonl"
    logfile.touch()
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_idle_worker, args=(url, str(logfile)))
    proc.start()
    time.sleep(3)  # worker up and LISTENing
    with session_scope() as session:
        _, key = create_key(session, "bench-first", ["admin"])
    headers = {"Authorization": f"Bearer {key}"}
    latencies = []
    try:
        with TestClient(create_app(run_worker=False)) as client, logfile.open() as fh:
            for _ in range(repeats):
                uid = new_update(2)
                t_publish = time.time()
                resp = client.post(f"/v1/updates/{uid}/publish", headers=headers)
                bid = resp.json()["broadcast_id"]
                deadline = time.monotonic() + 15
                first = None
                while first is None and time.monotonic() < deadline:
                    for line in fh:
                        rec = json.loads(line)
                        if rec["key"].startswith(f"bc{bid}-"):
                            first = rec["t"]
                            break
                    else:
                        time.sleep(0.002)
                if first is not None:
                    latencies.append(first - t_publish)
                    for _ in fh:  # skip the rest of this broadcast's lines
                        pass
                time.sleep(0.3)
    finally:
        proc.terminate()
        proc.join(timeout=20)
    return latencies


def ms(v: float) -> str:
    return f"{v * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--publish-repeats", type=int, default=20)
    args = parser.parse_args()
    n = args.recipients
    admin_url = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    admin_url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"bench_fanout_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    results: dict[str, Any] = {"recipients": n}
    try:
        from broadcaster import migrate

        configure(url)
        migrate.upgrade(url)
        log(f"database {name}; seeding {n:,} subscribers ...")
        seed(url, n)

        copy_s = copy_baseline(url, n)
        log(f"[1] baseline COPY {n:,} rows: {copy_s:.2f} s ({n / copy_s:,.0f} rows/s)")

        pub = publish_latency(args.publish_repeats)
        p50 = statistics.median(pub)
        log(f"[2] publish API ({n:,}-recipient audience): p50 {ms(p50)}, max {ms(max(pub))}  (goal < 100 ms)")
        hook = hook_latency(args.publish_repeats)
        log(f"    of which start_broadcast + commit: p50 {ms(statistics.median(hook))}, max {ms(max(hook))}")
        results["start_broadcast_p50_ms"] = statistics.median(hook) * 1000
        cnt = counts_latency(5)
        log(
            f"    audience_counts ({n:,} subscribers; run by publish only when APPROVAL_AUDIENCE_THRESHOLD > 0 "
            f"and the severity rule did not already apply): p50 {ms(statistics.median(cnt))}"
        )
        results["audience_counts_p50_ms"] = statistics.median(cnt) * 1000

        _bid, plan_s, total = plan_big()
        log(
            f"[3] fan-out planning {total:,} rows: {plan_s:.2f} s ({total / plan_s:,.0f} rows/s) = "
            f"{copy_s / plan_s:.2f}x COPY speed (goal <= 5 s for 1M, i.e. >= 0.2x COPY)"
        )
        results.update(copy_s=copy_s, publish_p50_ms=p50 * 1000, plan_s=plan_s, planned=total)

        for label, target in (("raw SKIP LOCKED loop (baseline)", _raw_loop), ("ours: claim + record", _ours_loop)):
            reset_pending(url)
            r = run_two(target, url)
            results[label] = r
            log(
                f"[4] {label}, 2 processes: {r['rows']:,} rows at {r['rate']:,.0f} rows/s; first third "
                f"{r['first_rate']:,.0f}/s -> last third {r['last_rate']:,.0f}/s "
                f"(decay ratio {r['last_rate'] / max(r['first_rate'], 1):.2f})"
            )
        base = results["raw SKIP LOCKED loop (baseline)"]["rate"]
        ours = results["ours: claim + record"]["rate"]
        log(f"    claim ratio ours/raw = {ours / max(base, 1):.2f} (goal >= 30k rows/s, no decay)")

        reset_pending(url)
        r = run_two(_full_worker, url)
        results["full worker"] = r
        log(
            f"[5] full worker (claim, render, in-memory send, record), 2 processes: {r['rows']:,} sent at "
            f"{r['rate']:,.0f}/s = {r['rate'] / max(base, 1):.2f}x the raw claim loop; first third "
            f"{r['first_rate']:,.0f}/s -> last {r['last_rate']:,.0f}/s; max RSS {r['rss_mb']:.0f} MB (goal < 300 MB)"
        )

        lat = first_call_latency(url, 10)
        if lat:
            results["first_call_p50_ms"] = statistics.median(lat) * 1000
            log(
                f"[6] publish -> first provider call: p50 {ms(statistics.median(lat))}, max {ms(max(lat))} "
                f"over {len(lat)} publishes (goal p50 < 300 ms)"
            )
        else:
            log("[6] publish -> first provider call: no send observed")
        print(json.dumps(results, default=float))
    finally:
        from broadcaster.db import reset_engine

        reset_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
