"""Delivery under contention (issue 9), measured at the provider: real `broadcaster worker` processes (or the
in-process worker of `broadcaster serve` on SQLite) send through the real Twilio adapter to the fake
provider server in its own process, which timestamps every request it receives. Nothing here is timed by
the client: latencies and rates come from the fake's receive times.

    .venv/bin/python bench/contention.py                  # every phase, full sizes (~5 min on a quiet box)
    .venv/bin/python bench/contention.py --quick          # smaller sizes (~2 min)
    .venv/bin/python bench/contention.py --only priority  # one phase: priority, duplicates, rate
    BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/contention.py

Phases (each in a private PostgreSQL database, dropped at the end, even on error; every wait has a deadline):
  priority    a 1M-recipient info (minor) SMS broadcast is sending at TWILIO_SMS_RATE_PER_SECOND through 2
              workers; a 1,000-recipient critical update is published R times. Per publish: the first
              critical request at the fake after publish, and the info requests that arrived between the
              critical's first and last request (0 = its whole audience before any further info SMS).
  duplicates  2 workers, rate-limited, a 3-segment UCS-2 text, a 5 s lease (the old engine held 10 s of
              rate per worker, so rows outlived their lease): duplicates per 10,000 recipients at the fake.
  rate        busiest 1 s and 10 s windows at the fake (in SMS segments) vs the configured rate, with 2
              workers on PostgreSQL and with the in-process worker on SQLite; the documented bound is
              rate x window + burst (burst = 1 s of tokens, delivery/ratelimit.py).

The harness (processes, seeding, publishing, counting at the fake) is tests/delivery/contention.py and
broadcaster.fakes.counting: the regression tests and this script measure the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.delivery.contention import (  # noqa: E402
    BURST_SECONDS,
    body_sends,
    broadcast_state,
    cluster,
    create_category,
    engine_for,
    publish,
    reach,
    seed_subscribers,
    settle,
    suspected_duplicates,
    wait_for,
    worker_env,
)

from broadcaster.fakes.counting import accepted, rate_profile, sms_segments  # noqa: E402
from broadcaster.fakes.testing import FakeHandle, free_port, running_fake_process  # noqa: E402

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: 3 UCS-2 segments once rendered (German, an emoji; the template adds the org name and the contact)
GERMAN_3_SEGMENTS = (
    "Achtung 🚨 Hochwasser im Nordviertel: Verlassen Sie sofort die Erdgeschosse, "
    "meiden Sie Unterführungen und folgen Sie den Einsatzkräften."
)


def log(msg: str) -> None:
    print(msg, flush=True)


def load() -> str:
    """The machine's load averages (the box is shared: read every figure with this in mind)."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


# --- databases and the API in this process ---------------------------------------------------------------


@contextlib.contextmanager
def private_postgres(tag: str) -> Iterator[str]:
    """A fresh, migrated database on the local PostgreSQL; dropped (WITH FORCE) on exit."""
    from broadcaster import migrate

    admin_url = os.environ.get("BENCH_PG_URL", DEFAULT_PG).replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        from broadcaster.db import reset_engine

        reset_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def use(env: dict[str, str]) -> None:
    """Point this process (the API under TestClient, session_scope) at the workers' environment."""
    from broadcaster.channels.registry import adapter_classes
    from broadcaster.db import reset_engine
    from broadcaster.settings import get_settings

    os.environ.update(env)
    get_settings.cache_clear()
    adapter_classes.cache_clear()
    reset_engine()


def admin_headers(name: str) -> dict[str, str]:
    from broadcaster.db import session_scope
    from broadcaster.security import create_key

    with session_scope() as session:
        _, key = create_key(session, name, ["admin"])
    return {"Authorization": f"Bearer {key}"}


@contextlib.contextmanager
def api_client(headers: dict[str, str]) -> Iterator[Any]:
    """The API in this process (TestClient, no worker) with the `emergency` category created."""
    from fastapi.testclient import TestClient

    from broadcaster.app import create_app

    with TestClient(create_app(run_worker=False)) as client:
        create_category(client, headers)
        yield client


