"""The fake provider ASGI app and `broadcaster fake-providers`.

One app serves every provider on its own paths, the way the real SDKs call them:

* Twilio  ``POST /2010-04-01/Accounts/{sid}/Messages.json`` and ``Calls.json`` (form, Basic auth),
  ``GET`` of both (the accepted messages / calls, newest first, filtered by To, From, DateSent[<>] /
  StartTime[<>] by day, paged), ``GET /2010-04-01/Accounts/{sid}.json``
* SendGrid ``POST /v3/mail/send`` (JSON, Bearer), ``GET /v3/scopes``
* X ``POST /2/tweets`` (JSON, OAuth 1.0a or Bearer), ``GET /2/users/me``
* Mastodon ``POST /api/v1/statuses`` (form or JSON, Bearer, Idempotency-Key),
  ``GET /api/v1/accounts/verify_credentials``
* Bluesky (XRPC) ``POST /xrpc/com.atproto.server.createSession`` and ``refreshSession`` (session JWTs
  signed by the fake), ``GET /xrpc/com.atproto.server.getSession``, ``GET /xrpc/app.bsky.actor.getProfile``,
  ``POST /xrpc/com.atproto.repo.createRecord`` (Bearer access JWT, an app.bsky.feed.post record)
* outbound webhooks ``POST /hooks/{anything}`` (records, answers 200)

Requests are validated as the provider would (auth header, required fields, payload limits) and
recorded. The control API: ``GET /_fake/requests[?provider=]``, ``POST /_fake/inject``
(``{"provider", "status", "headers", "body", "delay", "times", "path"}``), ``POST /_fake/inject-random``
(``{"provider", "rate", "statuses", "timeout_fraction", "accept_fraction", "hang_seconds", "retry_after",
"methods", "path", "seed"}``: see `FakeState.inject_random`), ``POST /_fake/reset``,
``POST /_fake/record`` (``{"enabled": bool}``), ``GET /_fake/health``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
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
from urllib.parse import parse_qs, urlencode

import orjson

from broadcaster.fakes.credentials import CREDENTIALS
from broadcaster.fakes.state import PROVIDERS, Credentials, FakeState, RecordedRequest
from broadcaster.text.length import BLUESKY_MAX_BYTES, BLUESKY_MAX_GRAPHEMES, grapheme_length, mastodon_length
from broadcaster.text.sms import analyze

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
            self.state.in_flight += 1  # one event loop thread: no lock needed
            try:
                status, out_headers, payload = await self._provider(method, path, query, headers, body)
            finally:
                self.state.in_flight -= 1
        raw_headers = [(k.encode(), v.encode()) for k, v in out_headers.items()]
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})

    # --- control API ---------------------------------------------------------------------------------
    def _control(self, method: str, path: str, query: str, body: bytes) -> Reply:
        st = self.state
        if path == "/_fake/health":
            return _json(200, {"ok": True, "count": st.count, "in_flight": st.in_flight})
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
        if path == "/_fake/inject-random" and method == "POST":
            try:
                data = json.loads(body)
                st.inject_random(
                    data["provider"],
                    float(data["rate"]),
                    [int(x) for x in data.get("statuses", (429, 500, 503))],
                    timeout_fraction=float(data.get("timeout_fraction", 0)),
                    accept_fraction=float(data.get("accept_fraction", 0.5)),
                    hang_seconds=float(data.get("hang_seconds", 30)),
                    retry_after=str(data.get("retry_after", "1")),
                    methods=[str(m) for m in data.get("methods", ("POST",))],
                    path=data.get("path"),
                    seed=data.get("seed"),
                )
            except (ValueError, KeyError, TypeError) as exc:
                return _json(400, {"error": f"bad random faults: {exc}"})
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
        fault = self.state.take_fault(provider, path, method)
        if fault is not None:
            record.hang = fault.hang
            if fault.hang == "after_accept":
                # the provider accepts (and records) the message, then the answer comes too late
                reply = self._answer(provider, method, path, query, headers, body)
                record.status = reply[0]
                await asyncio.sleep(fault.delay)
                return reply
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                record.status = fault.status
                return self._fault_reply(provider, fault.status, fault.headers, fault.body)
        reply = self._answer(provider, method, path, query, headers, body)
        record.status = reply[0]
        return reply

    def _answer(self, provider: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Reply:
        if provider == "x":
            return self._x(method, path, query, headers, body)
        if provider == "bluesky":
            return self._bluesky(method, path, query, headers, body)
        if provider == "twilio":
            return self._twilio(method, path, headers, body, query)
        reply: Reply = getattr(self, f"_{provider}")(method, path, headers, body)
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
        if path.startswith("/xrpc/"):
            return "bluesky"
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
                "bluesky": {
                    "error": "RateLimitExceeded" if status == 429 else "InternalServerError",
                    "message": f"Injected {status}",
                },
                "webhook": {"error": f"Injected {status}"},
            }[provider]
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        ctype = "text/plain" if isinstance(body, str) else "application/json"
        return status, {"content-type": ctype, **headers}, payload

    # Twilio -------------------------------------------------------------------------------------------
    def _twilio(self, method: str, path: str, headers: dict[str, str], body: bytes, query: str = "") -> Reply:
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
        if method == "GET":
            return _twilio_list(self.state, sid, path, m["rest"][1:-5], query)
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
            call = _twilio_call(sid, call_sid, to, from_)
            self.state.remember_twilio(sid, "Calls", call)
            return _json(201, _public(call))
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
        now = _now()
        message = {
            "sid": msg_sid,
            "account_sid": sid,
            "api_version": "2010-04-01",
            "to": to,
            "from": from_ or None,
            "messaging_service_sid": one("MessagingServiceSid") or None,
            "body": text,
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": str(analyze(text).segments),
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}.json",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}/Media.json"},
            "_at": time.time(),
        }
        # the list shows it as sent at once (the fake has no carrier queue); the create answer says queued
        self.state.remember_twilio(sid, "Messages", {**message, "status": "sent", "date_sent": now})
        return _json(201, _public(message))

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

    # Bluesky (AT Protocol XRPC) ----------------------------------------------------------------------
    def _bluesky(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Reply:
        nsid = path[len("/xrpc/") :]
        if nsid == "com.atproto.server.createSession" and method == "POST":
            return self._bluesky_create_session(body)
        if nsid == "com.atproto.server.refreshSession" and method == "POST":
            claims, error = self._bluesky_auth(headers, "com.atproto.refresh")
            if error is not None:
                return error
            assert claims is not None
            if not self.state.use_bluesky_refresh(str(claims.get("jti"))):
                return _xrpc_error(400, "ExpiredToken", "Token has been revoked")
            return _json(200, self._bluesky_session(claims["sub"], claims["handle"]))
        if nsid == "com.atproto.server.getSession" and method == "GET":
            claims, error = self._bluesky_auth(headers, "com.atproto.access")
            if error is not None:
                return error
            assert claims is not None
            return _json(200, {"did": claims["sub"], "handle": claims["handle"], "active": True})
        if nsid == "app.bsky.actor.getProfile" and method == "GET":
            claims, error = self._bluesky_auth(headers, "com.atproto.access")
            if error is not None:
                return error
            assert claims is not None
            actor = parse_qs(query).get("actor", [""])[0]
            if actor not in (claims["sub"], claims["handle"]):
                return _xrpc_error(400, "InvalidRequest", "Profile not found")
            return _json(200, {"did": claims["sub"], "handle": claims["handle"], "displayName": "Fake"})
        if nsid == "com.atproto.repo.createRecord" and method == "POST":
            claims, error = self._bluesky_auth(headers, "com.atproto.access")
            if error is not None:
                return error
            assert claims is not None
            return self._bluesky_create_record(claims, body)
        return _xrpc_error(501, "MethodNotImplemented", "Method Not Implemented")

    def _bluesky_create_session(self, body: bytes) -> Reply:
        data = _json_object(body)
        identifier, password = data.get("identifier"), data.get("password")
        for name, value in (("identifier", identifier), ("password", password)):
            if not isinstance(value, str) or not value:
                return _xrpc_error(400, "InvalidRequest", f'Input must have the property "{name}"')
        assert isinstance(identifier, str)
        handle = identifier.lower().lstrip("@")
        creds = self.state.credentials
        if creds is not None:
            expected = creds.bluesky_handle.lower()
            if handle not in (expected, _bluesky_did(expected)) or password != creds.bluesky_password:
                return _xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
            handle = expected
        did = handle if handle.startswith("did:") else _bluesky_did(handle)
        return _json(200, self._bluesky_session(did, handle), _bluesky_limits(30, 300))

    def _bluesky_session(self, did: str, handle: str) -> dict[str, Any]:
        now = int(time.time())
        st = self.state
        access = {"scope": "com.atproto.access", "sub": did, "handle": handle, "iat": now}
        refresh = {**access, "scope": "com.atproto.refresh"}
        access["jti"], refresh["jti"] = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        return {
            "accessJwt": _hs256(st.bluesky_jwt_key, {**access, "exp": now + st.bluesky_access_ttl}),
            "refreshJwt": _hs256(st.bluesky_jwt_key, {**refresh, "exp": now + st.bluesky_refresh_ttl}),
            "handle": handle,
            "did": did,
            "active": True,
        }

    def _bluesky_auth(self, headers: dict[str, str], scope: str) -> tuple[dict[str, Any] | None, Reply | None]:
        """The claims of the request's Bearer JWT, or the PDS's error: 401 without one, 400 ExpiredToken /
        InvalidToken for an expired or forged one (as the PDS answers)."""
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= 7:
            return None, _xrpc_error(401, "AuthMissing", "Authentication Required")
        claims = _hs256_verify(self.state.bluesky_jwt_key, auth[7:])
        if claims is None or claims.get("scope") != scope:
            return None, _xrpc_error(400, "InvalidToken", "Token could not be verified")
        if int(claims.get("exp", 0)) <= time.time():
            return None, _xrpc_error(400, "ExpiredToken", "Token has expired")
        return claims, None

    def _bluesky_create_record(self, claims: dict[str, Any], body: bytes) -> Reply:
        data = _json_object(body)
        repo, collection, record = data.get("repo"), data.get("collection"), data.get("record")
        if repo not in (claims["sub"], claims["handle"]):
            return _xrpc_error(400, "InvalidRequest", "Input/repo must be the authenticated account")
        if collection != "app.bsky.feed.post":
            return _xrpc_error(400, "InvalidRequest", "Input/collection: the fake accepts app.bsky.feed.post only")
        if not isinstance(record, dict) or record.get("$type") != collection:
            return _xrpc_error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: Record/$type must be set")
        problem = _bluesky_post_problem(record)
        if problem is not None:
            return _xrpc_error(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {problem}")
        rkey = _tid()
        cid = "bafyrei" + base64.b32encode(secrets.token_bytes(32)).decode().lower().rstrip("=")
        reply = {
            "uri": f"at://{claims['sub']}/{collection}/{rkey}",
            "cid": cid,
            "commit": {"cid": cid, "rev": rkey},
            "validationStatus": "valid",
        }
        return _json(200, reply, _bluesky_limits(5000, 3600))

    # webhooks -----------------------------------------------------------------------------------------
    def _webhook(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        return _json(200, {"ok": True})


def _public(resource: dict[str, Any]) -> dict[str, Any]:
    """A stored resource without the fake's private fields (leading underscore)."""
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def _twilio_call(account: str, call_sid: str, to: str, from_: str) -> dict[str, Any]:
    now = _now()
    return {
        "sid": call_sid,
        "account_sid": account,
        "api_version": "2010-04-01",
        "to": to,
        "to_formatted": to,
        "from": from_,
        "from_formatted": from_,
        "status": "queued",
        "direction": "outbound-api",
        "date_created": now,
        "date_updated": now,
        "start_time": None,
        "end_time": None,
        "duration": None,
        "price": None,
        "price_unit": "USD",
        "parent_call_sid": None,
        "uri": f"/2010-04-01/Accounts/{account}/Calls/{call_sid}.json",
        "_at": time.time(),
    }


