"""Area targeting benchmark on the local PostgreSQL (docs/areas.md): who is inside a city polygon among 1M
located subscribers, and what the area costs fan-out planning, against a baseline measured in the same run.

    .venv/bin/python bench/area_targeting.py                      # 1M located subscribers (default)
    .venv/bin/python bench/area_targeting.py --subscribers 200000  # quicker
    BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/area_targeting.py

Setup: N subscribers spread uniformly over a 0.6° x 0.45° box (a metro region), generated in SQL; a city
polygon of a few hundred vertices covering about 10% of them. Phases (the private database is dropped at the
end, even on error):
  1. audience count (the preview's `audience_counts`) of the area update: p50 / p99 over --repeats runs, each in
     its own transaction, so each recomputes who is inside (SQL bounding box -> shapely -> area_matches; the
     first run writes every match, later ones only the difference) (goal p99 < 2 s); the same count for a
     category-only update with the same audience size, for scale
  2. fan-out planning (INSERT ... SELECT of the delivery rows) of the area update vs. the category-only update
     with the same audience size: ratio (goal <= 1.5x)
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import configure, log, ms, seed_subscribers  # noqa: E402 (bench/fanout.py: the shared helpers)

#: the region the subscribers live in (lon, lat degrees)
REGION = (-74.3, 40.5, -73.7, 40.95)
CITY_CENTRE = (-74.0, 40.72)


def city_polygon(vertices: int = 360) -> dict[str, Any]:
    """A wobbly ellipse of `vertices` points covering about 10% of REGION's area."""
    region_area = (REGION[2] - REGION[0]) * (REGION[3] - REGION[1])
    a = math.sqrt(0.10 * region_area / math.pi * 1.2)  # semi-axis in longitude
    b = a / 1.2  # in latitude
    ring = []
    for i in range(vertices):
        t = 2 * math.pi * i / vertices
        r = 1 + 0.06 * math.sin(7 * t) + 0.03 * math.cos(13 * t)
        ring.append([round(CITY_CENTRE[0] + a * r * math.cos(t), 6), round(CITY_CENTRE[1] + b * r * math.sin(t), 6)])
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def seed(url: str, n: int) -> None:
    """N located subscribers, all in category `metro` (1); the area update's audience is those inside."""
    seed_subscribers(url, n, ("metro", "control"), "1", emails=False, region=REGION)


def control_audience(url: str, k: int) -> None:
    """Put K random subscribers in category `control` (2): the baseline update's audience, same size."""
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscriber_categories (subscriber_id, category_id) "
                "SELECT id, 2 FROM subscribers ORDER BY md5(id::text) LIMIT :k"
            ),
            {"k": k},
        )
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE subscriber_categories"))
    eng.dispose()


def new_update(incident_id: int, area: dict[str, Any] | None) -> int:
    from broadcaster.db import session_scope
    from broadcaster.models import Update

    with session_scope() as session:
        upd = Update(incident_id=incident_id, body="Water main break", summary="Water", state="draft", area=area)
        session.add(upd)
        session.flush()
        return upd.id


def count_times(uid: int, repeats: int) -> tuple[list[float], int]:
    from broadcaster.db import session_scope
    from broadcaster.delivery.audience import audience_counts
    from broadcaster.models import Update

    times, total = [], 0
    for _ in range(repeats):
        with session_scope() as session:
            upd = session.get(Update, uid)
            started = time.perf_counter()
            counts = audience_counts(session, upd)  # type: ignore[arg-type]
            times.append(time.perf_counter() - started)
            total = counts.get("memory", 0)
    return times, total


def refresh_times(uid: int, repeats: int) -> list[float]:
    """`match_key` alone: bounding box query, shapely, COPY into area_matches."""
    from broadcaster.areas.service import match_key
    from broadcaster.db import session_scope
    from broadcaster.models import Update

    times = []
    for _ in range(repeats):
        with session_scope() as session:
            upd = session.get(Update, uid)
            started = time.perf_counter()
            match_key(session, upd)  # type: ignore[arg-type]
            times.append(time.perf_counter() - started)
    return times


def plan_once(uid: int) -> tuple[float, int]:
    from broadcaster.db import session_scope
    from broadcaster.delivery import planner
    from broadcaster.delivery.entrypoints import start_broadcast
    from broadcaster.models import Update
    from broadcaster.models.delivery import Broadcast

    with session_scope() as session:
        bid = start_broadcast(session, session.get(Update, uid))  # type: ignore[arg-type]
    assert bid is not None
    started = time.perf_counter()
    with session_scope() as session:
        planned = planner.plan_next(session)
    elapsed = time.perf_counter() - started
    assert planned == bid
    with session_scope() as session:
        total = session.get(Broadcast, bid).total  # type: ignore[union-attr]
    return elapsed, int(total)


def clear_deliveries(url: str) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("DELETE FROM deliveries"))
        conn.execute(text("DELETE FROM broadcasts"))
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE deliveries"))
        conn.execute(text("CHECKPOINT"))
    eng.dispose()


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--plan-rounds", type=int, default=2, help="planning runs of each update (best is kept)")
    args = parser.parse_args()
    n = args.subscribers
    admin_url = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    admin_url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"bench_areas_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        from broadcaster import migrate

        configure(url)
        migrate.upgrade(url)
        polygon = city_polygon()
        vertices = len(polygon["coordinates"][0])
        log(f"database {name}; seeding {n:,} located subscribers ...")
        started = time.perf_counter()
        seed(url, n)
        log(f"    seeded in {time.perf_counter() - started:.1f} s; city polygon of {vertices} positions")

        area_uid = new_update(1, {"description": "City centre", "areas": [], "polygon": polygon})
        times, inside = count_times(area_uid, args.repeats)
        log(
            f"[1] audience count, area update ({inside:,} of {n:,} inside = {inside / n:.1%}), {args.repeats} runs: "
            f"p50 {ms(statistics.median(times))}, p99 {ms(p99(times))}, max {ms(max(times))}  (goal p99 < 2 s)"
        )
        log(f"    first run (writes every match): {ms(times[0])}; later runs write only who moved in or out")
        refresh = refresh_times(area_uid, max(3, args.repeats // 2))
        log(f"    of which recomputing who is inside (bbox + shapely + COPY): p50 {ms(statistics.median(refresh))}")

        control_audience(url, inside)
        control_uid = new_update(2, None)
        base_times, base_total = count_times(control_uid, args.repeats)
        log(
            f"    baseline: category-only update, same audience ({base_total:,}): p50 "
            f"{ms(statistics.median(base_times))}, p99 {ms(p99(base_times))}  "
            f"-> area/baseline p50 ratio {statistics.median(times) / statistics.median(base_times):.2f}x"
        )

        best: dict[str, tuple[float, int]] = {}
        for _round in range(args.plan_rounds):
            for label, uid in (("category-only", control_uid), ("area", area_uid)):
                clear_deliveries(url)
                elapsed, total = plan_once(uid)
                if label not in best or elapsed < best[label][0]:
                    best[label] = (elapsed, total)
        (area_s, area_rows), (base_s, base_rows) = best["area"], best["category-only"]
        log(
            f"[2] fan-out planning: category-only {base_rows:,} rows in {base_s:.2f} s; area {area_rows:,} rows in "
            f"{area_s:.2f} s -> ratio {area_s / base_s:.2f}x  (goal <= 1.5x; best of {args.plan_rounds})"
        )
    finally:
        from broadcaster.db import reset_engine

        reset_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