def bulk_subscribers(url: str, n: int, *, tagged_from: int, tag: str) -> None:
    """n SMS subscribers +1555NNNNNNN in one INSERT ... SELECT (as bench/fanout.py seeds); those numbered
    >= `tagged_from` carry `tag`."""
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO subscribers (id, phone, email, name, locale, email_confirmed, "
                "email_opted_out, sms_opted_out, test_group, source, created_at, updated_at) "
                "SELECT g + 1, '+1555' || lpad(g::text, 7, '0'), NULL, '', 'en', "
                "false, false, false, false, 'bench', now(), now() "
                "FROM generate_series(0, :n - 1) g"
            ),
            {"n": n},
        )
        conn.execute(text("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :n)"), {"n": n})
        conn.execute(
            text(
                "INSERT INTO subscriber_tags (subscriber_id, tag) "
                "SELECT g + 1, :tag FROM generate_series(:tagged, :n - 1) g"
            ),
            {"n": n, "tagged": tagged_from, "tag": tag},
        )
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE subscribers"))
        conn.execute(text("VACUUM ANALYZE subscriber_tags"))
    eng.dispose()


# --- phases ------------------------------------------------------------------------------------------------


def priority(info_n: int, critical_n: int, rate: float, repeats: int) -> dict[str, Any]:
    info_body = "Info: the recycling centre on Elm Road opens one hour later on Saturday."
    with private_postgres("priority") as url, running_fake_process() as fake:
        env = worker_env(url, fake, twilio_sms_rate_per_second=rate, worker_lease_seconds=30)
        use(env)
        started = time.perf_counter()
        bulk_subscribers(url, info_n, tagged_from=info_n - critical_n, tag="riverside")
        log(f"    seeded {info_n:,} subscribers in {time.perf_counter() - started:.1f} s")
        headers = admin_headers("bench-priority")
        with tempfile.TemporaryDirectory() as tmp, cluster(env, Path(tmp)) as workers, api_client(headers) as client:
            workers.start("w1")
            workers.start("w2")
            time.sleep(2.0)
            info_bid, info_at = publish(client, headers, info_body, severity="minor")
            flowing = wait_for(lambda: fake.count() >= 2 * rate, time.monotonic() + 120, 0.5)
            first_info = min((r.at for r in body_sends(fake, info_body)), default=None)
            if not flowing or first_info is None:
                raise RuntimeError(f"the info broadcast never started sending:\n{workers.log_tail()}")
            log(
                f"    info broadcast {info_bid}: first SMS {first_info - info_at:.1f} s after publish ({info_n:,} rows)"
            )
            runs = [_critical_once(fake, client, headers, info_body, critical_n, rate, k) for k in range(repeats)]
            info_state = broadcast_state(engine_for(url), info_bid)
            cancel = client.post(f"/v1/broadcasts/{info_bid}/cancel", headers=headers)
            logs = workers.log_tail()
        if cancel.status_code != 200:
            log(f"    cancelling the info broadcast answered {cancel.status_code}: {cancel.text[:200]}")
    latencies = [r["first_call_s"] for r in runs if r["first_call_s"] is not None]
    result = {
        "info_recipients": info_n,
        "critical_recipients": critical_n,
        "rate": rate,
        "runs": runs,
        "first_call_p50_s": statistics.median(latencies) if latencies else None,
        "first_call_max_s": max(latencies) if latencies else None,
        "all_reached": all(r["reached"] for r in runs),
        "info_between_total": sum(r["info_between"] for r in runs),
        "info_rows_while_measured": info_state.statuses,
    }
    if not result["all_reached"]:
        log(logs)
    return result


def _critical_once(
    fake: FakeHandle, client: Any, headers: dict[str, str], info_body: str, n: int, rate: float, k: int
) -> dict[str, Any]:
    body = f"CRITICAL {k + 1}: evacuate the riverside area now, go to the sports hall on Hill Road."
    fake.reset()  # keeps the recorded list short; info keeps flowing
    time.sleep(2.0)
    _bid, published = publish(client, headers, body, severity="critical", audience={"tags": ["riverside"]})
    deadline = time.monotonic() + 20 + 2 * n / rate

    def reached() -> bool:
        return reach(body_sends(fake, body), []).received >= n

    done = wait_for(reached, deadline, 0.5)
    time.sleep(1.5)  # what arrives right after the critical's last request counts too
    reqs = fake.requests("twilio")
    critical = accepted(r for r in reqs if body[:30] in (r.form_value("Body") or ""))
    info = [r for r in reqs if info_body[:30] in (r.form_value("Body") or "")]
    first = min((r.at for r in critical), default=None)
    last = max((r.at for r in critical), default=None)
    between = [r for r in info if first is not None and last is not None and first < r.at < last]
    after_publish = [r for r in info if first is not None and published <= r.at <= first]
    run = {
        "first_call_s": round(first - published, 3) if first is not None else None,
        "spread_s": round(last - first, 2) if first is not None and last is not None else None,
        "reached": done,
        "critical_received": reach(critical, []).received,
        "info_between": len(between),
        "info_between_publish_and_first": len(after_publish),
        "info_resumed_after_s": round(min((r.at for r in info if last and r.at > last), default=0) - last, 2)
        if last
        else None,
    }
    log(
        f"    critical #{k + 1}: first SMS {run['first_call_s']} s after publish, {run['critical_received']:,} "
        f"reached in {run['spread_s']} s; info SMS between its first and last: {run['info_between']} "
        f"(between publish and its first: {run['info_between_publish_and_first']}); info resumed "
        f"{run['info_resumed_after_s']} s after its last"
    )
    return run


