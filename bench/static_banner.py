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
import subprocess
import sys
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
    add_wrk_arguments(parser)
    args = parser.parse_args()
    require_tools("wrk", "nginx")
    granian_bin = Path(sys.executable).with_name("granian")
    if not granian_bin.exists():
        raise SystemExit("granian is missing: pip install -e '.[bench]'")

    with workspace("bc-static-bench-") as (tmp, db_url):
        return measure(args, granian_bin, tmp, db_url)


def measure(args: argparse.Namespace, granian_bin: Path, tmp: Path, db_url: str) -> int:
    """Start the four servers (files in `tmp`, the service on `db_url`), run wrk against each, print the figures."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        uv_port, gr_port, plain_port, static_port = free_port(), free_port(), free_port(), free_port()
        site = tmp / "site"
        env = service_env(
            db_url,
            f"http://127.0.0.1:{uv_port}",
            worker_in_process=False,
            STATIC_TARGET=str(site),
            STATIC_PUBLIC_URL=f"http://127.0.0.1:{static_port}",
        )
        os.environ.update({k: env[k] for k in ("PUBLIC_URL", "STATIC_TARGET", "STATIC_PUBLIC_URL")})
        key = prepare_database(db_url)

        uv = start_uvicorn("broadcaster.asgi:app", uv_port, env=env, cwd=tmp, workers=args.workers)
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
        publish_banner(uv_url, key)

        from broadcaster.settings import get_settings
        from broadcaster.staticsite.runner import StaticPublisher

        get_settings.cache_clear()
        assert StaticPublisher().run_once(), "static publishing did nothing"
        static_body = (site / "v1/banner.json").read_bytes()
        # every worker of both servers serves the published banner
        wait_converged(
            [uv_url + "/v1/banner", gr_url + "/v1/banner"], lambda bodies: bodies == {static_body}, "servers"
        )

        (tmp / "plain").mkdir()
        (tmp / "plain" / "banner.json").write_bytes(static_body)
        conf = NGINX_CONF.format(tmp=tmp, plain_port=plain_port, static_port=static_port, user=nginx_user())
        nginx = start_nginx(conf, tmp)
        procs.append(nginx)
        plain_url = f"http://127.0.0.1:{plain_port}/banner.json"
        static_url = f"http://127.0.0.1:{static_port}/v1/banner.json"
        wait_http(plain_url, nginx)
        assert httpx.get(static_url).content == httpx.get(plain_url).content == static_body

        problems = check_granian(uv_url, gr_url)
        servers: list[Server] = [
            ("nginx-plain", plain_url, nginx),
            ("nginx-static", static_url, nginx),
            ("uvicorn", uv_url + "/v1/banner", uv),
            ("granian", gr_url + "/v1/banner", gr),
        ]
        print(f"payload: {len(static_body)} bytes; {wrk_description(args)}; load before: {os.getloadavg()[0]:.2f}")

        def show(i: int, name: str, run: Run) -> None:
            print(
                f"  run {i} {name:12s} {run.rps:>10,.0f} rps  p50 {run.p50_ms:6.2f} ms  "
                f"p99 {run.p99_ms:6.2f} ms  errors {run.errors}  server cores {run.server_cores:4.2f}"
            )

        results = interleaved_runs(servers, args, show)

        print_medians(results, width=12, ratio_to=("nginx-plain", "plain"))
        ratio = median(results["granian"], "rps") / median(results["uvicorn"], "rps")
        print(f"granian / uvicorn: {ratio:.2f}x throughput")
        print("granian feature check:", problems or "same answers as uvicorn")
        print(f"load after: {os.getloadavg()[0]:.2f}")
        return 0
    finally:
        for proc in reversed(procs):
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())
