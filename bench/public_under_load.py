"""The public banner under anonymous load on SQLite (DESIGN.md: banner p99 < 50 ms while 16 anonymous
subscribes/s and a 200k-row import run), against a baseline measured in the same run.

Starts (and afterwards stops, by PID) the embedded default in a temporary directory: one
`uvicorn broadcaster.asgi:app` process on a fresh SQLite file with the in-process worker (which also runs
the import jobs), one published banner. Then, with an open-loop client asking for GET /v1/banner at a fixed
rate (default 200/s, each request timed on its own connection pool thread):
  1. baseline: the banner alone, for --baseline seconds;
  2. under load: the same banner load while anonymous clients POST /v1/subscribe at --subscribe-rate per
     second (distinct client IPs via X-Forwarded-For from a trusted proxy, so the per-IP limit is not what
     is measured) and a --rows-row CSV is imported (POST /v1/subscribers/import, then the background job),
     until the import is done.
Prints banner p50/p99/max for both phases and their ratio, the import's rows/s, and the subscribe answers
(no 5xx allowed). Exit status 1 when the under-load p99 reaches 50 ms or any request failed.

    .venv/bin/python bench/public_under_load.py [--rows 200000] [--subscribe-rate 16] [--banner-rate 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, prepare_database, service_env, start_uvicorn, stop, wait_http, workspace

ROOT = Path(__file__).resolve().parents[1]
TARGET_P99_MS = 50.0


def seed(base: str, key: str) -> None:
    """One published banner (shorter than bench/common.py's `publish_banner`: what this bench always measured)."""
    h = {"Authorization": f"Bearer {key}"}
    httpx.post(
        base + "/v1/categories",
        headers=h,
        json={"slug": "emergency", "name": "Emergency", "contact": {"phone": "+15551234567"}},
    ).raise_for_status()
    r = httpx.post(
        base + "/v1/incidents",
        headers=h,
        json={
            "title": "Power outage in the north district",
            "category": "emergency",
            "severity": "major",
            "update": {"body": "Crews are on site. Expect power back by 18:00.", "summary": "Power outage."},
        },
    )
    r.raise_for_status()
    update_id = r.json()["updates"][0]["id"]
    httpx.post(f"{base}/v1/updates/{update_id}/publish", headers=h).raise_for_status()


class BannerLoad:
    """Open loop: a request every 1/rate s (spread over threads, one keep-alive connection each)."""

    def __init__(self, port: int, rate: float, threads: int = 4) -> None:
        self.port, self.rate, self.threads = port, rate, threads
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def _run(self, offset: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        interval = self.threads / self.rate
        next_at = time.monotonic() + offset
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_at:
                time.sleep(next_at - now)
            start = next_at  # latency counted from the scheduled time: a stall is not hidden (open loop)
            next_at += interval
            try:
                conn.request("GET", "/v1/banner")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    self.errors[str(resp.status)] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.errors[type(exc).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            self.latencies.append((time.monotonic() - start) * 1000)
        conn.close()

    def __enter__(self) -> BannerLoad:
        for i in range(self.threads):
            t = threading.Thread(target=self._run, args=(i / self.rate,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._workers:
            t.join()

    def summary(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        if not lat:
            return {"requests": 0}
        return {
            "requests": len(lat),
            "p50_ms": round(statistics.median(lat), 2),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
            "max_ms": round(lat[-1], 2),
        }


def subscribers(base: str, rate: float, stop: threading.Event, answers: Counter[str], lat: list[float]) -> None:
    """Anonymous subscribes at `rate`/s, each from its own client IP (X-Forwarded-For, trusted proxy)."""
    n = 0
    interval = 1 / rate
    next_at = time.monotonic()
    with httpx.Client(base_url=base, timeout=30) as c:
        while not stop.is_set():
            now = time.monotonic()
            if now < next_at:
                time.sleep(next_at - now)
            next_at += interval
            n += 1
            ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            body = {"email": f"anon{n}@example.org"} if n % 2 else {"phone": f"+1202555{n % 10000:04d}"}
            t0 = time.monotonic()
            try:
                r = c.post("/v1/subscribe", json=body, headers={"X-Forwarded-For": ip})
                answers[str(r.status_code)] += 1
            except httpx.HTTPError as exc:
                answers[type(exc).__name__] += 1
            lat.append((time.monotonic() - t0) * 1000)


def csv_rows(n: int) -> bytes:
    lines = ["phone,email,name,locale,tags"]
    lines += [f"+1303{i:07d},user{i}@example.org,User {i},en,imported" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--subscribe-rate", type=float, default=16.0)
    parser.add_argument("--banner-rate", type=float, default=200.0)
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds of the no-load baseline")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="give up on the import after this long")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with workspace("bc-bench-load-") as (tmp, db_url):
        return measure(args, tmp, db_url)


def measure(args: argparse.Namespace, tmp: Path, db_url: str) -> int:
    """Start the service (files in `tmp`, on `db_url`), measure both phases, print the figures; 1: target missed."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(
        db_url,
        base,
        worker_in_process=True,  # the embedded default: the worker (and the import runner) in the server
        APPROVAL_SEVERITY="none",
        TRUSTED_PROXIES="127.0.0.1",
        SUBSCRIBE_PHONE_COUNTRIES="*",
        SUBSCRIBE_PHONE_PREFIX_RATE_LIMIT="1000000/hour",
        PYTHONPATH=str(ROOT / "src"),
    )
    sys.path.insert(0, str(ROOT / "src"))
    key = prepare_database(db_url)
    server = start_uvicorn("broadcaster.asgi:app", port, env=env, cwd=tmp)
    results: dict[str, object] = {}
    try:
        wait_http(base + "/v1/banner", server, timeout=60)
        seed(base, key)
        time.sleep(1)
        payload = csv_rows(args.rows)

        print(f"baseline: GET /v1/banner at {args.banner_rate:.0f}/s for {args.baseline:.0f} s ...", flush=True)
        with BannerLoad(port, args.banner_rate) as baseline:
            time.sleep(args.baseline)
        results["baseline"] = baseline.summary() | {"errors": dict(baseline.errors)}

        print(
            f"under load: + {args.subscribe_rate:.0f} anonymous subscribes/s + import of {args.rows:,} rows "
            f"({len(payload) / 1e6:.1f} MB) ...",
            flush=True,
        )
        subs_done = threading.Event()
        answers: Counter[str] = Counter()
        sub_lat: list[float] = []
        with BannerLoad(port, args.banner_rate) as loaded:
            subs = threading.Thread(target=subscribers, args=(base, args.subscribe_rate, subs_done, answers, sub_lat))
            subs.start()
            t0 = time.monotonic()
            with httpx.Client(base_url=base, timeout=300, headers={"Authorization": f"Bearer {key}"}) as api:
                r = api.post("/v1/subscribers/import", content=payload, headers={"Content-Type": "text/csv"})
                upload_s = time.monotonic() - t0
                if r.status_code != 202:
                    raise SystemExit(f"import upload answered {r.status_code}: {r.text[:300]}")
                location = r.headers["location"]
                while True:
                    job = api.get(location).json()
                    if job["state"] in ("done", "failed") or time.monotonic() - t0 > args.max_seconds:
                        break
                    time.sleep(0.5)
            subs_done.set()
            subs.join()
        sub_sorted = sorted(sub_lat)
        results["under_load"] = loaded.summary() | {"errors": dict(loaded.errors)}
        results["import"] = {
            "rows": args.rows,
            "state": job["state"],
            "upload_and_check_s": round(upload_s, 2),
            "rows_done": job["rows_done"],
            "created": job["created"],
            "rejected": job["rejected"],
            "rows_per_second": job["rows_per_second"],
            "wall_s": round(time.monotonic() - t0, 1),
        }
        results["subscribes"] = {
            "answers": dict(answers),
            "p50_ms": round(statistics.median(sub_sorted), 1) if sub_sorted else None,
            "p99_ms": round(sub_sorted[int(len(sub_sorted) * 0.99)], 1) if sub_sorted else None,
        }
    finally:
        stop(server, timeout=30)

    b, u = results["baseline"], results["under_load"]
    assert isinstance(b, dict) and isinstance(u, dict)
    imp, subs_out = results["import"], results["subscribes"]
    assert isinstance(imp, dict) and isinstance(subs_out, dict)
    print()
    print(f"{'banner GET /v1/banner':<28}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, s in (("baseline (no load)", b), ("under load", u)):
        print(f"{name:<28}{s['requests']:>10}{s['p50_ms']:>10}{s['p99_ms']:>10}{s['max_ms']:>10}")
    print(f"p99 under load / baseline: {u['p99_ms'] / b['p99_ms']:.2f}x  (target: under {TARGET_P99_MS:.0f} ms)")
    print(
        f"import: {imp['rows_done']:,} of {imp['rows']:,} rows {imp['state']}, {imp['rows_per_second']} rows/s "
        f"(upload + check {imp['upload_and_check_s']} s, wall {imp['wall_s']} s)"
    )
    print(f"anonymous subscribes: {subs_out['answers']} (p50 {subs_out['p50_ms']} ms, p99 {subs_out['p99_ms']} ms)")
    if args.json:
        print(json.dumps(results, indent=2))
    failed = bool(b["errors"] or u["errors"]) or any(k.startswith("5") or not k.isdigit() for k in subs_out["answers"])
    ok = u["p99_ms"] < TARGET_P99_MS and imp["state"] == "done" and not failed
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
