"""Start the real service (uvicorn serving broadcaster.asgi:app) in a subprocess for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceURL(str):
    """The base URL of a service started by `run_service`, with the PID of its process (tests that kill it)."""

    pid: int


@contextmanager
def run_service(db_url: str, workdir: Path, **env: str) -> Iterator[ServiceURL]:
    """uvicorn on a free port against `db_url`; yields the base URL (`.pid`: its process); stopped (by PID)
    afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    full_env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "PUBLIC_URL": base,
        "WORKER_IN_PROCESS": "false",
        "BANNER_CHECK_SECONDS": "0.2",
        **env,
    }
    log = open(workdir / f"uvicorn-{port}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "broadcaster.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
        + ["--no-access-log", "--log-level", "warning"],
        env=full_env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90  # a generous bound: the box is shared
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {(workdir / f'uvicorn-{port}.log').read_text()}")
            try:
                if httpx.get(base + "/v1/banner.js", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 90 s")
            time.sleep(0.1)
        url = ServiceURL(base)
        url.pid = proc.pid
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def serve_html(html: bytes) -> Iterator[str]:
    """Serve one page from another origin (localhost:<free port>) until the generator is closed; yields its URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{port}/"
    finally:
        server.shutdown()
        server.server_close()


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1):
    """Poll until `predicate()` returns something truthy (returned); AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")
