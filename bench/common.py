"""What the HTTP benches share: ports, starting and stopping the servers they measure, a migrated database with
an admin key, the published banner they read, `wrk` runs and their parsing, and the table of medians.

Used by bench/banner.py, bench/static_banner.py, bench/public_under_load.py, bench/inbound_alerts.py and
bench/responses.py (each runs as a script: `python bench/<name>.py` puts this directory first on sys.path).
Everything a helper starts is stopped by PID (`stop`); nothing here reads a benchmark's own arguments
except `add_wrk_arguments` / `interleaved_runs`, which share the wrk options of the banner benches.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CLK_TCK = os.sysconf("SC_CLK_TCK")

#: a server under test: (name shown in the output, URL wrk asks for, the process whose CPU is counted)
Server = tuple[str, str, subprocess.Popen[bytes]]


# --- processes --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_tools(*tools: str) -> None:
    """Exit with the install command when a Debian tool (wrk, nginx) is missing."""
    for tool in tools:
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing: apt-get install wrk nginx-light")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200; exit if `proc` dies first or nothing answers within `timeout` s."""
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


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM `proc` (if it still runs), SIGKILL it after `timeout` s, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def service_env(db_url: str, public_url: str, *, worker_in_process: bool, **extra: str) -> dict[str, str]:
    """This process's environment plus what the service under test needs (`extra`: more settings)."""
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "PUBLIC_URL": public_url,
        "WORKER_IN_PROCESS": "true" if worker_in_process else "false",
        "LOG_LEVEL": "WARNING",
        "SEND_HOLD_SECONDS": "0",  # measured from publish to the first call: no send hold
        **extra,
    }


def start_uvicorn(
    app: str, port: int, *, env: dict[str, str], cwd: Path, workers: int | None = None
) -> subprocess.Popen[bytes]:
    """`uvicorn <app>` on 127.0.0.1:`port` with the production flags (uvloop, httptools, no access log);
    `workers` None: uvicorn's single process, as `broadcaster serve` runs it."""
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    return subprocess.Popen(cmd, env=env, cwd=cwd)


def nginx_user() -> str:
    """The `user` directive nginx needs when started as root (its workers would otherwise drop to nobody)."""
    return "user root;" if os.geteuid() == 0 else ""


def start_nginx(conf: str, tmp: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground with `conf` (written to `tmp`/nginx.conf), prefix `tmp`."""
    path = tmp / "nginx.conf"
    path.write_text(conf)
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen([nginx_bin, "-c", str(path), "-p", str(tmp), "-g", "daemon off;"], cwd=tmp)


def process_cpu_seconds(pid: int) -> float | None:
    """user+system CPU seconds of one process so far (from /proc), None when it is gone."""
    stat = _proc_stat(pid)
    return None if stat is None else stat[1] / CLK_TCK


def tree_cpu_seconds(root: int) -> float:
    """user+system CPU seconds of `root` and all its descendants (from /proc)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            parents[int(entry)], ticks[int(entry)] = stat
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total / CLK_TCK


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, user+system clock ticks) of `pid` from /proc/<pid>/stat; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


# --- the database and the banner --------------------------------------------------------------------------


def prepare_database(db_url: str) -> str:
    """Migrate `db_url`, point this process at it and create an admin key; returns the key."""
    os.environ["DATABASE_URL"] = db_url
    from broadcaster import migrate
    from broadcaster.db import session_scope
    from broadcaster.security import create_key

    migrate.upgrade(db_url)
    with session_scope() as session:
        _, key = create_key(session, f"bench-{os.getpid()}", ["admin"])
    return key


def put_loosening_map(base: str, admin: dict[str, str], routing_map: dict[str, Any]) -> None:
    """PUT a routing map whose alert rules publish automatically: the admin's PUT is a proposal (202) that a
    second key (the publish scope) approves with its ETag (docs/core.md, "Routing-map versions")."""
    resp = httpx.put(base + "/v1/routing-map", headers=admin, json=routing_map)
    resp.raise_for_status()
    if resp.status_code == 202:
        from broadcaster.db import session_scope
        from broadcaster.security import create_key

        with session_scope() as session:
            _, second = create_key(session, f"bench-approver-{os.getpid()}", ["read", "publish"])
        approved = httpx.post(
            f"{base}/v1/routing-map/versions/{resp.json()['number']}/approve",
            headers={"Authorization": f"Bearer {second}", "If-Match": resp.headers["ETag"]},
        )
        approved.raise_for_status()


@contextlib.contextmanager
def workspace(prefix: str, database_url: str | None = None) -> Iterator[tuple[Path, str]]:
    """A temporary directory and the URL of the database to run on: a SQLite file in the directory, or with
    `database_url` (a PostgreSQL server) a private database created on it; both removed on exit."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    private_db: tuple[str, str] | None = None
    try:
        db_url = f"sqlite:///{tmp}/bench.db"
        if database_url:
            private_db = create_private_database(database_url)
            db_url = private_db[1]
        yield tmp, db_url
    finally:
        if private_db is not None:
            drop_private_database(*private_db)
        shutil.rmtree(tmp, ignore_errors=True)


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
    """Drop (WITH FORCE) a database made by `create_private_database`."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from broadcaster.db import reset_engine

    reset_engine()
    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def publish_banner(base: str, key: str) -> None:
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


