"""Twilio SMS and voice adapters (twilio SDK, async client on a shared aiohttp session).

The SDK's own `AsyncTwilioHttpClient` keeps no response headers on errors (so `Retry-After` is lost) and
cannot be pointed at another host; `_TwilioHttp` is a small `AsyncHttpClient` that rewrites every
`https://*.twilio.com` URL to `TWILIO_BASE_URL` (so TWILIO_REGION/TWILIO_EDGE cannot send it elsewhere)
and remembers the last response headers per task for the error mapping.

Twilio Messages and Calls take no idempotency key, so after a timed-out create the worker asks `lookup`
whether Twilio has the message before sending again. It lists Messages (Calls) To the recipient From our
sender, newest first, and matches client-side: created at or after the attempt (to the second, as Twilio
dates go) and, for SMS, the same body. It does not use the DateSent filter: Twilio filters it by day only,
and a message still queued at Twilio (exactly what a rate-limited burst produces) has no date_sent yet.
A voice call cannot be matched by content (the list does not return TwiML): any call to the number from
our caller ID since the attempt counts as found.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from broadcaster.channels.base import (
    Adapter,
    CheckResult,
    Limits,
    LookupResult,
    LookupStatus,
    Message,
    ProviderError,
    Recipient,
    SendResult,
)
from broadcaster.channels.errors import from_status, network_error, unexpected
from broadcaster.channels.http import LazySession
from broadcaster.domain import ChannelKind
from broadcaster.settings import Settings

log = logging.getLogger(__name__)

TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]*twilio\.com")
#: Twilio error codes worth retrying: too many concurrent requests, queue overflow, sender queue full
TRANSIENT_CODES = frozenset({"20429", "30001", "21611", "20500", "20503"})
#: lookup reads at most this many list pages of this size (newest first) before answering unknown
LOOKUP_PAGE_SIZE = 50
LOOKUP_MAX_PAGES = 4
#: list order is by date; allow this much disorder before concluding that nothing newer follows
LOOKUP_ORDER_SLACK = timedelta(seconds=60)
_last_headers: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "twilio_last_headers", default=None
)


def _pairs(values: Mapping[str, object] | None) -> list[tuple[str, str]] | None:
    """Flatten the SDK's dict (lists repeat the key, as Twilio expects) into form pairs."""
    if not values:
        return None
    out: list[tuple[str, str]] = []
    for key, value in values.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            out.append((key, str(item)))
    return out


class _TwilioHttp(AsyncHttpClient):
    """Async HTTP for the Twilio SDK: one pooled aiohttp session, base-URL rewrite, headers kept."""

    def __init__(self, base_url: str | None, timeout: float, max_connections: int) -> None:
        super().__init__(logging.getLogger("twilio.http_client"), True, timeout)
        self.base_url = base_url.rstrip("/") if base_url else None
        self._session = LazySession(timeout, max_connections)

    @staticmethod
    @functools.lru_cache(maxsize=4)
    def _basic(auth: tuple[str, str]) -> str:
        return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the SDK's signature; the session has the timeout)
        allow_redirects: bool = False,
    ) -> Response:
        if self.base_url:
            url = TWILIO_HOST.sub(self.base_url, url, count=1)
        out_headers = dict(headers or {})
        if auth is not None:
            out_headers["Authorization"] = self._basic(auth)
        body = None
        form = _pairs(data)
        if form is not None:
            body = urlencode(form)
            out_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        async with self._session.get().request(
            method.upper(),
            url,
            params=_pairs(params),
            data=body,
            headers=out_headers,
            allow_redirects=allow_redirects,
        ) as resp:
            text = await resp.text()
            _last_headers.set(resp.headers)
            return Response(resp.status, text, resp.headers)

    async def close(self) -> None:
        await self._session.close()