def duplicates(n: int, rate: float, lease: int) -> dict[str, Any]:
    with private_postgres("dups") as url, running_fake_process() as fake:
        env = worker_env(url, fake, twilio_sms_rate_per_second=rate, worker_lease_seconds=lease)
        use(env)
        engine = engine_for(url)
        phones = seed_subscribers(engine, n)
        headers = admin_headers("bench-dups")
        seconds = n * 3 / rate
        with tempfile.TemporaryDirectory() as tmp, cluster(env, Path(tmp)) as workers, api_client(headers) as client:
            workers.start("w1")
            workers.start("w2")
            time.sleep(2.0)
            bid, published = publish(client, headers, GERMAN_3_SEGMENTS)
            settled, states = settle(fake, engine, [bid], deadline=time.monotonic() + seconds * 1.5 + 60)
            report = client.get(f"/v1/broadcasts/{bid}", headers=headers).json()
            taken_away = sum(
                (Path(tmp) / f"{w}.log").read_text(errors="replace").count("was taken away") for w in ("w1", "w2")
            )
        reqs = body_sends(fake, GERMAN_3_SEGMENTS)
    got = reach(reqs, phones)
    state = states[bid]
    last_at = max((r.at for r in reqs), default=published)
    done_at = state.finished_at.timestamp() if state.finished_at else None
    return {
        "recipients": n,
        "rate": rate,
        "lease_s": lease,
        "segments": sms_segments(reqs[0]) if reqs else None,
        "requests": len(reqs),
        "received": got.received,
        "missing": len(got.missing),
        "duplicates": got.duplicates,
        "per_10k": got.duplicates * 10_000 / n,
        "suspected_in_report": suspected_duplicates(report),
        "rows_dropped_lease_lost": taken_away,
        "state": state.state,
        "settled": settled,
        "publish_to_last_request_s": round(last_at - published, 1),
        "done_after_last_request": done_at is not None and done_at >= last_at,
    }


def rate_adherence(backend: str, n: int, rate: float) -> dict[str, Any]:
    body = "Rate check: water off in the north district until 18:00, boil tap water."
    seconds = n / rate
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(running_fake_process())
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if backend == "postgres":
            url = stack.enter_context(private_postgres("rate"))
        else:
            url = f"sqlite:///{tmp / 'bench.db'}"
            from broadcaster import migrate

            migrate.upgrade(url)
        env = worker_env(url, fake, twilio_sms_rate_per_second=rate, worker_lease_seconds=10)
        use(env)
        engine = engine_for(url)
        seed_subscribers(engine, n)
        headers = admin_headers("bench-rate")
        procs = stack.enter_context(cluster(env, tmp))
        if backend == "postgres":
            procs.start("w1")
            procs.start("w2")
            time.sleep(2.0)
            client = stack.enter_context(api_client(headers))
        else:
            import httpx

            port = free_port()
            procs.start("serve", "serve", "--port", str(port), WORKER_IN_PROCESS="true")
            client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30))
            wait_for(lambda: _answers(client), time.monotonic() + 30, 0.2)
            create_category(client, headers)
        bid, _published = publish(client, headers, body)
        settled, states = settle(fake, engine, [bid], deadline=time.monotonic() + seconds * 1.5 + 45)
        engine.dispose()
        reqs = body_sends(fake, body)
        profile = rate_profile(reqs, sms_segments)
    burst = rate * BURST_SECONDS
    if profile.max_1s > rate + burst:
        log(f"    over the bound: {busiest_window(reqs)}")
    return {
        "backend": backend,
        "rate": rate,
        "segments": profile.units,
        "seconds": round(profile.seconds, 1),
        "average": profile.units / profile.seconds if profile.seconds else None,
        "max_1s": profile.max_1s,
        "max_10s": profile.max_10s,
        "bound_1s": rate + burst,
        "bound_10s": 10 * rate + burst,
        "state": states[bid].state,
        "settled": settled,
    }


