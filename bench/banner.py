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
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

TARGET_RATIO = 0.35
TARGET_P99_MS = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode}) while waiting for {url}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def tree_cpu_seconds(root: int) -> float:
    """user+system CPU seconds of `root` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total / CLK_TCK


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cores: float
    req_per_cpu_s: float


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(value)
    number, unit = float(m[1]), m[2]
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, server_pid: int, args: argparse.Namespace) -> Run:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url]
    cpu0, t0 = tree_cpu_seconds(server_pid), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=args.duration + 60).stdout
    cpu1, t1 = tree_cpu_seconds(server_pid), time.monotonic()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1])  # type: ignore[index]
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    cpu = cpu1 - cpu0
    return Run(rps, p50, p99, requests, errors, cpu / (t1 - t0), requests / cpu if cpu else 0.0)


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


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def seed(base: str, key: str) -> None:
    """One published critical-free banner with a translation, created through the API."""
    h = {"Authorization": f"Bearer {key}"}
    r = httpx.post(
        base + "/v1/categories",
        headers=h,
        json={"slug": "emergency", "name": "Emergency", "contact": {"phone": "+15551234567", "opening_hours": "24/7"}},
    )
    r.raise_for_status()
    r = httpx.post(
        base + "/v1/incidents",
        headers=h,
        json={
            "title": "Power outage in the north district",
            "category": "emergency",
            "severity": "major",
            "update": {
                "body": "Crews are on site. Expect power back by 18:00. Avoid the area around Main St.",
                "summary": "Power outage in the north district; crews on site, back by 18:00.",
                "translations": {"fr": {"body": "Panne de courant au nord.", "summary": "Panne de courant au nord."}},
            },
        },
    )
    r.raise_for_status()
    update_id = r.json()["updates"][0]["id"]
    httpx.post(f"{base}/v1/updates/{update_id}/publish", headers=h).raise_for_status()


def create_private_database(server_url: str) -> tuple[str, str]:
    """CREATE DATABASE bc_bench_<pid> on the server; returns (admin URL, URL of the new database)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from broadcaster.db import normalize_url

    admin_url = normalize_url(server_url)
    name = f"bc_bench_{os.getpid()}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_private_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from broadcaster.db import reset_engine

    reset_engine()
    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
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
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: apt-get install wrk nginx-light")

    tmp = Path(tempfile.mkdtemp(prefix="bc-bench-"))
    service: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None
    control: subprocess.Popen[bytes] | None = None
    private_db: tuple[str, str] | None = None
    try:
        db_url = f"sqlite:///{tmp}/bench.db"
        if args.database_url:
            private_db = create_private_database(args.database_url)
            db_url = private_db[1]
        svc_port, nginx_port, control_port = free_port(), free_port(), free_port()
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "PUBLIC_URL": f"http://127.0.0.1:{svc_port}",
            "WORKER_IN_PROCESS": "false",
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update({"DATABASE_URL": db_url})
        from broadcaster import migrate
        from broadcaster.db import session_scope
        from broadcaster.security import create_key

        migrate.upgrade(db_url)
        with session_scope() as session:
            _, key = create_key(session, f"bench-{os.getpid()}", ["admin"])

        def uvicorn(app: str, port: int, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)),
                    *("--workers", str(args.workers), "--loop", "uvloop", "--http", "httptools"),
                    *("--no-access-log", "--log-level", "warning"),
                ],
                env={**env, **extra_env},
                cwd=tmp,
            )

        service = uvicorn("broadcaster.asgi:app", svc_port, {})
        svc_url = f"http://127.0.0.1:{svc_port}/v1/banner"
        wait_http(svc_url, service)
        seed(f"http://127.0.0.1:{svc_port}", key)
        # each worker has its own cache; wait until every worker serves the published banner
        deadline = time.monotonic() + 30
        while True:
            bodies = {httpx.get(svc_url).content for _ in range(20)}
            body = next(iter(bodies))
            if len(bodies) == 1 and b"Power outage" in body:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not converge on the published banner: {bodies}")
            time.sleep(0.2)

        (tmp / "www").mkdir()
        (tmp / "www" / "banner.json").write_bytes(body)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=nginx_port, user=user))
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = subprocess.Popen([nginx_bin, "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"], cwd=tmp)
        nginx_url = f"http://127.0.0.1:{nginx_port}/banner.json"
        wait_http(nginx_url, nginx)
        assert httpx.get(nginx_url).content == body, "nginx must serve the same bytes"
        servers = [("nginx", nginx_url, nginx), ("service", svc_url, service)]
        if args.control:
            bench_dir = str(Path(__file__).resolve().parent)
            control = uvicorn(
                "raw_banner_app:app",
                control_port,
                {"BENCH_BODY_FILE": str(tmp / "www" / "banner.json"), "PYTHONPATH": bench_dir},
            )
            control_url = f"http://127.0.0.1:{control_port}/"
            wait_http(control_url, control)
            servers.append(("raw-asgi", control_url, control))

        print(
            f"payload: {len(body)} bytes; database: {db_url.split(':', 1)[0]}; wrk -t{args.threads} "
            f"-c{args.connections} -d{args.duration}s --latency; {args.runs} runs each, interleaved"
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
                    f"  run {i + 1} {name:8s} {run.rps:>10,.0f} rps  p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms"
                    f"  errors {run.errors}  server cores {run.server_cores:4.2f}  req/CPU-s {run.req_per_cpu_s:>8,.0f}"
                )

        def med(name: str, attr: str) -> float:
            return statistics.median(getattr(r, attr) for r in results[name])

        print()
        print(f"{'':10s} {'rps':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'cores':>6s} {'req/CPU-s':>10s} {'errors':>7s}")
        for name in results:
            print(
                f"{name:10s} {med(name, 'rps'):>10,.0f} {med(name, 'p50_ms'):>8.2f} {med(name, 'p99_ms'):>8.2f} "
                f"{med(name, 'server_cores'):>6.2f} {med(name, 'req_per_cpu_s'):>10,.0f} "
                f"{sum(r.errors for r in results[name]):>7d}"
            )
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
        if private_db is not None:
            drop_private_database(*private_db)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
