"""Banner endpoint benchmark: the service's fast path against nginx serving the same bytes statically.

Starts (and afterwards stops, by PID) everything it needs in a temporary directory:
  * the service: `uvicorn broadcaster.asgi:app --workers 2` on SQLite (default) or --database-url,
    with one published banner created through the API;
  * nginx (Debian nginx-light) with its own config: worker_processes 2, access_log off, serving the
    exact bytes of GET /v1/banner as a static banner.json.
Then runs `wrk -t2 -c64 -d10s --latency` against each, interleaved, --runs times, and prints the
median rps, p50/p99 latency, server CPU and the ratios. Targets (DESIGN.md, perf-baseline.md 5a):
throughput >= 0.35x nginx, p99 <= 10 ms. Exit status 1 when a target is missed.

    .venv/bin/python bench/banner.py [--runs 3] [--duration 10] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Run,
    Server,
    add_wrk_arguments,
    free_port,
    interleaved_runs,
    median,
    nginx_user,
    prepare_database,
    print_medians,
    publish_banner,
    require_tools,
    service_env,
    start_nginx,
    start_uvicorn,
    stop,
    wait_converged,
    wait_http,
    workspace,
    wrk_description,
)

TARGET_RATIO = 0.35
TARGET_P99_MS = 10.0


NGINX_CONF = """
worker_processes 2;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 65;
    open_file_cache max=100 inactive=60s;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    types {{ application/json json; }}
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;
        location / {{ }}
    }}
}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_wrk_arguments(parser)
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server to use: a private database is created on it and dropped afterwards "
        "(default: a fresh SQLite file in the temp dir)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument(
        "--no-control", dest="control", action="store_false", help="skip the bare raw-ASGI control server"
    )
    args = parser.parse_args()
    require_tools("wrk", "nginx")

    with workspace("bc-bench-", args.database_url) as (tmp, db_url):
        return measure(args, tmp, db_url)


def measure(args: argparse.Namespace, tmp: Path, db_url: str) -> int:
    """Start the servers (files in `tmp`, the service on `db_url`), run wrk, print the figures; 1: a target missed."""
    service: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None
    control: subprocess.Popen[bytes] | None = None
    try:
        svc_port, nginx_port, control_port = free_port(), free_port(), free_port()
        env = service_env(db_url, f"http://127.0.0.1:{svc_port}", worker_in_process=False)
        key = prepare_database(db_url)

        service = start_uvicorn("broadcaster.asgi:app", svc_port, env=env, cwd=tmp, workers=args.workers)
        svc_url = f"http://127.0.0.1:{svc_port}/v1/banner"
        wait_http(svc_url, service)
        publish_banner(f"http://127.0.0.1:{svc_port}", key)
        body = wait_converged(
            [svc_url], lambda bodies: len(bodies) == 1 and b"Power outage" in next(iter(bodies)), "workers"
        )

        (tmp / "www").mkdir()
        (tmp / "www" / "banner.json").write_bytes(body)
        nginx = start_nginx(NGINX_CONF.format(tmp=tmp, port=nginx_port, user=nginx_user()), tmp)
        nginx_url = f"http://127.0.0.1:{nginx_port}/banner.json"
        wait_http(nginx_url, nginx)
        assert httpx.get(nginx_url).content == body, "nginx must serve the same bytes"
        servers: list[Server] = [("nginx", nginx_url, nginx), ("service", svc_url, service)]
        if args.control:
            bench_dir = str(Path(__file__).resolve().parent)
            control_env = env | {"BENCH_BODY_FILE": str(tmp / "www" / "banner.json"), "PYTHONPATH": bench_dir}
            control = start_uvicorn("raw_banner_app:app", control_port, env=control_env, cwd=tmp, workers=args.workers)
            control_url = f"http://127.0.0.1:{control_port}/"
            wait_http(control_url, control)
            servers.append(("raw-asgi", control_url, control))

        print(f"payload: {len(body)} bytes; database: {db_url.split(':', 1)[0]}; {wrk_description(args)}")

        def show(i: int, name: str, run: Run) -> None:
            print(
                f"  run {i} {name:8s} {run.rps:>10,.0f} rps  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms"
                f"  errors {run.errors}  server cores {run.server_cores:4.2f}  req/CPU-s {run.req_per_cpu_s:>8,.0f}"
            )

        results = interleaved_runs(servers, args, show)

        def med(name: str, attr: str) -> float:
            return median(results[name], attr)

        print_medians(results, width=10, cores=True)
        ratio = med("service", "rps") / med("nginx", "rps")
        cpu_ratio = med("service", "req_per_cpu_s") / med("nginx", "req_per_cpu_s")
        p99 = med("service", "p99_ms")
        errors = sum(r.errors for r in results["service"])
        ok_ratio, ok_p99 = ratio >= TARGET_RATIO, p99 <= TARGET_P99_MS
        print()
        print(
            f"throughput ratio service/nginx: {ratio:.2f}x"
            f"  (target >= {TARGET_RATIO}x: {'PASS' if ok_ratio else 'FAIL'})"
        )
        print(f"efficiency ratio (req per server CPU-second): {cpu_ratio:.2f}x")
        print(
            f"service p99 (median of runs): {p99:.2f} ms"
            f"  (target <= {TARGET_P99_MS} ms: {'PASS' if ok_p99 else 'FAIL'})"
        )
        print(f"service errors (non-2xx + socket): {errors}")
        if "raw-asgi" in results:
            print(
                "control: bare raw ASGI on the same uvicorn ="
                f" {med('raw-asgi', 'rps') / med('nginx', 'rps'):.2f}x nginx;"
                f" service/raw-asgi = {med('service', 'rps') / med('raw-asgi', 'rps'):.2f}x"
                f" (p99 {med('raw-asgi', 'p99_ms'):.2f} ms)"
            )
        if args.json:
            print(json.dumps({k: [asdict(r) for r in v] for k, v in results.items()} | {"ratio": ratio}))
        return 0 if ok_ratio and ok_p99 and errors == 0 else 1
    finally:
        stop(control)
        stop(nginx)
        stop(service)


if __name__ == "__main__":
    sys.exit(main())