class _TwilioAdapter(Adapter):
    """What the SMS and voice adapters share: client, callbacks, error mapping."""

    config_fields: ClassVar[tuple[str, ...]] = ("account_sid", "auth_token", "from_number", "base_url")
    secret_fields: ClassVar[tuple[str, ...]] = ("auth_token",)

    def __init__(self, settings: Settings) -> None:
        assert settings.twilio_account_sid and settings.twilio_auth_token
        self.account_sid = settings.twilio_account_sid
        self.auth_token = settings.twilio_auth_token
        self.from_number = settings.twilio_from_number
        self.messaging_service_sid = settings.twilio_messaging_service_sid
        self.base_url = settings.twilio_base_url
        self.callback_url = settings.twilio_status_callback_url or (
            settings.public_url.rstrip("/") + "/v1/webhooks/twilio/status"
        )
        self.concurrency = settings.provider_max_connections
        self._http = _TwilioHttp(self.base_url, settings.provider_timeout_seconds, settings.provider_max_connections)
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.account_sid, self.auth_token.get_secret_value(), http_client=self._http)
        return self._client

    def status_callback(self, recipient: Recipient) -> str:
        """The status callback URL carrying the delivery id and idempotency key, to match receipts."""
        query = {"delivery_id": recipient.delivery_id}
        if recipient.idempotency_key:
            query["idempotency_key"] = recipient.idempotency_key
        sep = "&" if "?" in self.callback_url else "?"
        return f"{self.callback_url}{sep}{urlencode(query)}"

    def config(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
            "from_number": self.from_number,
            "messaging_service_sid": self.messaging_service_sid,
            "base_url": self.base_url,
            "status_callback_url": self.callback_url,
        }

    async def _one(self, message: Message, recipient: Recipient) -> SendResult:
        _last_headers.set(None)
        try:
            sid = await self._create(message, recipient)
        except TwilioRestException as exc:
            return SendResult.failure(recipient.delivery_id, self.classify(exc))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return SendResult.failure(recipient.delivery_id, network_error(exc))
        except Exception as exc:
            log.exception("unexpected error from Twilio")
            return SendResult.failure(recipient.delivery_id, unexpected(exc))
        return SendResult.success(recipient.delivery_id, sid)

    async def _create(self, message: Message, recipient: Recipient) -> str:
        raise NotImplementedError

    @staticmethod
    def classify(exc: TwilioRestException) -> ProviderError:
        code = str(exc.code) if exc.code is not None else str(exc.status)
        status = int(exc.status or 0)
        if code == "20429":
            status = 429
        return from_status(status, code, str(exc.msg), headers=_last_headers.get(), transient_codes=TRANSIENT_CODES)

    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if len(recipients) == 1:
            return [await self._one(message, recipients[0])]
        sem = asyncio.Semaphore(self.concurrency)

        async def bounded(r: Recipient) -> SendResult:
            async with sem:
                return await self._one(message, r)

        return list(await asyncio.gather(*(bounded(r) for r in recipients)))

    async def lookup(self, message: Message, recipient: Recipient, since: datetime) -> LookupResult:
        """Did Twilio accept `message` for `recipient` at or after `since`? found (with its SID), not_found
        (every resource to that number since then was read), or unknown (an API error, or too many)."""
        cutoff = (since if since.tzinfo else since.replace(tzinfo=UTC)).replace(microsecond=0)
        try:
            pages = 0
            async for page in self._pages(recipient):
                pages += 1
                past = False
                for resource in page:
                    created = resource.date_created
                    if created is None or created < cutoff:
                        past = past or (created is not None and created < cutoff - LOOKUP_ORDER_SLACK)
                        continue
                    if self._matches(resource, message):
                        return LookupResult(LookupStatus.found, str(resource.sid))
                if past:
                    break
                if pages >= LOOKUP_MAX_PAGES:
                    most = LOOKUP_MAX_PAGES * LOOKUP_PAGE_SIZE
                    return LookupResult(
                        LookupStatus.unknown, detail=f"over {most} resources to this number since {cutoff}"
                    )
        except TwilioRestException as exc:
            return LookupResult(LookupStatus.unknown, detail=f"Twilio answered {exc.status} (code {exc.code})")
        except TwilioException as exc:  # a list page that is not a 200 (Page.process_response)
            return LookupResult(LookupStatus.unknown, detail=f"Twilio list failed: {exc}"[:200])
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return LookupResult(LookupStatus.unknown, detail=f"cannot reach Twilio: {exc!r}"[:200])
        return LookupResult(LookupStatus.not_found, detail=f"nothing to this number since {cutoff}")

    async def _pages(self, recipient: Recipient) -> AsyncIterator[Any]:
        """The list pages of resources to `recipient` from our sender, newest first."""
        raise NotImplementedError
        yield  # pragma: no cover

    def _matches(self, resource: Any, message: Message) -> bool:
        return True

    async def check(self) -> CheckResult:
        try:
            account = await self.client.api.v2010.accounts(self.account_sid).fetch_async()
        except TwilioRestException as exc:
            return CheckResult(False, f"Twilio answered {exc.status} (code {exc.code}): {exc.msg}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return CheckResult(False, f"cannot reach Twilio: {exc!r}")
        return CheckResult(True, f"account {account.sid} is {account.status}")

    async def aclose(self) -> None:
        await self._http.close()


class TwilioSms(_TwilioAdapter):
    """SMS through Twilio Programmable Messaging (`From` or a Messaging Service)."""

    name = "twilio-sms"
    kind = ChannelKind.sms
    limits = Limits(max_length=3, batch_size=100, rate_per_second=100.0)
    length_unit = "sms_segments"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.limits = Limits(
            max_length=settings.sms_max_segments, batch_size=100, rate_per_second=settings.twilio_sms_rate_per_second
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSms | None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            return None
        if not (settings.twilio_from_number or settings.twilio_messaging_service_sid):
            return None
        return cls(settings)

    async def _create(self, message: Message, recipient: Recipient) -> str:
        kwargs: dict[str, Any] = {"to": recipient.address, "body": message.text}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        created = await self.client.messages.create_async(status_callback=self.status_callback(recipient), **kwargs)
        return str(created.sid)

    async def _pages(self, recipient: Recipient) -> AsyncIterator[Any]:
        kwargs: dict[str, Any] = {"to": recipient.address, "page_size": LOOKUP_PAGE_SIZE}
        if not self.messaging_service_sid:
            kwargs["from_"] = self.from_number
        page = await self.client.messages.page_async(**kwargs)
        while page is not None:
            yield page
            page = await page.next_page_async()

    def _matches(self, resource: Any, message: Message) -> bool:
        if self.messaging_service_sid and resource.messaging_service_sid != self.messaging_service_sid:
            return False
        return (resource.body or "").strip() == message.text.strip()


def twiml_for(message: Message, voice: str | None, answer_url: str | None = None) -> str:
    """The TwiML a call plays: the text twice, in the message's language (Twilio <Say language=...>). Rendered
    voice text has no emoji or URLs already; any left (text not from broadcaster.rendering) are dropped, a
    URL said as its bare domain, never spelled out.

    When the message asks a question and `answer_url` (the recipient's signed action URL) is given, both
    readings are inside a `<Gather numDigits="1">` that posts the pressed key to it (people may answer while
    the message is read)."""
    from broadcaster.text.speech import speakable

    language = str(message.data.get("voice_language") or message.locale or "en-US")
    response = VoiceResponse()
    kwargs: dict[str, Any] = {"language": language}
    if voice:
        kwargs["voice"] = voice
    text = speakable(message.text)
    target: Any = response
    if answer_url and message.data.get("question"):
        target = response.gather(num_digits=1, action=answer_url, method="POST", timeout=8)
    target.say(text, **kwargs)
    target.pause(length=1)
    target.say(text, **kwargs)
    return str(response)


class TwilioVoice(_TwilioAdapter):
    """Phone calls reading the message with TwiML <Say> ("emergencies -> phone")."""

    name = "twilio-voice"
    kind = ChannelKind.voice
    limits = Limits(max_length=1500, batch_size=20, rate_per_second=1.0)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.voice_from = settings.twilio_voice_from or settings.twilio_from_number
        self.voice = settings.twilio_voice or None
        self.limits = Limits(
            max_length=settings.voice_max_chars, batch_size=20, rate_per_second=settings.twilio_voice_rate_per_second
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioVoice | None:
        if not (settings.twilio_account_sid and settings.twilio_auth_token):
            return None
        if not (settings.twilio_voice_from or settings.twilio_from_number):
            return None
        return cls(settings)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "voice_from": self.voice_from, "voice": self.voice}

    async def _create(self, message: Message, recipient: Recipient) -> str:
        call = await self.client.calls.create_async(
            to=recipient.address,
            from_=self.voice_from,
            twiml=twiml_for(message, self.voice, recipient.variables.get("voice_answer_url")),
            status_callback=self.status_callback(recipient),
        )
        return str(call.sid)

    async def _pages(self, recipient: Recipient) -> AsyncIterator[Any]:
        page = await self.client.calls.page_async(
            to=recipient.address, from_=self.voice_from, page_size=LOOKUP_PAGE_SIZE
        )
        while page is not None:
            yield page
            page = await page.next_page_async()
