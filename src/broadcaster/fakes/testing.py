"""Run the fake provider server for tests (yours or ours): in a background thread, or in its own process.

from broadcaster.fakes.testing import running_fake

with running_fake() as fake:
    monkeypatch.setenv(...) for each item of fake.env()   # points every provider at the fake
    fake.inject("twilio", 429, headers={"Retry-After": "7"})
    fake.inject_random("twilio", 0.3, [429, 500, 503], timeout_fraction=0.3)   # 30% fail, until reset
    ... send ...
    [req] = fake.requests("twilio")
    assert req.form_value("To") == "+15005550006"

`running_fake(process=True)` runs it in a child process instead (same handle, driven over the control API):
its receive timestamps then never wait for the test process's GIL while worker processes hammer it.
Count what arrived with `broadcaster.fakes.counting`.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from broadcaster.fakes.credentials import (
    CREDENTIALS,
)
from broadcaster.fakes.server import FakeProviders
from broadcaster.fakes.state import FakeState, RecordedRequest


class FakeHandle:
    """What a test does with a running fake, wherever it runs: read requests, inject faults, configure."""

    url: str

    def requests(self, provider: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        raise NotImplementedError

    def inject(self, provider: str, status: int | None = 500, **kwargs: Any) -> None:
        """Queue a fault: status (None: answer normally after `delay`), headers, body, delay, times, path."""
        raise NotImplementedError

    def inject_random(
        self,
        provider: str,
        rate: float,
        statuses: Sequence[int] = (429, 500, 503),
        *,
        timeout_fraction: float = 0.0,
        accept_fraction: float = 0.5,
        hang_seconds: float = 30.0,
        retry_after: str = "1",
        methods: Sequence[str] = ("POST",),
        path: str | None = None,
        seed: int | None = None,
    ) -> None:
        """Fail `rate` of `provider`'s requests until reset (see `broadcaster.fakes.state.RandomFaults`):
        `statuses` at random (429 with `Retry-After`), or with `timeout_fraction` a hang of `hang_seconds`
        that accepts the message first with probability `accept_fraction`."""
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def count(self) -> int:
        """Requests received since the last reset (recorded or not)."""
        raise NotImplementedError

    def in_flight(self) -> int:
        """Provider requests received and not answered yet (e.g. hanging on an injected timeout)."""
        raise NotImplementedError

    def webhook_url(self, name: str = "default") -> str:
        return f"{self.url}/hooks/{name}"

    def env(self, *, webhook: bool = True) -> dict[str, str]:
        """Environment variables configuring every built-in adapter against this fake."""
        creds = CREDENTIALS
        env = {
            "TWILIO_BASE_URL": self.url,
            "TWILIO_ACCOUNT_SID": creds.twilio_sid,
            "TWILIO_AUTH_TOKEN": creds.twilio_token,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "SENDGRID_BASE_URL": self.url,
            "SENDGRID_API_KEY": creds.sendgrid_key,
            "SENDGRID_FROM_EMAIL": "alerts@broadcaster.example",
            "X_BASE_URL": self.url,
            "X_CONSUMER_KEY": creds.x_consumer_key,
            "X_CONSUMER_SECRET": creds.x_consumer_secret,
            "X_ACCESS_TOKEN": creds.x_access_token,
            "X_ACCESS_TOKEN_SECRET": creds.x_access_secret,
            "MASTODON_BASE_URL": self.url,
            "MASTODON_ACCESS_TOKEN": creds.mastodon_token,
            "BLUESKY_BASE_URL": self.url,
            "BLUESKY_HANDLE": creds.bluesky_handle,
            "BLUESKY_APP_PASSWORD": creds.bluesky_password,
        }
        if webhook:
            env["WEBHOOK_URLS"] = self.webhook_url()
            env["WEBHOOK_SECRET"] = "fake-webhook-secret"  # noqa: S105
        return env


class RunningFake(FakeHandle):
    """A handle on a fake server running in this process."""

    def __init__(self, url: str, state: FakeState) -> None:
        self.url = url
        self.state = state

    def requests(self, provider: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        return self.state.requests(provider, path)

    def inject(self, provider: str, status: int | None = 500, **kwargs: Any) -> None:
        self.state.inject(provider, status, **kwargs)

    def inject_random(
        self, provider: str, rate: float, statuses: Sequence[int] = (429, 500, 503), **kwargs: Any
    ) -> None:
        self.state.inject_random(provider, rate, statuses, **kwargs)

    def reset(self) -> None:
        self.state.reset()

    def count(self) -> int:
        return self.state.count

    def in_flight(self) -> int:
        return self.state.in_flight


class FakeProcess(FakeHandle):
    """A handle on a fake server in a child process, driven through its control API (`/_fake/...`)."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process

    def _call(self, method: str, path: str, data: Any = None) -> Any:
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body, method=method)  # noqa: S310 (our own fake)
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            return json.loads(resp.read())

    def requests(self, provider: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        query = urlencode({k: v for k, v in (("provider", provider), ("path", path)) if v is not None})
        items = self._call("GET", "/_fake/requests" + (f"?{query}" if query else ""))
        return [RecordedRequest.from_dict(item) for item in items]

    def inject(self, provider: str, status: int | None = 500, **kwargs: Any) -> None:
        self._call("POST", "/_fake/inject", {"provider": provider, "status": status, **kwargs})

    def inject_random(
        self, provider: str, rate: float, statuses: Sequence[int] = (429, 500, 503), **kwargs: Any
    ) -> None:
        data = {"provider": provider, "rate": rate, "statuses": list(statuses), **kwargs}
        if "methods" in data:
            data["methods"] = list(data["methods"])
        self._call("POST", "/_fake/inject-random", data)

    def reset(self) -> None:
        self._call("POST", "/_fake/reset")

    def count(self) -> int:
        return int(self._call("GET", "/_fake/health")["count"])

    def in_flight(self) -> int:
        return int(self._call("GET", "/_fake/health")["in_flight"])


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_fake_process(
    host: str = "127.0.0.1", port: int | None = None, *, strict: bool = True
) -> Iterator[FakeProcess]:
    """Start the fake in a child process on a free port (see `running_fake`); stop it on exit."""
    port = port or free_port(host)
    code = f"from broadcaster.fakes.server import serve; serve({host!r}, {port}, strict={strict!r}, quiet=True)"
    proc = subprocess.Popen([sys.executable, "-c", code])  # noqa: S603 (our own interpreter and module)
    fake = FakeProcess(f"http://{host}:{port}", proc)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                fake.count()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the fake provider process did not start on {host}:{port}") from None
                time.sleep(0.05)
        yield fake
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_fake(
    host: str = "127.0.0.1", port: int | None = None, *, record: bool = True, strict: bool = True
) -> Iterator[RunningFake]:
    """Start the fake under uvicorn in a daemon thread on a free port; stop it on exit.

    `strict` (default) checks credentials exactly against `CREDENTIALS` (what `env()` sets), including
    the X OAuth 1.0a signature; `strict=False` accepts any well-formed credentials. For a fake in its own
    process use `running_fake_process`."""
    import uvicorn

    state = FakeState(record=record, credentials=CREDENTIALS if strict else None)
    port = port or free_port(host)
    config = uvicorn.Config(
        FakeProviders(state), host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"fake-providers-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the fake provider server did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield RunningFake(f"http://{host}:{port}", state)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
