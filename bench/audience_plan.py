"""A 1% audience among 1M subscribers on PostgreSQL (issue 13): the time of the audience COUNT the preview and
fan-out run, and its plan, next to baselines measured in the same run on the same data.

    .venv/bin/python bench/audience_plan.py                          # 1M subscribers (default)
    .venv/bin/python bench/audience_plan.py --subscribers 200000     # quicker
    BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/audience_plan.py

A private database (bench/contention.py private_postgres) is created, migrated, seeded
(tests/delivery/audience_plan.py: 1% in category `target`, 1% following service `target-svc`,
0.1% "chose nothing") and dropped at the end, even on error.

Baselines:
  - COUNT(*) of the whole subscribers table (a full scan: what any "scan" plan costs at least), with
    PostgreSQL's parallel workers and in one process (the audience query runs in one);
  - the filter this replaced, `categories = '' OR categories LIKE '%,target,%'`, on a copy of the subscribers
    table that carries the old `,a,b,` column.
Measured: the audience COUNT built by broadcaster.delivery.audience for a 1% category (reach "category"),
a 1% followed service (reach "services") and both (reach "either"), email channel. Median of --repeats runs
after one warm-up run each; the plan's node types are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text, union_all

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from contention import private_postgres  # noqa: E402
from tests.delivery.audience_plan import nodes, plan, seed, seq_scans  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median milliseconds of `repeats` runs after a warm-up run, and the last result."""
    result = fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), result


