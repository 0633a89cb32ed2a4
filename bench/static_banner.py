"""The banner's read paths side by side, in one run: nginx serving a plain file, nginx serving the static copy
that static publishing wrote, the service's fast path under uvicorn, and the same app under Granian.

Starts (and afterwards stops, by PID) everything in a temporary directory: one published banner created through
the API (SQLite); the static copy written by the real StaticPublisher; nginx (worker_processes 2) with two server
blocks: a plain `banner.json` (same bytes, no extra headers) and the static copy with the headers the docs
recommend (CORS, Cache-Control); uvicorn and Granian with --workers 2 each. Then `wrk` against each, interleaved,
--runs times; prints medians and ratios against plain nginx. Granian is also checked for what the service needs:
the lifespan (banner cache primed, worker started), identical bytes and headers on the banner, 304 on
If-None-Match, the status page and /readyz.

    .venv/bin/python bench/static_banner.py [--runs 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from banner import Run, free_port, seed, stop, wait_http, wrk

NGINX_CONF = """
worker_processes 2;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 65;
    open_file_cache max=1000 inactive=60s;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{plain_port} reuseport;
        root {tmp}/plain;
        location / {{ }}
    }}
    server {{
        listen 127.0.0.1:{static_port} reuseport;
        root {tmp}/site;
        location / {{
            add_header Access-Control-Allow-Origin * always;
            add_header Cache-Control "public, max-age=10, stale-while-revalidate=30" always;
            try_files $uri $uri/index.html =404;
        }}
    }}
}}
"""


def check_granian(uvicorn_base: str, granian_base: str) -> list[str]:
    """What differs between the two servers on the service's own surfaces (empty: nothing)."""
    problems = []
    ignore = {"date", "server"}
    for path in ("/v1/banner", "/v1/banner.js", "/v1/banner.html", "/status", "/v1/feeds/rss.xml", "/readyz"):
        a, b = httpx.get(uvicorn_base + path), httpx.get(granian_base + path)
        if (a.status_code, a.content) != (b.status_code, b.content):
            problems.append(f"{path}: status/body differ ({a.status_code} vs {b.status_code})")
        ha = {k: v for k, v in a.headers.items() if k not in ignore}
        hb = {k: v for k, v in b.headers.items() if k not in ignore}
        if ha != hb:
            problems.append(f"{path}: headers differ: {set(ha.items()) ^ set(hb.items())}")
    etag = httpx.get(granian_base + "/v1/banner").headers["etag"]
    if httpx.get(granian_base + "/v1/banner", headers={"If-None-Match": etag}).status_code != 304:
        problems.append("/v1/banner: no 304 on If-None-Match")
    forwarded = httpx.get(granian_base + "/healthz", headers={"X-Forwarded-Proto": "https"})
    if forwarded.status_code != 200:
        problems.append("/healthz failed")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: apt-get install wrk nginx-light")
    granian_bin = Path(sys.executable).with_name("granian")
    if not granian_bin.exists():
        raise SystemExit("granian is missing: pip install -e '.[bench]'")

    tmp = Path(tempfile.mkdtemp(prefix="bc-static-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db_url = f"sqlite:///{tmp}/bench.db"
        uv_port, gr_port, plain_port, static_port = free_port(), free_port(), free_port(), free_port()
        site = tmp / "site"
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "PUBLIC_URL": f"http://127.0.0.1:{uv_port}",
            "WORKER_IN_PROCESS": "false",
            "LOG_LEVEL": "WARNING",
            "STATIC_TARGET": str(site),
            "STATIC_PUBLIC_URL": f"http://127.0.0.1:{static_port}",
        }
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "PUBLIC_URL", "STATIC_TARGET", "STATIC_PUBLIC_URL")})
        from broadcaster import migrate
        from broadcaster.db import session_scope
        from broadcaster.security import create_key

        migrate.upgrade(db_url)
        with session_scope() as session:
            _, key = create_key(session, f"bench-{os.getpid()}", ["admin"])

        uv = subprocess.Popen(
            [
                *(
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "broadcaster.asgi:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(uv_port),
                ),
                *("--workers", str(args.workers), "--loop", "uvloop", "--http", "httptools"),
                *("--no-access-log", "--log-level", "warning"),
            ],
            env=env,
            cwd=tmp,
        )
        procs.append(uv)
        gr = subprocess.Popen(
            [
                *(str(granian_bin), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(gr_port)),
                *("--workers", str(args.workers), "--loop", "uvloop", "--no-access-log", "--log-level", "warning"),
                "broadcaster.asgi:app",
            ],
            env=env,
            cwd=tmp,
        )
        procs.append(gr)
        uv_url, gr_url = f"http://127.0.0.1:{uv_port}", f"http://127.0.0.1:{gr_port}"
        wait_http(uv_url + "/v1/banner", uv)
        wait_http(gr_url + "/v1/banner", gr)
        seed(uv_url, key)

        from broadcaster.settings import get_settings
        from broadcaster.staticsite.runner import StaticPublisher

        get_settings.cache_clear()
        assert StaticPublisher().run_once(), "static publishing did nothing"
        static_body = (site / "v1/banner.json").read_bytes()
        deadline = time.monotonic() + 30
        while True:  # every worker of both servers serves the published banner
            bodies = {httpx.get(u + "/v1/banner").content for u in (uv_url, gr_url) for _ in range(20)}
            if bodies == {static_body}:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"servers did not converge on the published banner: {bodies}")
            time.sleep(0.2)

        (tmp / "plain").mkdir()
        (tmp / "plain" / "banner.json").write_bytes(static_body)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, plain_port=plain_port, static_port=static_port, user=user))
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = subprocess.Popen([nginx_bin, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"], cwd=tmp)
        procs.append(nginx)
        plain_url = f"http://127.0.0.1:{plain_port}/banner.json"
        static_url = f"http://127.0.0.1:{static_port}/v1/banner.json"
        wait_http(plain_url, nginx)
        assert httpx.get(static_url).content == httpx.get(plain_url).content == static_body

        problems = check_granian(uv_url, gr_url)
        servers = [
            ("nginx-plain", plain_url, nginx),
            ("nginx-static", static_url, nginx),
            ("uvicorn", uv_url + "/v1/banner", uv),
            ("granian", gr_url + "/v1/banner", gr),
        ]
        print(
            f"payload: {len(static_body)} bytes; wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
            f"--latency; {args.runs} runs each, interleaved; load before: {os.getloadavg()[0]:.2f}"
        )
        warm = argparse.Namespace(**{**vars(args), "duration": args.warmup})
        for _, url, proc in servers:
            wrk(url, proc.pid, warm)
        results: dict[str, list[Run]] = {name: [] for name, _, _ in servers}
        for i in range(args.runs):
            for name, url, proc in servers:
                run = wrk(url, proc.pid, args)
                results[name].append(run)
                print(
                    f"  run {i + 1} {name:12s} {run.rps:>10,.0f} rps  p50 {run.p50_ms:6.2f} ms  "
                    f"p99 {run.p99_ms:6.2f} ms  errors {run.errors}  server cores {run.server_cores:4.2f}"
                )

        def med(name: str, attr: str) -> float:
            return statistics.median(getattr(r, attr) for r in results[name])

        base = med("nginx-plain", "rps")
        print(
            f"\n{'':12s} {'rps':>10s} {'x plain':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'req/CPU-s':>10s} {'errors':>7s}"
        )
        for name in results:
            print(
                f"{name:12s} {med(name, 'rps'):>10,.0f} {med(name, 'rps') / base:>8.2f} {med(name, 'p50_ms'):>8.2f} "
                f"{med(name, 'p99_ms'):>8.2f} {med(name, 'req_per_cpu_s'):>10,.0f} "
                f"{sum(r.errors for r in results[name]):>7d}"
            )
        print(f"granian / uvicorn: {med('granian', 'rps') / med('uvicorn', 'rps'):.2f}x throughput")
        print("granian feature check:", problems or "same answers as uvicorn")
        print(f"load after: {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
