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
from broadcaster.fakes.state import Credentials, FakeState, RecordedRequest

#: credentials the fake accepts (any non-empty value works; these are just convenient)
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "fake-twilio-token"  # noqa: S105 (not a secret: the fake's)
SENDGRID_KEY = "SG.fake-sendgrid-key"
MASTODON_TOKEN = "fake-mastodon-token"  # noqa: S105
BLUESKY_HANDLE = "broadcaster.bsky.example"
BLUESKY_PASSWORD = "fake-bluesky-app-password"  # noqa: S105


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


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: what `running_fake(strict=True)` checks auth against (the values `RunningFake.env()` configures)
CREDENTIALS = Credentials(
    twilio_sid=TWILIO_SID,
    twilio_token=TWILIO_TOKEN,
    sendgrid_key=SENDGRID_KEY,
    x_consumer_key="fake-consumer-key",
    x_consumer_secret="fake-consumer-secret",  # noqa: S106 (the fake's)
    x_access_token="fake-access-token",  # noqa: S106
    x_access_secret="fake-access-secret",  # noqa: S106
    mastodon_token=MASTODON_TOKEN,
    bluesky_handle=BLUESKY_HANDLE,
    bluesky_password=BLUESKY_PASSWORD,
)


@contextmanager
def running_fake(
    host: str = "127.0.0.1", port: int | None = None, *, record: bool = True, strict: bool = True
) -> Iterator[RunningFake]:
    """Start the fake under uvicorn in a daemon thread on a free port; stop it on exit.

    `strict` (default) checks credentials exactly against `CREDENTIALS` (what `env()` sets), including
    the X OAuth 1.0a signature; `strict=False` accepts any well-formed credentials."""
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
