"""End-to-end SMS for N recipients (default 10,000): Broadcaster's workers beside Apprise 2.x's Twilio
plugin, both sending to the same local fake Twilio endpoint (its own process) in the same run.

    pip install -e '.[bench]'                         # Apprise 2.x (bench extra only)
    .venv/bin/python bench/vs_apprise.py              # 10,000 recipients
    .venv/bin/python bench/vs_apprise.py --quick      # 2,000 recipients
    BENCH_PG_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/vs_apprise.py

Every time is measured from the moment the send is asked for (our publish request; Apprise's `notify()`)
to the receive time of the last request at the fake, so both sides are clocked by the same server:

  ours             N subscribers in a private PostgreSQL database, `broadcaster worker` processes (2 by
                   default), TWILIO_SMS_RATE_PER_SECOND=0 (no limit, like Apprise with its throttle removed);
                   publish through the API -> plan N rows -> claim -> twilio SDK -> the fake.
  apprise          one `twilio://` service with the N numbers as targets (how Apprise is configured for a
                   list), `request_rate_per_sec = 0` (its throttle removed), its SMS URL template pointed at
                   the fake; Apprise posts to the targets one after another with `requests`.
  apprise x K      the same N numbers split over K services in one `Apprise` object: Apprise sends the
                   services in parallel on its shared thread pool (its own concurrency; K = 6 by default,
                   the pool's size on 2 cores).

The ratio that counts is ours / the faster Apprise variant (target >= 2x). The same body text goes out
on every side (ours rendered by the template; Apprise is given that rendered text).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from contention import admin_headers, api_client, load, log, private_postgres, use
from tests.delivery.contention import (
    cluster,
    engine_for,
    publish,
    reach,
    seed_subscribers,
    settle,
    worker_env,
)

from broadcaster.fakes.counting import accepted, sends
from broadcaster.fakes.credentials import TWILIO_SID
from broadcaster.fakes.testing import FakeHandle, running_fake_process

#: Apprise validates a Twilio auth token as [a-z0-9]+ (the fake runs non-strict: any credentials)
APPRISE_TOKEN = "benchtoken0123456789"
FROM = "+15005550006"


def arrivals(fake: FakeHandle, expected: list[str], started: float) -> dict[str, Any]:
    """What reached the fake since its last reset, timed from `started` (wall clock, as the fake stamps)."""
    reqs = accepted(sends(fake.requests("twilio"), "twilio-sms"))
    got = reach(reqs, expected)
    first = min((r.at for r in reqs), default=float("nan"))
    last = max((r.at for r in reqs), default=float("nan"))
    return {
        "seconds": last - started,
        "per_second": got.received / (last - started),
        "first_request_s": first - started,
        "first_to_last_per_second": got.received / max(last - first, 1e-9),
        "received": got.received,
        "duplicates": got.duplicates,
    }


def ours(fake: FakeHandle, n: int, workers: int, body: str) -> dict[str, Any]:
    with private_postgres("apprise") as url:
        env = worker_env(url, fake, twilio_sms_rate_per_second=0, worker_lease_seconds=30)
        use(env)
        engine = engine_for(url)
        phones = seed_subscribers(engine, n, tags=["all"])
        seed_subscribers(engine, 10, start=n, tags=["warmup"])
        headers = admin_headers("bench-apprise")
        with tempfile.TemporaryDirectory() as tmp, cluster(env, Path(tmp)) as procs, api_client(headers) as client:
            for i in range(workers):
                procs.start(f"w{i + 1}")
            # warm-up: every worker up, connected and LISTENing, as deployed workers wait for a publish
            warm, _ = publish(client, headers, "Warm-up message.", audience={"tags": ["warmup"]})
            if not settle(fake, engine, [warm], deadline=time.monotonic() + 60, quiet=1.0)[0]:
                raise RuntimeError(f"the warm-up broadcast did not finish:\n{procs.log_tail()}")
            time.sleep(1.0)
            fake.reset()
            bid, published = publish(client, headers, body, audience={"tags": ["all"]})
            settled, states = settle(fake, engine, [bid], deadline=time.monotonic() + 120, quiet=1.0)
        engine.dispose()
    rendered = next((r.form_value("Body") for r in fake.requests("twilio") if r.method == "POST"), None)
    return {
        "who": f"ours, {workers} worker processes",
        **arrivals(fake, phones, published),
        "state": states[bid].state,
        "settled": settled,
        "rendered": rendered,
    }


def apprise_run(fake: FakeHandle, phones: list[str], body: str, services: int) -> dict[str, Any]:
    import apprise
    from apprise.plugins.twilio import NotifyTwilio

    apobj = apprise.Apprise()
    size = -(-len(phones) // services)
    for i in range(services):
        plugin = NotifyTwilio(
            account_sid=TWILIO_SID, auth_token=APPRISE_TOKEN, source=FROM, targets=phones[i * size : (i + 1) * size]
        )
        plugin.request_rate_per_sec = 0  # the throttle removed (default 0.2 s between requests)
        plugin.notify_sms_url = f"{fake.url}/2010-04-01/Accounts/{{sid}}/Messages.json"
        apobj.add(plugin)
    fake.reset()
    started = time.time()
    ok = apobj.notify(body=body)
    returned = time.time()
    return {
        "who": f"apprise {apprise.__version__}" + (f" x {services} services (thread pool)" if services > 1 else ""),
        **arrivals(fake, phones, started),
        "notify_ok": ok,
        "notify_returned_s": returned - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--recipients", type=int, help="recipients (default 10,000; --quick 2,000)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="our worker processes")
    parser.add_argument("--services", type=int, default=6, help="Apprise services for its parallel variant")
    args = parser.parse_args()
    n = args.recipients or (2_000 if args.quick else 10_000)
    try:
        import apprise
    except ImportError:
        sys.exit("Apprise is not installed: pip install -e '.[bench]'")
    results: dict[str, Any] = {"recipients": n, "apprise": apprise.__version__, "load_before": load()}
    log(f"load before: {results['load_before']}")
    body = "Water main burst on Elm Road: boil tap water until further notice."
    phones = [f"+1555{i:07d}" for i in range(n)]
    with running_fake_process(strict=False) as fake:
        mine = ours(fake, n, args.workers, body)
        text = mine.pop("rendered") or body
        runs = [mine, apprise_run(fake, phones, text, 1), apprise_run(fake, phones, text, args.services)]
    log(f"{n:,} SMS to the local fake, from the send request to the last request received (one run):")
    log(f"{'who':42} {'seconds':>8} {'recipients/s':>13} {'1st request':>12} {'1st->last/s':>12} {'reached':>8} dups")
    for r in runs:
        log(
            f"{r['who']:42} {r['seconds']:8.2f} {r['per_second']:13.0f} {r['first_request_s']:11.3f}s "
            f"{r['first_to_last_per_second']:12.0f} {r['received']:8,} {r['duplicates']:4}"
        )
    best = max(runs[1:], key=lambda r: r["per_second"])
    ratio = mine["per_second"] / best["per_second"]
    log(f"ratio ours / {best['who']} = {ratio:.2f}x (target >= 2x); body sent: {text!r} ({len(text)} chars)")
    results.update(runs=runs, ratio=ratio, load_after=load())
    log(f"load after: {results['load_after']}")
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