#: list filters Twilio applies by day (GMT): name -> (resource field, comparison)
_TWILIO_DATE_FILTERS = {
    "Messages": {"DateSent": ("date_sent", "eq"), "DateSent<": ("date_sent", "le"), "DateSent>": ("date_sent", "ge")},
    "Calls": {
        "StartTime": ("start_time", "eq"),
        "StartTime<": ("start_time", "le"),
        "StartTime>": ("start_time", "ge"),
        "EndTime": ("end_time", "eq"),
        "EndTime<": ("end_time", "le"),
        "EndTime>": ("end_time", "ge"),
    },
}


def _twilio_day(value: str) -> str | None:
    """The GMT day of a list filter value: `YYYY-MM-DD` or the SDK's `YYYY-MM-DDTHH:MM:SSZ` (Twilio filters by
    day, so the time is dropped), an RFC 2822 resource date, or None when unparseable."""
    value = value.strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}", value):
        try:
            return datetime.strptime(value[:10], "%Y-%m-%d").date().isoformat()
        except ValueError:
            return None
    try:
        return datetime.strptime(value, "%a, %d %b %Y %H:%M:%S %z").astimezone(UTC).date().isoformat()
    except ValueError:
        return None


def _twilio_list(state: FakeState, account: str, path: str, kind: str, query: str) -> Reply:
    """`GET .../Messages.json` or `Calls.json`: the accepted resources, newest first, filtered by To/From
    (and Status for calls) and by day (DateSent / StartTime / EndTime, with `<` / `>` meaning on-or-before /
    on-or-after), paged with PageSize (default 50, at most 1000) and Page, in Twilio's list shape."""
    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    items = state.twilio_list(account, kind)
    for name, field in (("To", "to"), ("From", "from"), ("Status", "status")):
        if params.get(name):
            items = [i for i in items if i.get(field) == params[name]]
    for name, (field, op) in _TWILIO_DATE_FILTERS[kind].items():
        if name not in params:
            continue
        day = _twilio_day(params[name])
        if day is None:
            return _twilio_error(400, 20001, f"Invalid {name}: {params[name]}")
        kept = []
        for item in items:
            have = _twilio_day(item[field]) if item.get(field) else None
            if have is not None and (
                (op == "eq" and have == day) or (op == "le" and have <= day) or (op == "ge" and have >= day)
            ):
                kept.append(item)
        items = kept
    try:
        size = min(1000, max(1, int(params.get("PageSize") or 50)))
        page = max(0, int(params.get("Page") or 0))
    except ValueError:
        return _twilio_error(400, 20001, "PageSize and Page must be integers")
    start = page * size
    chunk = items[start : start + size]
    filters = {k: v for k, v in params.items() if k not in ("Page", "PageSize", "PageToken")}

    def uri(n: int) -> str:
        query = {**filters, "PageSize": str(size), "Page": str(n)}
        if n:
            query["PageToken"] = f"PA{n * size}"
        return f"{path}?{urlencode(query)}"

    more = start + size < len(items)
    return _json(
        200,
        {
            kind.lower(): [_public(i) for i in chunk],
            "start": start,
            "end": start + max(0, len(chunk) - 1),
            "page": page,
            "page_size": size,
            "uri": uri(page),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "previous_page_uri": uri(page - 1) if page else None,
        },
    )


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


