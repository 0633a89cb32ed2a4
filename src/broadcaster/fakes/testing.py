"""Run the fake provider server in a background thread for tests (yours or ours).

from broadcaster.fakes.testing import running_fake

with running_fake() as fake:
    monkeypatch.setenv(...) for each item of fake.env()   # points every provider at the fake
    fake.inject("twilio", 429, headers={"Retry-After": "7"})
    ... send ...
    [req] = fake.requests("twilio")
    assert req.form_value("To") == "+15005550006"
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from broadcaster.fakes.server import FakeProviders
from broadcaster.fakes.state import FakeState, RecordedRequest

#: credentials the fake accepts (any non-empty value works; these are just convenient)
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "fake-twilio-token"  # noqa: S105 (not a secret: the fake's)
SENDGRID_KEY = "SG.fake-sendgrid-key"
MASTODON_TOKEN = "fake-mastodon-token"  # noqa: S105


class RunningFake:
    """A handle on a fake server running in this process."""

    def __init__(self, url: str, state: FakeState) -> None:
        self.url = url
        self.state = state

    def requests(self, provider: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        return self.state.requests(provider, path)

    def inject(self, provider: str, status: int | None = 500, **kwargs: Any) -> None:
        """Queue a fault: status (None: answer normally after `delay`), headers, body, delay, times, path."""
        self.state.inject(provider, status, **kwargs)

    def reset(self) -> None:
        self.state.reset()

    def webhook_url(self, name: str = "default") -> str:
        return f"{self.url}/hooks/{name}"

    def env(self, *, webhook: bool = True) -> dict[str, str]:
        """Environment variables configuring every built-in adapter against this fake."""
        env = {
            "TWILIO_BASE_URL": self.url,
            "TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": "+15005550006",
            "SENDGRID_BASE_URL": self.url,
            "SENDGRID_API_KEY": SENDGRID_KEY,
            "SENDGRID_FROM_EMAIL": "alerts@broadcaster.example",
            "X_BASE_URL": self.url,
            "X_CONSUMER_KEY": "fake-consumer-key",
            "X_CONSUMER_SECRET": "fake-consumer-secret",
            "X_ACCESS_TOKEN": "fake-access-token",
            "X_ACCESS_TOKEN_SECRET": "fake-access-secret",
            "MASTODON_BASE_URL": self.url,
            "MASTODON_ACCESS_TOKEN": MASTODON_TOKEN,
        }
        if webhook:
            env["WEBHOOK_URLS"] = self.webhook_url()
            env["WEBHOOK_SECRET"] = "fake-webhook-secret"  # noqa: S105
        return env


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_fake(host: str = "127.0.0.1", port: int | None = None, *, record: bool = True) -> Iterator[RunningFake]:
    """Start the fake under uvicorn in a daemon thread on a free port; stop it on exit."""
    import uvicorn

    state = FakeState(record=record)
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
