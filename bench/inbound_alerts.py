"""Inbound alerts: 1,000 Alertmanager notifications, mostly repeats of 50 groups, posted concurrently to the real
service; prints notifications/s and checks exactly 50 incidents and no duplicate public update.

Starts (and stops, by PID) `uvicorn broadcaster.asgi:app` on SQLite (default; one process, as `broadcaster serve`
runs it) or a private PostgreSQL database (--database-url, --workers N), configures an Alertmanager integration
and an auto-publishing rule through the API, then posts: each group's first notification, identical repeats and
5% changed notifications (a second instance joins the group: deferred by the flapping limit, so no public
update), shuffled. Target (issue 14): >= 500 notifications/s, 50 incidents, 50 published updates.

    .venv/bin/python bench/inbound_alerts.py [--notifications 1000] [--groups 50] [--concurrency 8]
        [--database-url postgresql://...] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import (
    free_port,
    prepare_database,
    put_loosening_map,
    service_env,
    start_uvicorn,
    stop,
    wait_http,
    workspace,
)
from tests.integrations.payloads import alertmanager

TARGET_RATE = 500.0

MAP = {
    "categories": [{"slug": "outage", "name": "Outage", "channels": {"major": ["banner"], "minor": ["banner"]}}],
    "alert_rules": [
        {
            "name": "any-down",
            "match_re": {"alertname": "Down.*"},
            "category": "outage",
            "severity": "major",
            "affected_services": ["{{ labels.service }}"],
            "title": "{{ labels.service }} is down",
            "template": "{{ annotations.summary }}",
            "publish": "auto",
        }
    ],
}


def notifications(n: int, groups: int, seed: int = 14) -> list[dict]:
    rng = random.Random(seed)
    out = [alertmanager(group=f"Down{g}", service=f"svc-{g}") for g in range(groups)]
    while len(out) < n:
        g = rng.randrange(groups)
        if rng.random() < 0.05:
            out.append(alertmanager(group=f"Down{g}", service=f"svc-{g}", instances=("db-1:9100", "db-2:9100")))
        else:
            out.append(alertmanager(group=f"Down{g}", service=f"svc-{g}"))
    rng.shuffle(out)
    return out


async def post_all(url: str, token: str, bodies: list[dict], concurrency: int) -> tuple[float, dict[str, int]]:
    """Post every body with `concurrency` connections (aiohttp: a lighter client than httpx, which matters when
    the client shares the 2 cores with the server)."""
    import aiohttp
    import orjson

    queue = [orjson.dumps(b) for b in reversed(bodies)]
    actions: dict[str, int] = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            async with session.post(url, data=body, headers=headers) as resp:
                resp.raise_for_status()
                for r in (await resp.json())["results"]:
                    actions[r["action"]] = actions.get(r["action"], 0) + 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - t0, actions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with workspace("bc-alerts-bench-", args.database_url) as (tmp, db_url):
        return measure(args, tmp, db_url)


def measure(args: argparse.Namespace, tmp: Path, db_url: str) -> int:
    """Start the service (files in `tmp`, on `db_url`), post the notifications, print the figures; 1: FAIL."""
    service: subprocess.Popen[bytes] | None = None
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        # as `broadcaster serve` runs: the worker sends the 50 broadcasts
        env = service_env(db_url, base, worker_in_process=True)
        key = prepare_database(db_url)
        service = start_uvicorn("broadcaster.asgi:app", port, env=env, cwd=tmp, workers=args.workers)
        wait_http(base + "/healthz", service)
        admin = {"Authorization": f"Bearer {key}"}
        put_loosening_map(base, admin, MAP)
        created = httpx.post(
            base + "/v1/integrations", headers=admin, json={"name": "prometheus", "kind": "alertmanager"}
        )
        created.raise_for_status()
        token = created.json()["secret"]
        bodies = notifications(args.notifications, args.groups)
        url = base + "/v1/inbound/alertmanager/prometheus"
        load = os.getloadavg()[0]
        elapsed, actions = asyncio.run(post_all(url, token, bodies, args.concurrency))
        rate = len(bodies) / elapsed

        from sqlalchemy import func, select

        from broadcaster.db import session_scope
        from broadcaster.domain import UpdateState
        from broadcaster.models import Incident, Update
        from broadcaster.models.delivery import Broadcast
        from broadcaster.models.integrations import AlertGroup

        with session_scope() as session:
            incidents = session.scalar(select(func.count()).select_from(Incident)) or 0
            published = session.execute(
                select(Update.incident_id, func.count())
                .where(Update.state == UpdateState.published.value)
                .group_by(Update.incident_id)
            ).all()
            broadcasts = session.scalar(select(func.count()).select_from(Broadcast)) or 0
            changes = session.scalar(select(func.sum(AlertGroup.changes))) or 0
        duplicates = sum(n - 1 for _, n in published if n > 1)
        print(
            f"{len(bodies)} notifications ({args.groups} groups), concurrency {args.concurrency}, "
            f"database {db_url.split(':', 1)[0]}, {args.workers} API process(es); load before {load:.2f}"
        )
        print(f"  processed in {elapsed:.2f} s: {rate:,.0f} notifications/s  (target >= {TARGET_RATE:.0f}/s)")
        print(f"  actions: {dict(sorted(actions.items()))}")
        print(
            f"  incidents {incidents}, published updates {sum(n for _, n in published)} "
            f"(duplicates {duplicates}), broadcasts {broadcasts}, group changes written {changes}"
        )
        ok = rate >= TARGET_RATE and incidents == args.groups and duplicates == 0 and broadcasts == args.groups
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        stop(service)


if __name__ == "__main__":
    sys.exit(main())