def busiest_window(reqs: list[Any], window: float = 1.0, step: float = 0.1) -> str:
    """Segments per `step` seconds around the busiest `window` (evidence for a window over the bound)."""
    times = sorted((r.at, sms_segments(r)) for r in reqs)
    best_at, best = 0.0, 0.0
    for t, _ in times:
        total = sum(w for u, w in times if t <= u < t + window)
        if total > best:
            best_at, best = t, total
    start = best_at - 0.5
    bins = [0.0] * int((window + 1.0) / step)
    for u, w in times:
        i = int((u - start) / step)
        if 0 <= i < len(bins):
            bins[i] += w
    return f"{best:g} segments from t0; per {step:g} s from t0-0.5 s: " + " ".join(f"{b:g}" for b in bins)


def _answers(client: Any) -> bool:
    try:
        return bool(client.get("/healthz").status_code == 200)
    except Exception:
        return False


# --- main --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~2 min)")
    parser.add_argument("--only", choices=["priority", "duplicates", "rate"], action="append")
    parser.add_argument("--info-recipients", type=int, help="info broadcast size (default 1M, quick 200k)")
    parser.add_argument("--repeats", type=int, help="critical publishes (default 7, quick 3)")
    args = parser.parse_args()
    phases = args.only or ["priority", "duplicates", "rate"]
    quick = args.quick
    results: dict[str, Any] = {"load_before": load()}
    log(f"load before: {results['load_before']}")

    if "priority" in phases:
        info_n = args.info_recipients or (200_000 if quick else 1_000_000)
        repeats = args.repeats or (3 if quick else 7)
        rate = 500.0
        log(f"[priority] {info_n:,}-recipient info SMS at {rate:g} segments/s, 2 workers; 1,000-recipient critical")
        r = priority(info_n, 1_000, rate, repeats)
        results["priority"] = r
        log(
            f"[priority] publish -> first critical SMS: p50 {r['first_call_p50_s']:.3f} s, max "
            f"{r['first_call_max_s']:.3f} s over {len(r['runs'])} publishes (target p50 < 1 s); whole audience "
            f"reached every time: {r['all_reached']}; info SMS between the critical's first and last request: "
            f"{r['info_between_total']} in total (target 0)"
        )

    if "duplicates" in phases:
        n, rate, lease = (3_000, 600.0, 5) if quick else (10_000, 600.0, 5)
        log(f"[duplicates] {n:,} recipients, 3-segment UCS-2, {rate:g} segments/s, lease {lease} s, 2 workers")
        d = duplicates(n, rate, lease)
        results["duplicates"] = d
        log(
            f"[duplicates] {d['requests']:,} requests ({d['segments']} segments each) for {n:,} recipients: "
            f"{d['duplicates']} duplicates = {d['per_10k']:.1f} per 10,000 (target 0); missing {d['missing']}; "
            f"rows dropped after losing their lease {d['rows_dropped_lease_lost']}; suspected in the report "
            f"{d['suspected_in_report']}; state {d['state']} (done after the last request: "
            f"{d['done_after_last_request']}), publish -> last request {d['publish_to_last_request_s']} s"
        )

    if "rate" in phases:
        n, rate = (1_500, 100.0) if quick else (5_000, 200.0)
        for backend in ("postgres", "sqlite"):
            who = "2 worker processes" if backend == "postgres" else "the in-process worker (serve)"
            log(f"[rate] {backend}, {who}: {n:,} single-segment SMS at {rate:g} segments/s")
            x = rate_adherence(backend, n, rate)
            results[f"rate_{backend}"] = x
            log(
                f"[rate] {backend}: busiest 1 s {x['max_1s']:g} segments = {x['max_1s'] / rate:.2f}x the rate "
                f"(bound rate + burst = {x['bound_1s']:g}, {x['bound_1s'] / rate:.0f}x); busiest 10 s "
                f"{x['max_10s']:g} = {x['max_10s'] / (10 * rate):.2f}x 10 s of rate (bound {x['bound_10s']:g}, "
                f"{x['bound_10s'] / (10 * rate):.1f}x); average {x['average'] or 0:.1f}/s over {x['seconds']} s; "
                f"state {x['state']}"
            )

    results["load_after"] = load()
    log(f"load after: {results['load_after']}")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