def node_types(root: dict[str, Any]) -> str:
    return ", ".join(f"{kind}({index or rel})" if (index or rel) else kind for kind, rel, index in nodes(root))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args()
    n = args.subscribers
    out: dict[str, Any] = {"subscribers": n}
    with private_postgres("audience") as url:
        os.environ.update({"DATABASE_URL": url, "LOG_LEVEL": "WARNING"})
        from broadcaster.db import reset_engine, session_scope
        from broadcaster.delivery import audience
        from broadcaster.domain import ChannelKind
        from broadcaster.models import Category, Incident, Update
        from broadcaster.models.delivery import Subscriber
        from broadcaster.settings import get_settings

        get_settings.cache_clear()
        reset_engine()
        engine = create_engine(url)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            seeded = seed(conn, n)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # the steady state autovacuum reaches: visibility map set, so index-only scans stay index-only
            for table in ("subscribers", "subscriber_categories", "subscriber_services", "subscriber_tags"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))
        log(f"seeded {n:,} subscribers and their join rows, vacuumed, in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        with engine.begin() as conn:  # the replaced design: a `,a,b,` column on (a copy of) the same rows
            conn.execute(
                text(
                    "CREATE TABLE legacy_subscribers AS SELECT s.*, CASE WHEN s.all_categories THEN '' "
                    "WHEN s.id % 100 = 0 THEN ',target,' ELSE ',other,' END AS categories FROM subscribers s"
                )
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE legacy_subscribers"))
        log(f"legacy copy with the ',a,b,' column in {time.perf_counter() - t0:.1f} s")
        with engine.connect() as conn:
            full_ms, full_n = timed(lambda: conn.scalar(text("SELECT count(*) FROM subscribers")), args.repeats)
            conn.execute(text("SET max_parallel_workers_per_gather = 0"))
            serial_ms, _ = timed(lambda: conn.scalar(text("SELECT count(*) FROM subscribers")), args.repeats)
            conn.execute(text("RESET max_parallel_workers_per_gather"))
            like_sql = (
                "SELECT count(*) FROM legacy_subscribers WHERE email IS NOT NULL AND email_confirmed "
                "AND NOT email_opted_out AND (categories = '' OR categories LIKE '%,target,%')"
            )
            like_ms, like_n = timed(lambda: conn.scalar(text(like_sql)), args.repeats)
            like_plan = dict(conn.execute(text("EXPLAIN (FORMAT JSON) " + like_sql)).scalar_one()[0]["Plan"])
        engine.dispose()
        log(f"baseline COUNT(*) of all {full_n:,} subscribers: {full_ms:.1f} ms ({serial_ms:.1f} ms in one process)")
        log(f"baseline old LIKE filter, 1% category ({like_n:,} rows): {like_ms:.1f} ms  [{node_types(like_plan)}]")
        out["baseline_full_count_ms"], out["baseline_like_ms"] = round(full_ms, 2), round(like_ms, 2)
        out["baseline_full_count_one_process_ms"] = round(serial_ms, 2)
        cases = [
            ("1% category", "category", ["target-svc"]),
            ("1% service", "services", ["target-svc"]),
            ("1% category + 1% service", "either", ["target-svc"]),
        ]
        with session_scope() as session:
            target = session.scalar(select(Category).where(Category.slug == "target"))
            assert target is not None
            for label, reach, affected in cases:
                target.reach = reach
                incident = Incident(title=label, category_id=target.id, severity="major", affected_services=affected)
                session.add(incident)
                session.flush()
                upd = Update(incident_id=incident.id, body="bench", state="draft")
                session.add(upd)
                session.flush()
                where = audience.subscriber_conditions(upd, ChannelKind.email)
                stmt = select(func.count()).select_from(Subscriber).where(*where)
                ms, count = timed(lambda stmt=stmt: session.scalar(stmt), args.repeats)
                expected = seeded.expected(categories=reach != "services", services=reach != "category")
                assert count == expected, (label, count, expected)
                root = plan(session.connection(), stmt)
                scans = seq_scans(root)
                log(
                    f"{label} (reach {reach}): {count:,} subscribers in {ms:.2f} ms = "
                    f"{ms / full_ms:.3f}x the full COUNT ({ms / serial_ms:.3f}x in one process), "
                    f"{ms / like_ms:.3f}x the old LIKE filter; "
                    f"{'SEQ SCAN on ' + ', '.join(scans) if scans else 'no sequential scan'}\n"
                    f"    plan: {node_types(root)}"
                )
                out[label] = {
                    "reach": reach,
                    "count": count,
                    "ms": round(ms, 2),
                    "vs_full_count": round(ms / full_ms, 4),
                    "vs_full_count_one_process": round(ms / serial_ms, 4),
                    "vs_like": round(ms / like_ms, 4),
                    "seq_scans": scans,
                }
            # a 99% audience (category `other`): the large-reach form next to the 1%-form it replaced (the
            # union, one primary-key lookup per recipient: timed once, it takes seconds) and the LIKE filter
            other = session.scalar(select(Category).where(Category.slug == "other"))
            assert other is not None
            other.reach = "category"
            incident = Incident(title="99%", category_id=other.id, severity="major", affected_services=[])
            session.add(incident)
            session.flush()
            upd = Update(incident_id=incident.id, body="bench", state="draft")
            session.add(upd)
            session.flush()
            t0 = time.perf_counter()
            large = audience.large_reach(session, upd)
            probe_ms = (time.perf_counter() - t0) * 1000
            where = audience.subscriber_conditions(upd, ChannelKind.email)
            stmt = select(func.count()).select_from(Subscriber).where(*where)
            ms, count = timed(lambda stmt=stmt: session.scalar(stmt), args.repeats)
            union_where = [*where[:-1], Subscriber.id.in_(union_all(*audience.reach_branches(upd)))]
            union_stmt = select(func.count()).select_from(Subscriber).where(*union_where)
            t0 = time.perf_counter()
            union_count = session.scalar(union_stmt)
            union_ms = (time.perf_counter() - t0) * 1000
            assert union_count == count, (union_count, count)
            like_other = like_sql.replace(",target,", ",other,")
            like_other_ms, like_other_n = timed(lambda: session.scalar(text(like_other)), args.repeats)
            assert like_other_n == count, (like_other_n, count)
            root = plan(session.connection(), stmt)
            log(
                f"99% category (large reach: {large}, probe {probe_ms:.1f} ms): {count:,} subscribers in "
                f"{ms:.1f} ms = {ms / full_ms:.2f}x the full COUNT, {ms / like_other_ms:.2f}x the old LIKE filter "
                f"({like_other_ms:.1f} ms); the 1%-form union (once): {union_ms:.1f} ms = {union_ms / ms:.2f}x this\n"
                f"    plan: {node_types(root)}"
            )
            out["99% category"] = {
                "count": count,
                "large": large,
                "probe_ms": round(probe_ms, 2),
                "ms": round(ms, 2),
                "vs_full_count": round(ms / full_ms, 4),
                "like_ms": round(like_other_ms, 2),
                "vs_like": round(ms / like_other_ms, 4),
                "union_form_ms": round(union_ms, 2),
            }
            session.rollback()
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
