"""In-memory state of the fake provider server: recorded requests, queued faults, provider-side memory."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

BLUESKY_ACCESS_TTL = 2 * 3600
BLUESKY_REFRESH_TTL = 90 * 86400
PROVIDERS = ("twilio", "sendgrid", "x", "mastodon", "bluesky", "webhook")


@dataclass
class RecordedRequest:
    """One request as it arrived, and the status the fake answered."""

    provider: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    at: float = field(default_factory=time.time)

    @property
    def form(self) -> dict[str, list[str]]:
        """The form-encoded body (Twilio, Mastodon), every value as a list (keys may repeat)."""
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def form_value(self, key: str) -> str | None:
        values = self.form.get(key)
        return values[0] if values else None

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "at": self.at,
        }


@dataclass(frozen=True)
class Credentials:
    """When given to the fake, auth is checked exactly: Twilio account and token, SendGrid key, the X
    OAuth 1.0a signature (recomputed over the api.twitter.com URL the SDK signed), the Mastodon token and
    the Bluesky handle and app password (createSession)."""

    twilio_sid: str
    twilio_token: str
    sendgrid_key: str
    x_consumer_key: str
    x_consumer_secret: str
    x_access_token: str
    x_access_secret: str
    mastodon_token: str
    bluesky_handle: str
    bluesky_password: str


@dataclass
class Fault:
    """An injected answer. `status` None means: wait `delay` seconds, then answer normally (a slow
    response; a delay past the client's timeout is a timeout). `path` limits it to paths containing it."""

    status: int | None = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    times: int = 1
    path: str | None = None


class FakeState:
    """Thread-safe: the server runs in its own thread while tests read and inject from theirs."""

    def __init__(
        self, *, record: bool = True, max_records: int = 200_000, credentials: Credentials | None = None
    ) -> None:
        self._lock = threading.Lock()
        self.credentials = credentials
        self.record = record
        self._requests: deque[RecordedRequest] = deque(maxlen=max_records)
        self._faults: dict[str, list[Fault]] = {p: [] for p in PROVIDERS}
        self.count = 0
        self.tweets: set[str] = set()
        self.mastodon_idempotency: dict[tuple[str, str], dict[str, Any]] = {}
        #: Bluesky: the key the fake signs its session JWTs with, their lifetimes (seconds; the real PDS
        #: gives 2 h access and 90 d refresh tokens) and the refresh tokens already used (single use)
        self.bluesky_jwt_key = secrets.token_bytes(32)
        self.bluesky_access_ttl = BLUESKY_ACCESS_TTL
        self.bluesky_refresh_ttl = BLUESKY_REFRESH_TTL
        self.bluesky_used_refresh: set[str] = set()
        self._seq = 0

    def next_id(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def use_bluesky_refresh(self, jti: str) -> bool:
        """Spend a refresh token (the PDS rotates them): False when it was already used."""
        with self._lock:
            if jti in self.bluesky_used_refresh:
                return False
            self.bluesky_used_refresh.add(jti)
            return True

    def add(self, req: RecordedRequest) -> None:
        with self._lock:
            self.count += 1
            if self.record:
                self._requests.append(req)

    def requests(self, provider: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            items = list(self._requests)
        return [r for r in items if (provider is None or r.provider == provider) and (path is None or path in r.path)]

    def inject(
        self,
        provider: str,
        status: int | None = 500,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        delay: float = 0.0,
        times: int = 1,
        path: str | None = None,
    ) -> None:
        """Queue a fault for `provider`'s next `times` requests (optionally only paths containing `path`)."""
        if provider not in self._faults:
            raise ValueError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
        with self._lock:
            self._faults[provider].append(Fault(status, dict(headers or {}), body, delay, times, path))

    def take_fault(self, provider: str, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(provider, [])
            for i, fault in enumerate(queue):
                if fault.path is None or fault.path in path:
                    fault.times -= 1
                    if fault.times <= 0:
                        del queue[i]
                    return fault
        return None

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            for queue in self._faults.values():
                queue.clear()
            self.count = 0
            self.tweets.clear()
            self.mastodon_idempotency.clear()
            self.bluesky_access_ttl = BLUESKY_ACCESS_TTL
            self.bluesky_refresh_ttl = BLUESKY_REFRESH_TTL
            self.bluesky_used_refresh.clear()
