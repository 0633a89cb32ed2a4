"""The fake provider ASGI app and `broadcaster fake-providers`.

One app serves every provider on its own paths, the way the real SDKs call them:

* Twilio  ``POST /2010-04-01/Accounts/{sid}/Messages.json`` and ``Calls.json`` (form, Basic auth),
  ``GET /2010-04-01/Accounts/{sid}.json``
* SendGrid ``POST /v3/mail/send`` (JSON, Bearer), ``GET /v3/scopes``
* X ``POST /2/tweets`` (JSON, OAuth 1.0a or Bearer), ``GET /2/users/me``
* Mastodon ``POST /api/v1/statuses`` (form or JSON, Bearer, Idempotency-Key),
  ``GET /api/v1/accounts/verify_credentials``
* outbound webhooks ``POST /hooks/{anything}`` (records, answers 200)

Requests are validated as the provider would (auth header, required fields, payload limits) and
recorded. The control API: ``GET /_fake/requests[?provider=]``, ``POST /_fake/inject``
(``{"provider", "status", "headers", "body", "delay", "times", "path"}``), ``POST /_fake/reset``,
``POST /_fake/record`` (``{"enabled": bool}``), ``GET /_fake/health``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import orjson

from broadcaster.fakes.state import PROVIDERS, Credentials, FakeState, RecordedRequest
from broadcaster.rendering.length import mastodon_length
from broadcaster.rendering.sms import analyze

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Reply = tuple[int, dict[str, str], bytes]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
TWILIO_ACCOUNT = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)(?P<rest>/Messages\.json|/Calls\.json|\.json)$")
SENDGRID_MAX_BYTES = 30 * 1024 * 1024
#: Twilio magic numbers (as on Twilio's test credentials): invalid number, unsubscribed (STOP)
TWILIO_INVALID_TO = "+15005550001"
TWILIO_UNSUBSCRIBED_TO = "+15005550004"


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"content-type": "application/json", **(headers or {})}, orjson.dumps(data)


def _twilio_error(status: int, code: int, message: str) -> Reply:
    return _json(
        status,
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
    )


def _sendgrid_error(status: int, message: str, field: str | None = None) -> Reply:
    return _json(status, {"errors": [{"message": message, "field": field, "help": None}]})


def _x_error(status: int, title: str, detail: str) -> Reply:
    return _json(status, {"title": title, "detail": detail, "type": "about:blank", "status": status})


_clock: tuple[int, str] = (0, "")


def _now() -> str:
    """Twilio's RFC 2822 date, formatted once per second."""
    global _clock
    second = int(time.time())
    if _clock[0] != second:
        _clock = (second, datetime.fromtimestamp(second, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"))
    return _clock[1]


class FakeProviders:
    """The ASGI app. `state` is shared with `broadcaster.fakes.testing` handles."""

    def __init__(self, state: FakeState | None = None) -> None:
        self.state = state or FakeState()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        method: str = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        if path.startswith("/_fake/"):
            status, out_headers, payload = self._control(method, path, query, body)
        else:
            status, out_headers, payload = await self._provider(method, path, query, headers, body)
        raw_headers = [(k.encode(), v.encode()) for k, v in out_headers.items()]
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})

    # --- control API ---------------------------------------------------------------------------------
    def _control(self, method: str, path: str, query: str, body: bytes) -> Reply:
        st = self.state
        if path == "/_fake/health":
            return _json(200, {"ok": True, "count": st.count})
        if path == "/_fake/requests" and method == "GET":
            q = parse_qs(query)
            items = st.requests(q.get("provider", [None])[0], q.get("path", [None])[0])
            return _json(200, [r.as_dict() for r in items])
        if path == "/_fake/reset" and method == "POST":
            st.reset()
            return _json(200, {"ok": True})
        if path == "/_fake/record" and method == "POST":
            st.record = bool(json.loads(body or b"{}").get("enabled", True))
            return _json(200, {"record": st.record})
        if path == "/_fake/inject" and method == "POST":
            try:
                data = json.loads(body)
                st.inject(
                    data["provider"],
                    data.get("status", 500),
                    headers=data.get("headers"),
                    body=data.get("body"),
                    delay=float(data.get("delay", 0)),
                    times=int(data.get("times", 1)),
                    path=data.get("path"),
                )
            except (ValueError, KeyError, TypeError) as exc:
                return _json(400, {"error": f"bad fault: {exc}"})
            return _json(200, {"ok": True})
        return _json(404, {"error": "unknown control path"})

    # --- providers -----------------------------------------------------------------------------------
    async def _provider(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Reply:
        provider = self._provider_of(path)
        record = RecordedRequest(provider or "unknown", method, path, query, headers, body)
        self.state.add(record)
        if provider is None:
            record.status = 404
            return _json(404, {"error": f"the fake serves no {path}"})
        fault = self.state.take_fault(provider, path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                record.status = fault.status
                return self._fault_reply(provider, fault.status, fault.headers, fault.body)
        reply: Reply = (
            self._x(method, path, query, headers, body)
            if provider == "x"
            else getattr(self, f"_{provider}")(method, path, headers, body)
        )
        record.status = reply[0]
        return reply

    @staticmethod
    def _provider_of(path: str) -> str | None:
        if path.startswith("/2010-04-01/"):
            return "twilio"
        if path.startswith("/v3/"):
            return "sendgrid"
        if path.startswith("/2/"):
            return "x"
        if path.startswith("/api/v1/"):
            return "mastodon"
        if path.startswith("/hooks/"):
            return "webhook"
        return None

    @staticmethod
    def _fault_reply(provider: str, status: int, headers: dict[str, str], body: Any) -> Reply:
        if body is None:
            body = {
                "twilio": {
                    "code": 20429 if status == 429 else status,
                    "message": f"Injected {status}",
                    "status": status,
                },
                "sendgrid": {"errors": [{"message": f"Injected {status}", "field": None, "help": None}]},
                "x": {"title": f"Injected {status}", "detail": f"Injected {status}", "type": "about:blank"},
                "mastodon": {"error": f"Injected {status}"},
                "webhook": {"error": f"Injected {status}"},
            }[provider]
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        ctype = "text/plain" if isinstance(body, str) else "application/json"
        return status, {"content-type": ctype, **headers}, payload

    # Twilio -------------------------------------------------------------------------------------------
    def _twilio(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        m = TWILIO_ACCOUNT.match(path)
        if m is None:
            return _twilio_error(404, 20404, "The requested resource was not found")
        sid = m["sid"]
        user, password = _basic(headers.get("authorization", ""))
        if user != sid or not password:
            return _twilio_error(401, 20003, "Authenticate")
        creds = self.state.credentials
        if creds is not None and (user, password) != (creds.twilio_sid, creds.twilio_token):
            return _twilio_error(401, 20003, "Authenticate")
        if m["rest"] == ".json":
            return _json(200, {"sid": sid, "status": "active", "friendly_name": "Fake account"})
        if method != "POST":
            return _twilio_error(405, 20004, "Method not allowed")
        if "application/x-www-form-urlencoded" not in headers.get("content-type", ""):
            return _twilio_error(400, 20001, "Content-Type must be application/x-www-form-urlencoded")
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)

        def one(key: str) -> str:
            return form.get(key, [""])[0]

        to, from_ = one("To"), one("From")
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to) or to == TWILIO_INVALID_TO:
            return _twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if m["rest"] == "/Calls.json":
            if not from_:
                return _twilio_error(400, 21213, "Caller phone number is required")
            twiml = one("Twiml")
            if not (one("Url") or twiml or one("ApplicationSid")):
                return _twilio_error(400, 21205, "Url parameter is required.")
            if len(twiml) > 4000:
                return _twilio_error(400, 32018, "TwiML exceeds the 4000 character limit")
            call_sid = "CA" + uuid.uuid4().hex
            return _json(201, {"sid": call_sid, "account_sid": sid, "to": to, "from": from_, "status": "queued"})
        if not (from_ or one("MessagingServiceSid")):
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        text = one("Body")
        if not (text or one("MediaUrl")):
            return _twilio_error(400, 21602, "Message body is required.")
        if len(text) > 1600:
            return _twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if to == TWILIO_UNSUBSCRIBED_TO:
            return _twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        msg_sid = "SM" + uuid.uuid4().hex
        return _json(
            201,
            {
                "sid": msg_sid,
                "account_sid": sid,
                "to": to,
                "from": from_ or None,
                "messaging_service_sid": one("MessagingServiceSid") or None,
                "body": text,
                "status": "queued",
                "num_segments": str(analyze(text).segments),
                "error_code": None,
                "error_message": None,
                "date_created": _now(),
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}.json",
            },
        )

    # SendGrid -----------------------------------------------------------------------------------------
    def _sendgrid(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        auth = headers.get("authorization", "")
        creds = self.state.credentials
        if (
            not auth.startswith("Bearer ")
            or len(auth) <= len("Bearer ")
            or (creds is not None and auth != f"Bearer {creds.sendgrid_key}")
        ):
            return _sendgrid_error(401, "The provided authorization grant is invalid, expired, or revoked")
        if path == "/v3/scopes" and method == "GET":
            return _json(200, {"scopes": ["mail.send"]})
        if path != "/v3/mail/send" or method != "POST":
            return _sendgrid_error(404, "Not found")
        if len(body) > SENDGRID_MAX_BYTES:
            return _sendgrid_error(413, "The JSON payload you have included in your request is too large.")
        try:
            mail = json.loads(body)
        except ValueError:
            return _sendgrid_error(400, "Bad Request")
        error = _validate_sendgrid(mail)
        if error is not None:
            return _sendgrid_error(400, error[1], error[0])
        return 202, {"x-message-id": secrets.token_urlsafe(16)}, b""

    # X ------------------------------------------------------------------------------------------------
    def _x(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Reply:
        auth = headers.get("authorization", "")
        oauth1 = auth.startswith("OAuth ") and all(
            f'{k}="' in auth for k in ("oauth_consumer_key", "oauth_token", "oauth_signature", "oauth_nonce")
        )
        if not (oauth1 or (auth.startswith("Bearer ") and len(auth) > 7)):
            return _x_error(401, "Unauthorized", "Unauthorized")
        if self.state.credentials is not None and not _oauth1_valid(self.state.credentials, method, path, query, auth):
            return _x_error(401, "Unauthorized", "Unauthorized")
        limits = {
            "x-rate-limit-limit": "300",
            "x-rate-limit-remaining": "299",
            "x-rate-limit-reset": str(int(time.time()) + 900),
        }
        if path == "/2/users/me" and method == "GET":
            return _json(200, {"data": {"id": "1", "name": "Fake", "username": "fake"}}, limits)
        if path != "/2/tweets" or method != "POST":
            return _x_error(404, "Not Found Error", f"no route {method} {path}")
        try:
            data = json.loads(body)
        except ValueError:
            return _x_error(400, "Invalid Request", "Request body is not valid JSON")
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text:
            return _x_error(400, "Invalid Request", "One or more parameters to your request was invalid.")
        from twitter_text import parse_tweet

        if parse_tweet(text).weightedLength > 280:
            return _x_error(403, "Forbidden", "Your Tweet text is too long.")
        if text in self.state.tweets:
            return _x_error(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
        self.state.tweets.add(text)
        tweet_id = str(1_800_000_000_000_000_000 + self.state.next_id())
        return _json(201, {"data": {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}}, limits)

    # Mastodon -----------------------------------------------------------------------------------------
    def _mastodon(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        auth = headers.get("authorization", "")
        creds = self.state.credentials
        if not auth.startswith("Bearer ") or len(auth) <= 7 or (creds and auth != f"Bearer {creds.mastodon_token}"):
            return _json(401, {"error": "The access token is invalid"})
        if path == "/api/v1/accounts/verify_credentials" and method == "GET":
            return _json(200, {"id": "1", "username": "fake", "acct": "fake"})
        if path != "/api/v1/statuses" or method != "POST":
            return _json(404, {"error": "Record not found"})
        if headers.get("content-type", "").startswith("application/json"):
            data = json.loads(body or b"{}")
        else:
            data = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        key = headers.get("idempotency-key")
        if key and (auth, key) in self.state.mastodon_idempotency:
            return _json(200, self.state.mastodon_idempotency[(auth, key)])
        text = str(data.get("status") or "")
        if not text and not data.get("media_ids[]"):
            return _json(422, {"error": "Validation failed: Text can't be blank"})
        if mastodon_length(text) > 500:
            return _json(422, {"error": "Validation failed: Text character limit of 500 exceeded"})
        visibility = data.get("visibility") or "public"
        if visibility not in ("public", "unlisted", "private", "direct"):
            return _json(422, {"error": "Validation failed: Visibility is not included in the list"})
        status_id = str(110_000_000_000_000_000 + self.state.next_id())
        status = {
            "id": status_id,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "content": f"<p>{text}</p>",
            "visibility": visibility,
            "language": data.get("language"),
            "uri": f"https://mastodon.example/users/fake/statuses/{status_id}",
            "url": f"https://mastodon.example/@fake/{status_id}",
            "account": {"id": "1", "username": "fake", "acct": "fake"},
        }
        if key:
            self.state.mastodon_idempotency[(auth, key)] = status
        return _json(200, status)

    # webhooks -----------------------------------------------------------------------------------------
    def _webhook(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        return _json(200, {"ok": True})


def _oauth1_valid(creds: Credentials, method: str, path: str, query: str, header: str) -> bool:
    """Recompute the OAuth 1.0a HMAC-SHA1 signature over the URL the SDK signed (api.twitter.com)."""
    from oauthlib.oauth1.rfc5849 import signature, utils

    if not header.startswith("OAuth "):
        return False  # a Bearer (OAuth 2.0 user) token: not checkable without X's token store
    try:
        oauth = dict(utils.parse_authorization_header(header))
        params = signature.collect_parameters(
            uri_query=query, headers={"Authorization": header}, exclude_oauth_signature=True
        )
    except (ValueError, KeyError):
        return False
    if utils.unescape(oauth.get("oauth_consumer_key", "")) != creds.x_consumer_key:
        return False
    if utils.unescape(oauth.get("oauth_token", "")) != creds.x_access_token:
        return False
    base = signature.signature_base_string(
        method, signature.base_string_uri("https://api.twitter.com" + path), signature.normalize_parameters(params)
    )
    client = SimpleNamespace(client_secret=creds.x_consumer_secret, resource_owner_secret=creds.x_access_secret)
    expected = signature.sign_hmac_sha1_with_client(base, client)
    return hmac.compare_digest(expected, utils.unescape(oauth.get("oauth_signature", "")))


def _basic(header: str) -> tuple[str | None, str | None]:
    if not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return user, password


def _validate_sendgrid(mail: Any) -> tuple[str | None, str] | None:
    """The first reason SendGrid would reject `mail` with a 400, as (field, message), or None."""
    if not isinstance(mail, dict):
        return None, "Bad Request"
    sender = mail.get("from")
    if not isinstance(sender, dict) or not sender.get("email") or "@" not in str(sender.get("email")):
        return "from.email", "The from email does not contain a valid address."
    pers = mail.get("personalizations")
    if not isinstance(pers, list) or not pers:
        return "personalizations", "The personalizations field is required and must have at least 1 personalization."
    if len(pers) > 1000:
        return "personalizations", "The personalizations field must contain at most 1000 personalizations."
    seen: set[str] = set()
    total = 0
    for i, p in enumerate(pers):
        to = p.get("to") if isinstance(p, dict) else None
        if not isinstance(to, list) or not to:
            return f"personalizations.{i}.to", "The to array is required for all personalization objects."
        for rcpt in to + list(p.get("cc") or []) + list(p.get("bcc") or []):
            email = str(rcpt.get("email", "")).lower() if isinstance(rcpt, dict) else ""
            if "@" not in email:
                return f"personalizations.{i}.to", "Does not contain a valid address."
            if email in seen:
                return (
                    f"personalizations.{i}.to",
                    "Each email address in the personalization block should be unique between to, cc, and bcc.",
                )
            seen.add(email)
            total += 1
    if total > 1000:
        return "personalizations", "The total number of recipients must be no more than 1000."
    if not mail.get("subject") and not all(isinstance(p, dict) and p.get("subject") for p in pers):
        return (
            "subject",
            "The subject is required. You can get around this requirement if every personalization has a subject.",
        )
    content = mail.get("content")
    if not isinstance(content, list) or not content or not all(isinstance(c, dict) and c.get("value") for c in content):
        return "content", "Unless a valid template_id is provided, the content parameter is required."
    types = [c.get("type") for c in content]
    if "text/plain" in types and types[0] != "text/plain":
        return "content", "If present, text/plain content must be first, followed by any other content."
    for name, value in (mail.get("headers") or {}).items():
        if not isinstance(value, str):
            return f"headers.{name}", "Invalid type. Expected: string."
    return None


def create_app(state: FakeState | None = None) -> FakeProviders:
    return FakeProviders(state)


def serve(host: str = "127.0.0.1", port: int = 8025) -> None:
    """Run the fake providers (for local demos); point *_BASE_URL settings at http://host:port."""
    import uvicorn

    print(f"Fake providers on http://{host}:{port} ({', '.join(PROVIDERS)}); control API at /_fake/requests")
    print(
        f"  TWILIO_BASE_URL=http://{host}:{port} SENDGRID_BASE_URL=http://{host}:{port} "
        f"X_BASE_URL=http://{host}:{port} MASTODON_BASE_URL=http://{host}:{port}"
    )
    uvicorn.run(create_app(), host=host, port=port, log_level="warning", access_log=False)