def _xrpc_error(status: int, error: str, message: str) -> Reply:
    return _json(status, {"error": error, "message": message})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _bluesky_limits(limit: int, window: int) -> dict[str, str]:
    """The PDS's rate-limit headers (IETF draft names; the reset is epoch seconds)."""
    return {
        "ratelimit-limit": str(limit),
        "ratelimit-remaining": str(limit - 1),
        "ratelimit-reset": str(int(time.time()) + window),
        "ratelimit-policy": f"{limit};w={window}",
    }


def _bluesky_did(handle: str) -> str:
    """A stable did:plc for a handle (24 base32 characters, like a real one)."""
    digest = hashlib.sha256(handle.encode()).digest()
    return "did:plc:" + base64.b32encode(digest).decode().lower()[:24]


def _bluesky_post_problem(record: dict[str, Any]) -> str | None:
    """Why the PDS would refuse this app.bsky.feed.post record (its lexicon's rules), or None."""
    text = record.get("text")
    if not isinstance(text, str):
        return 'Record must have the property "text"'
    if len(text.encode("utf-8")) > BLUESKY_MAX_BYTES:
        return f"Record/text must not be longer than {BLUESKY_MAX_BYTES} characters"
    if grapheme_length(text) > BLUESKY_MAX_GRAPHEMES:
        return f"Record/text must not be longer than {BLUESKY_MAX_GRAPHEMES} graphemes"
    if not isinstance(record.get("createdAt"), str):
        return 'Record must have the property "createdAt"'
    langs = record.get("langs", [])
    if not isinstance(langs, list) or len(langs) > 3 or not all(isinstance(x, str) and x for x in langs):
        return "Record/langs must be an array of at most 3 language tags"
    size = len(text.encode("utf-8"))
    for i, facet in enumerate(record.get("facets") or []):
        index = facet.get("index") if isinstance(facet, dict) else None
        start = index.get("byteStart") if isinstance(index, dict) else None
        end = index.get("byteEnd") if isinstance(index, dict) else None
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
            return f"Record/facets/{i}/index must be a byte range of the text"
        features = facet.get("features")
        if not isinstance(features, list) or not features:
            return f'Record/facets/{i} must have the property "features"'
        for feature in features:
            if isinstance(feature, dict) and feature.get("$type") == "app.bsky.richtext.facet#link":
                uri = feature.get("uri")
                if not (isinstance(uri, str) and re.match(r"^[a-z][a-z0-9+.-]*:", uri)):
                    return f"Record/facets/{i}/features/0/uri must be a valid uri"
    return None


_TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


def _tid() -> str:
    """A record key in AT Protocol TID form: microseconds since the epoch and a clock id, base32-sortable."""
    value = (time.time_ns() // 1000) << 10 | secrets.randbelow(1024)
    return "".join(_TID_CHARS[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hs256(key: bytes, claims: dict[str, Any]) -> str:
    """A compact HS256 JWT (the SDK decodes the payload for `exp`; only the fake verifies the signature)."""
    head = _b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64url(json.dumps(claims).encode())
    return head + "." + _b64url(hmac.new(key, head.encode(), hashlib.sha256).digest())


def _hs256_verify(key: bytes, token: str) -> dict[str, Any] | None:
    head, _, signature = token.rpartition(".")
    expected = _b64url(hmac.new(key, head.encode(), hashlib.sha256).digest())
    if not head or not hmac.compare_digest(expected, signature):
        return None
    try:
        payload = head.partition(".")[2]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


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


def serve(host: str = "127.0.0.1", port: int = 8025, *, strict: bool = False, quiet: bool = False) -> None:
    """Run the fake providers (for local demos); point *_BASE_URL settings at http://host:port. `strict`
    checks credentials against `broadcaster.fakes.credentials.CREDENTIALS` (what its `env()` configures)."""
    import uvicorn

    state = FakeState(credentials=CREDENTIALS) if strict else FakeState()
    if quiet:
        uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        return
    print(f"Fake providers on http://{host}:{port} ({', '.join(PROVIDERS)}); control API at /_fake/requests")
    print(
        f"  TWILIO_BASE_URL=http://{host}:{port} SENDGRID_BASE_URL=http://{host}:{port} "
        f"X_BASE_URL=http://{host}:{port} MASTODON_BASE_URL=http://{host}:{port} "
        f"BLUESKY_BASE_URL=http://{host}:{port}"
    )
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", access_log=False)