def wait_converged(urls: Sequence[str], done: Callable[[set[bytes]], bool], who: str, timeout: float = 30.0) -> bytes:
    """Ask each URL 20 times (each worker has its own cache) until `done(bodies)`; returns one of the bodies."""
    deadline = time.monotonic() + timeout
    while True:
        bodies = {httpx.get(url).content for url in urls for _ in range(20)}
        if done(bodies):
            return next(iter(bodies))
        if time.monotonic() > deadline:
            raise SystemExit(f"{who} did not converge on the published banner: {bodies}")
        time.sleep(0.2)


# --- wrk ----------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One wrk run against one server: throughput, latency percentiles, errors and the server's CPU."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cores: float
    req_per_cpu_s: float


@dataclass
class WrkOutput:
    """The figures `wrk --latency` prints."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers + socket errors (connect, read, write, timeout)


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(value)
    number, unit = float(m[1]), m[2]
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def _field(pattern: str, out: str) -> str:
    m = re.search(pattern, out, re.M)
    if m is None:
        raise ValueError(f"wrk output has no {pattern!r}:\n{out}")
    return m[1]


def parse_wrk(out: str) -> WrkOutput:
    """Requests/s, p50/p99 (ms), requests and errors from the output of `wrk --latency`."""
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m[1])
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return WrkOutput(
        rps=float(_field(r"Requests/sec:\s+([\d.]+)", out)),
        p50_ms=_ms(_field(r"^\s+50%\s+(\S+)", out)),
        p99_ms=_ms(_field(r"^\s+99%\s+(\S+)", out)),
        requests=int(_field(r"(\d+) requests in", out)),
        errors=errors,
    )


def wrk(url: str, server_pid: int, *, threads: int, connections: int, duration: int) -> Run:
    """`wrk -t -c -d --latency url`, with the CPU the server (and its children) spent meanwhile."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url]
    cpu0, t0 = tree_cpu_seconds(server_pid), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    cpu1, t1 = tree_cpu_seconds(server_pid), time.monotonic()
    w = parse_wrk(out)
    cpu = cpu1 - cpu0
    return Run(w.rps, w.p50_ms, w.p99_ms, w.requests, w.errors, cpu / (t1 - t0), w.requests / cpu if cpu else 0.0)


def add_wrk_arguments(parser: argparse.ArgumentParser) -> None:
    """--runs, --duration, --threads, --connections, --workers (server processes) and --warmup (seconds)."""
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)


def wrk_description(args: argparse.Namespace) -> str:
    """How the servers are loaded, for the first line of the output."""
    return f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency; {args.runs} runs each, interleaved"


def interleaved_runs(
    servers: Sequence[Server], args: argparse.Namespace, show: Callable[[int, str, Run], None]
) -> dict[str, list[Run]]:
    """A --warmup run against each server, then --runs rounds of one run each (interleaved, so a change in the
    machine's load hits every server alike); `show(round, name, run)` prints each run as it ends."""
    load = {"threads": args.threads, "connections": args.connections}
    for _, url, proc in servers:
        wrk(url, proc.pid, duration=args.warmup, **load)
    results: dict[str, list[Run]] = {name: [] for name, _, _ in servers}
    for i in range(args.runs):
        for name, url, proc in servers:
            run = wrk(url, proc.pid, duration=args.duration, **load)
            results[name].append(run)
            show(i + 1, name, run)
    return results


def median(runs: Sequence[Run], attr: str) -> float:
    """The median of one Run field over `runs`."""
    return statistics.median(getattr(r, attr) for r in runs)


def print_medians(
    results: dict[str, list[Run]], *, width: int, ratio_to: tuple[str, str] | None = None, cores: bool = False
) -> None:
    """A blank line, then per server the medians (rps, p50, p99, req per server CPU-second) and its total
    errors; `ratio_to` (server, label) adds the rps ratio to that server, `cores` the server's cores in use."""
    print()
    header = f"{'':{width}s} {'rps':>10s}"
    if ratio_to:
        header += f" {'x ' + ratio_to[1]:>8s}"
    header += f" {'p50 ms':>8s} {'p99 ms':>8s}"
    if cores:
        header += f" {'cores':>6s}"
    print(header + f" {'req/CPU-s':>10s} {'errors':>7s}")
    for name, runs in results.items():
        line = f"{name:{width}s} {median(runs, 'rps'):>10,.0f}"
        if ratio_to:
            line += f" {median(runs, 'rps') / median(results[ratio_to[0]], 'rps'):>8.2f}"
        line += f" {median(runs, 'p50_ms'):>8.2f} {median(runs, 'p99_ms'):>8.2f}"
        if cores:
            line += f" {median(runs, 'server_cores'):>6.2f}"
        print(line + f" {median(runs, 'req_per_cpu_s'):>10,.0f} {sum(r.errors for r in runs):>7d}")
