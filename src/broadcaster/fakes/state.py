"""In-memory state of the fake provider server: recorded requests, queued faults, provider-side memory."""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
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
    #: the status the fake answered (0 while the request is still being answered)
    status: int = 0
    #: receive time: wall clock (comparable with database timestamps) and monotonic (for rates)
    at: float = field(default_factory=time.time)
    mono: float = field(default_factory=time.monotonic)
    #: how an injected timeout played out: "before_accept" (nothing was accepted) or "after_accept" (the
    #: provider accepted and recorded the message, then held the answer past the client's timeout)
    hang: str | None = None

    @property
    def accepted(self) -> bool:
        """The provider took the request (created a message, call, mail...): a 2xx answer, even one that
        reached the client too late (`hang == "after_accept"`)."""
        return 200 <= self.status < 300

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
            "mono": self.mono,
            "hang": self.hang,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordedRequest:
        """The inverse of `as_dict` (a record fetched over the control API from a fake in another process)."""
        return cls(
            provider=data["provider"],
            method=data["method"],
            path=data["path"],
            query=data["query"],
            headers=dict(data["headers"]),
            body=str(data["body"]).encode("utf-8"),
            status=int(data["status"]),
            at=float(data["at"]),
            mono=float(data.get("mono", 0.0)),
            hang=data.get("hang"),
        )


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
    #: set by `RandomFaults` timeouts: "after_accept" answers normally (the message is accepted and recorded
    #: first) after `delay`; "before_accept" waits `delay`, accepts nothing and answers `status`
    hang: str | None = None


@dataclass
class RandomFaults:
    """Probabilistic faults: each matching request fails with probability `rate`. A failure is a timeout
    with probability `timeout_fraction`, otherwise one of `statuses` (429 carries `Retry-After`). A timeout
    hangs `hang_seconds` (set it past the client's timeout); with probability `accept_fraction` the
    provider first accepts and records the message ("after_accept": what turns a timeout into a duplicate
    when the client resends), otherwise nothing is accepted ("before_accept", then a 504)."""

    rate: float
    statuses: tuple[int, ...] = (429, 500, 503)
    timeout_fraction: float = 0.0
    accept_fraction: float = 0.5
    hang_seconds: float = 30.0
    retry_after: str = "1"
    methods: tuple[str, ...] = ("POST",)
    path: str | None = None
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if not 0.0 <= self.timeout_fraction <= 1.0 or not 0.0 <= self.accept_fraction <= 1.0:
            raise ValueError("timeout_fraction and accept_fraction must be between 0 and 1")
        if self.timeout_fraction < 1.0 and not self.statuses:
            raise ValueError("statuses must not be empty unless every failure is a timeout")

    def roll(self, method: str, path: str) -> Fault | None:
        """This request's fault, or None to answer it normally."""
        if method not in self.methods or (self.path is not None and self.path not in path):
            return None
        if self.rng.random() >= self.rate:
            return None
        if self.rng.random() < self.timeout_fraction:
            hang = "after_accept" if self.rng.random() < self.accept_fraction else "before_accept"
            status = None if hang == "after_accept" else 504
            return Fault(status, delay=self.hang_seconds, hang=hang)
        status = self.rng.choice(self.statuses)
        headers = {"Retry-After": self.retry_after} if status == 429 else {}
        return Fault(status, headers)


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
        self._random: dict[str, RandomFaults] = {}
        self.count = 0
        #: provider requests received but not answered yet (hanging, slow or being handled)
        self.in_flight = 0
        #: what the fake Twilio accepted (its Messages and Calls lists), per account
        self.twilio_messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.twilio_calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
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
        """Fail `rate` of `provider`'s requests (POSTs by default) until reset: see `RandomFaults`. Queued
        faults from `inject` still come first. `rate=0` turns random faults off."""
        if provider not in self._faults:
            raise ValueError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
        faults = RandomFaults(
            rate,
            tuple(int(s) for s in statuses),
            timeout_fraction,
            accept_fraction,
            hang_seconds,
            str(retry_after),
            tuple(m.upper() for m in methods),
            path,
            random.Random(seed),
        )
        with self._lock:
            if rate == 0:
                self._random.pop(provider, None)
            else:
                self._random[provider] = faults

    def take_fault(self, provider: str, path: str, method: str = "POST") -> Fault | None:
        with self._lock:
            queue = self._faults.get(provider, [])
            for i, fault in enumerate(queue):
                if fault.path is None or fault.path in path:
                    fault.times -= 1
                    if fault.times <= 0:
                        del queue[i]
                    return fault
            chaos = self._random.get(provider)
            return chaos.roll(method, path) if chaos is not None else None

    def remember_twilio(self, account: str, kind: str, resource: dict[str, Any]) -> None:
        """Keep an accepted Twilio message or call for the Messages/Calls list endpoints."""
        with self._lock:
            (self.twilio_messages if kind == "Messages" else self.twilio_calls)[account].append(resource)

    def twilio_list(self, account: str, kind: str) -> list[dict[str, Any]]:
        """The account's accepted messages or calls, newest first (as Twilio lists them)."""
        with self._lock:
            items = list((self.twilio_messages if kind == "Messages" else self.twilio_calls).get(account, []))
        items.reverse()
        return items

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            for queue in self._faults.values():
                queue.clear()
            self._random.clear()
            self.twilio_messages.clear()
            self.twilio_calls.clear()
            self.count = 0
            self.tweets.clear()
            self.mastodon_idempotency.clear()
            self.bluesky_access_ttl = BLUESKY_ACCESS_TTL
            self.bluesky_refresh_ttl = BLUESKY_REFRESH_TTL
            self.bluesky_used_refresh.clear()
