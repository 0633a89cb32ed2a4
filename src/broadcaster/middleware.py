"""Pure-ASGI middleware: request-body size cap and `Idempotency-Key` replay for POST."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

import anyio.to_thread
import orjson
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcaster import webpage
from broadcaster.db import session_scope
from broadcaster.errors import PayloadTooLarge
from broadcaster.models import IdempotencyRecord, utcnow
from broadcaster.security import lookup_key

log = logging.getLogger(__name__)


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            + (headers or []),
        }
    )
    await send({"type": "http.response.body", "body": payload})


def size_text(n: int) -> str:
    """A byte count for people: 262144 -> '256 KB', 52428800 -> '50 MB' (binary multiples, as the defaults)."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def too_large(limit: int, setting: str) -> dict[str, Any]:
    """The 413 body, naming the limit that applied and the setting that raises it."""
    return {
        "error": "payload_too_large",
        "detail": f"Request body exceeds the {size_text(limit)} limit ({setting}={limit} bytes).",
        "field": "body",
    }


class BodyTooLarge(PayloadTooLarge):
    """Raised by a streamed body's `receive` past its limit; the app's error handlers answer the 413."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(too_large(limit, setting)["detail"], field="body")


class BodyLimitMiddleware:
    """Answer 413 (one JSON error shape, naming the limit that applied) when a request body is too large.

    The body is read here, up to MAX_BODY_BYTES, before the app sees it: a chunked upload without
    Content-Length gets the same 413 as a declared one (instead of a parse error deep in the app).
    Paths in `streamed` (path -> (limit, setting name)) have their own limit and are not buffered: the app
    streams them, and reading past the limit raises `BodyTooLarge` in the app (answered 413 there).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, streamed: dict[str, tuple[int, str]] | None = None) -> None:
        self.app, self.max_bytes, self.streamed = app, max_bytes, streamed or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit, setting = self.streamed.get(scope["path"], (self.max_bytes, "MAX_BODY_BYTES"))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_json(send, 413, too_large(limit, setting))
            return
        if scope["path"] in self.streamed:
            await self.app(scope, _counting_receive(receive, limit, setting), send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await send_json(send, 413, too_large(limit, setting))
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        await self.app(scope, _replay_receive(b"".join(chunks), receive), send)


def _counting_receive(upstream: Receive, limit: int, setting: str) -> Receive:
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await upstream()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise BodyTooLarge(limit, setting)
        return message

    return receive


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _api_key(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return _header(scope, b"x-api-key")


def _key_id(plaintext: str) -> int | None:
    with session_scope() as session:
        api_key = lookup_key(session, plaintext)
        return api_key.id if api_key else None


class IdempotencyMiddleware:
    """Replay the first response to a POST with the same `Idempotency-Key` and body (per API key).

    The same key with another body answers 422 `idempotency_key_reused`; a retry while the first request
    is still running answers 409. Only successful (2xx/3xx) responses are kept, so a request that failed
    validation can be retried with the same key.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" and scope["method"] == "POST" else None
        plaintext = _api_key(scope) if key else None
        if not key or not plaintext:
            await self.app(scope, receive, send)
            return
        if len(key) > 255:
            await send_json(
                send,
                422,
                {
                    "error": "invalid",
                    "detail": "Idempotency-Key is longer than 255 characters.",
                    "field": "Idempotency-Key",
                },
            )
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        digest = hashlib.sha256(
            scope["method"].encode()
            + b" "
            + scope["path"].encode()
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        ).hexdigest()

        key_id = await anyio.to_thread.run_sync(_key_id, plaintext)
        if key_id is None:  # the endpoint answers 401
            await self.app(scope, _replay_receive(body, receive), send)
            return

        outcome = await anyio.to_thread.run_sync(self._claim, key_id, key, digest, scope)
        if isinstance(outcome, IdempotencyRecord):
            if outcome.request_hash != digest:
                await send_json(
                    send,
                    422,
                    {
                        "error": "idempotency_key_reused",
                        "detail": "This Idempotency-Key was used with a different request body.",
                        "field": "Idempotency-Key",
                    },
                )
            elif outcome.status_code is None and _abandoned(outcome):
                await send_json(
                    send,
                    409,
                    {
                        "error": "idempotency_key_abandoned",
                        "detail": (
                            "The first request with this Idempotency-Key never finished (the server stopped while "
                            "it ran), so its outcome is unknown. Check whether it took effect (e.g. list the "
                            "incidents), then retry with a new key if it did not."
                        ),
                        "field": "Idempotency-Key",
                    },
                )
            elif outcome.status_code is None:
                await send_json(
                    send,
                    409,
                    {
                        "error": "idempotency_in_progress",
                        "detail": "A request with this Idempotency-Key is still being processed.",
                        "field": "Idempotency-Key",
                    },
                )
            else:
                payload = outcome.response_body or b""
                await send(
                    {
                        "type": "http.response.start",
                        "status": outcome.status_code,
                        "headers": [
                            (b"content-type", (outcome.content_type or "application/json").encode()),
                            (b"content-length", str(len(payload)).encode()),
                            (b"idempotent-replayed", b"true"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": payload})
            return

        record_id = outcome
        status_code = 500
        content_type = "application/json"
        captured: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status_code, content_type
            if message["type"] == "http.response.start":
                status_code = message["status"]
                for k, v in message.get("headers", []):
                    if k.lower() == b"content-type":
                        content_type = v.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replay_receive(body, receive), capture)
        finally:
            await anyio.to_thread.run_sync(self._finish, record_id, status_code, content_type, b"".join(captured))

    @staticmethod
    def _claim(key_id: int, key: str, digest: str, scope: Scope) -> IdempotencyRecord | int:
        """Insert a pending record (our id) or return the existing one."""
        try:
            with session_scope() as session:
                # the path is informational (the digest covers it in full); the column holds 500 characters
                record = IdempotencyRecord(
                    api_key_id=key_id, key=key, request_hash=digest, method=scope["method"], path=scope["path"][:500]
                )
                session.add(record)
                session.flush()
                return record.id
        except IntegrityError:
            with session_scope() as session:
                existing = session.scalar(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.api_key_id == key_id, IdempotencyRecord.key == key
                    )
                )
                if existing is None:  # deleted meanwhile: treat as in progress, the client retries
                    return IdempotencyRecord(request_hash=digest, status_code=None)
                session.expunge(existing)
                return existing

    @staticmethod
    def _finish(record_id: int, status: int, content_type: str, body: bytes) -> None:
        with session_scope() as session:
            if status < 400:
                record = session.get(IdempotencyRecord, record_id)
                if record is not None:
                    record.status_code, record.content_type, record.response_body = status, content_type, body
            else:
                session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


#: a first request still unfinished after this long was cut off by a crash or restart, not slow
ABANDONED_AFTER = timedelta(minutes=5)


def _abandoned(record: IdempotencyRecord) -> bool:
    return record.created_at is not None and utcnow() - record.created_at > ABANDONED_AFTER


def _replay_receive(body: bytes, upstream: Receive) -> Receive:
    """Hand the buffered body to the app once, then defer to the real channel (for disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await upstream()

    return receive


#: HTML of these paths loads its own inline script (Swagger UI, ReDoc): only frame-ancestors applies there
_DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def page_csp(frame_ancestors: str) -> str:
    """The Content-Security-Policy of Broadcaster's own HTML: everything from this origin, inline styles (the
    pages carry one <style> block), no scripts from elsewhere, forms post only here."""
    return (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {frame_ancestors}"
    )


def _origin_of(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


async def _send_refusal_page(send: Send, csp: bytes) -> None:
    body = webpage.resident_page(
        "We could not accept this",
        [
            "This form was sent from a page that is not part of this service, so nothing was changed.",
            "If you were answering a message or confirming a subscription, open the link in the message again "
            "and press the button on our page.",
        ],
        problem=True,
    ).encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in webpage.page_headers().items()),
        (b"content-security-policy", csp),
    ]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class PageSecurityMiddleware:
    """Browser-facing rules for every response that passes through the app (the banner fast path sets its own).

    - HTML responses without a CSP get `page_csp(FRAME_ANCESTORS)` (and `X-Frame-Options: DENY` when that is
      `'none'`); the API docs get only `frame-ancestors`.
    - A POST/PUT/PATCH/DELETE that a browser sends from another origin (an `Origin` header that is neither this
      service nor one of FORM_ALLOWED_ORIGINS) and without an API key is refused with 403 naming `Origin`: a page
      elsewhere cannot submit the subscribe, confirm or unsubscribe forms. Requests without `Origin` (curl,
      mail providers' one-click unsubscribe, provider webhooks) and requests with an API key (a browser cannot add
      one cross-origin without CORS, which the API does not grant) are not affected. `Origin: null` (sent under
      a `no-referrer` policy) passes on the signed-link form paths (`webpage.SIGNED_FORM_PATHS`), whose handlers
      then require the page's signed form token (`webpage.null_origin_ok`). A refused browser form post (Accept:
      text/html) gets a plain-language page in the public stylesheet, anything else the JSON error.
    """

    def __init__(self, app: ASGIApp, public_url: str, allowed_origins: list[str], frame_ancestors: str) -> None:
        self.app = app
        self.origins = {o for o in (_origin_of(public_url), *(_origin_of(a) for a in allowed_origins)) if o}
        self.csp = page_csp(frame_ancestors).encode()
        self.docs_csp = f"frame-ancestors {frame_ancestors}".encode()
        self.deny_framing = frame_ancestors.strip() == "'none'"

    def _origin_allowed(self, scope: Scope, origin: str) -> bool:
        origin = origin.strip().lower()
        if origin in self.origins:
            return True
        host = (_header(scope, b"host") or "").lower()
        # same origin as the request itself (what the browser addressed, also behind a TLS-terminating proxy)
        return bool(host) and origin.partition("://")[2] == host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in _UNSAFE_METHODS:
            origin = _header(scope, b"origin")
            if (
                origin is not None
                and _api_key(scope) is None
                and not self._origin_allowed(scope, origin)
                and not (origin.strip().lower() == "null" and scope["path"] in webpage.SIGNED_FORM_PATHS)
            ):
                if "text/html" in (_header(scope, b"accept") or ""):
                    await _send_refusal_page(send, self.csp)
                    return
                await send_json(
                    send,
                    403,
                    {
                        "error": "forbidden",
                        "detail": f"Requests from pages on {origin[:200]} are refused (cross-origin form post).",
                        "field": "Origin",
                    },
                )
                return
        csp = self.docs_csp if scope["path"] in _DOCS_PATHS else self.csp

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"text/html") and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", csp))
                    if self.deny_framing and b"x-frame-options" not in names:
                        headers.append((b"x-frame-options", b"DENY"))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
