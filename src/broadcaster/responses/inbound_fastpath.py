"""A raw ASGI fast path for the answer case of Twilio's inbound SMS webhook (issue 12: >= 1,000 answers/s).

`POST /v1/webhooks/twilio/inbound` through FastAPI costs about 3 ms of CPU before any database work (form
parsing, dependency injection, twilio's RequestValidator, TwiML building). `TwilioInboundFastPath`, the
outermost middleware of the app, answers a plain answer itself: it reads the body, parses it with
`urllib.parse.parse_qsl`, checks `X-Twilio-Signature` with hmac/hashlib exactly as
`receipts.twilio_signature_ok` does (HMAC-SHA1 over the public URL + sorted key+value pairs, with and without
the default port), refuses a forged or unsigned request with the route's 403, and stores the answer (on
PostgreSQL through the batch writer, `responses/answer_writer.py`, which replies once the batch committed; on
SQLite `responses.sms_answers.answer_sms` in a worker thread: the database work never runs on the event loop),
replying with TwiML built from a string template.

Everything else goes to the FastAPI route unchanged (the body read here is replayed to it): STOP/START words,
NUL characters (422), bodies without a Content-Length or over MAX_BODY_BYTES (413), a query string, another
content type, an `Origin` or `Idempotency-Key` header, form bodies that are not plain `k=v&k=v`, and an answer
whose database work raised (its transaction was rolled back; the route re-runs it and its error handlers
answer). HELP, which needs no database, is answered here too. The route stays registered (OpenAPI, and the
fallback for all of the above).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Any
from urllib.parse import parse_qsl, urlparse

import anyio.to_thread
from starlette.responses import Response

from broadcaster import clock
from broadcaster.db import get_engine
from broadcaster.errors import error_response
from broadcaster.responses.answer_writer import SmsAnswerWriter
from broadcaster.responses.sms_answers import SmsAnswer
from broadcaster.settings import get_settings
from broadcaster.subscribers import keywords

log = logging.getLogger(__name__)

INBOUND_PATH = "/v1/webhooks/twilio/inbound"
_FORM = b"application/x-www-form-urlencoded"


def _twilio_urls(url: str) -> tuple[str, str]:
    """(without port, with port): the two URLs twilio's RequestValidator.validate accepts a signature for."""
    uri = urlparse(url)
    if uri.port:
        without = uri._replace(netloc=uri.netloc.split(":")[0]).geturl()
        with_port = uri.geturl()
    else:
        without = uri.geturl()
        with_port = uri._replace(netloc=uri.netloc + ":" + str(443 if uri.scheme == "https" else 80)).geturl()
    return without, with_port


def twilio_signature(token: bytes, url: str, params: dict[str, str]) -> bytes:
    """`RequestValidator(token).compute_signature(url, params)` for single-valued params, as base64 bytes."""
    s = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token, s.encode("utf-8"), hashlib.sha1).digest())


def signature_ok(token: str | None, url: str, params: dict[str, str], signature: bytes | None) -> bool:
    """What `receipts.twilio_signature_ok(settings, url, params, signature)` answers (tests compare the two)."""
    if not signature or not token:
        return False
    key = token.encode("utf-8")
    return any(hmac.compare_digest(twilio_signature(key, u, params), signature) for u in _twilio_urls(url))


def twiml(message: str | None) -> bytes:
    """`str(MessagingResponse().message(message))` (or an empty response), byte for byte."""
    if not message:
        return b'<?xml version="1.0" encoding="UTF-8"?><Response />'
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{text}</Message></Response>'.encode(
        "utf-8", "xmlcharrefreplace"
    )


def _plain_form(body: bytes) -> dict[str, str] | None:
    """The form as Starlette's parser reads it, or None when the body is not plain `k=v&k=v` (the route
    parses anything else)."""
    if b";" in body:
        return None
    parts = body.split(b"&") if body else []
    if any(not p or b"=" not in p for p in parts):
        return None
    # Starlette decodes raw bytes as latin-1 and %-escapes as UTF-8 (errors replaced), as parse_qsl does
    return dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"))


def _answer(params: dict[str, str]) -> str | None:
    from broadcaster.db import session_scope
    from broadcaster.responses.sms_answers import answer_sms

    with session_scope() as session:
        return answer_sms(session, params)


class TwilioInboundFastPath:
    """Pure-ASGI middleware, added last (outermost) in `create_app`."""

    def __init__(self, app: Any, writer: SmsAnswerWriter | None = None) -> None:
        self.app = app
        self.writer = writer or SmsAnswerWriter()

    async def _answer(self, params: dict[str, str]) -> str | None:
        """On PostgreSQL, through the batch writer (`responses/answer_writer.py`); else in a worker thread."""
        sender = params.get("From", "")
        if sender and get_engine().dialect.name == "postgresql":
            sid = params.get("MessageSid") or params.get("SmsSid") or None
            return await self.writer.submit(SmsAnswer(sender, params.get("Body", ""), sid, clock.now()))
        return await anyio.to_thread.run_sync(_answer, params)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != INBOUND_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        length = ctype = signature = None
        for name, value in scope["headers"]:
            # the first of repeated headers, as Starlette's `headers.get`
            if name == b"content-length":
                length = value if length is None else length
            elif name == b"content-type":
                ctype = value if ctype is None else ctype
            elif name == b"x-twilio-signature":
                signature = value if signature is None else signature
            elif name in (b"origin", b"idempotency-key"):
                length = None  # the middleware behind answer these
                break
        if (
            length is None
            or not length.isdigit()
            or int(length) > settings.max_body_bytes
            or scope.get("query_string")
            or scope.get("root_path")
            or ctype is None
            or ctype.split(b";", 1)[0].strip() != _FORM
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            seen += len(chunk)
            more = bool(message.get("more_body"))
            if seen > settings.max_body_bytes:
                break
        body = b"".join(chunks)
        params = _plain_form(body) if not more else None
        if params is None:
            await self.app(scope, _replay(body, more, receive), send)
            return
        url = settings.public_url.rstrip("/") + INBOUND_PATH
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token is not None else None
        if not signature_ok(token, url, params, signature):
            await error_response(403, "forbidden", "Invalid Twilio signature.", field="X-Twilio-Signature")(
                scope, receive, send
            )
            return
        word = keywords.keyword_of(params.get("Body", ""))
        has_nul = any("\x00" in k or "\x00" in v for k, v in params.items())
        if word in keywords.STOP_WORDS or word in keywords.START_WORDS or has_nul:
            await self.app(scope, _replay(body, False, receive), send)
            return
        if word in keywords.HELP_WORDS:
            reply: str | None = keywords.help_text(settings.org_name)
        else:
            try:
                reply = await self._answer(params)
            except Exception:
                # rolled back: the route runs it again, and its error handlers answer what it raises
                log.info("inbound SMS fast path: the answer raised; handing the request to the route", exc_info=True)
                await self.app(scope, _replay(body, False, receive), send)
                return
        await Response(content=twiml(reply), media_type="application/xml")(scope, receive, send)


def _replay(body: bytes, more: bool, receive: Any) -> Any:
    """A `receive` that yields the body already read, then (when the body was not read to its end) the rest."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return dict(await receive())

    return replay
