"""Outbound webhooks: a JSON POST per configured URL, HMAC-signed, with Slack and Teams payload shapes.

Signature: ``X-Broadcaster-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, timestamp + "." + body)>``
with ``X-Broadcaster-Timestamp`` (Unix seconds); receivers recompute it over the raw body and reject old
timestamps. ``Idempotency-Key`` carries the recipient's key so a receiver can drop a retried delivery.
Shapes: ``json`` (Broadcaster's payload), ``slack`` (incoming-webhook ``text`` + ``blocks``), ``teams``
(Office 365 connector ``MessageCard``); URLs on hooks.slack.com / *.webhook.office.com pick their shape.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlparse

import aiohttp

from broadcaster import __version__
from broadcaster.channels.base import (
    Adapter,
    CheckResult,
    Limits,
    Message,
    ProviderError,
    Recipient,
    SendResult,
    mask_url,
)
from broadcaster.channels.errors import from_status, network_error, unexpected
from broadcaster.channels.http import LazySession
from broadcaster.domain import ChannelKind
from broadcaster.settings import Settings

log = logging.getLogger(__name__)
FORMATS = ("json", "slack", "teams")
SEVERITY_COLORS = {"info": "2563EB", "minor": "CA8A04", "major": "EA580C", "critical": "DC2626"}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def format_for(url: str, default: str) -> str:
    host = urlparse(url).hostname or ""
    if host == "hooks.slack.com":
        return "slack"
    if host.endswith(".webhook.office.com") or host.endswith("logic.azure.com"):
        return "teams"
    return default


def payload(message: Message, shape: str) -> dict[str, Any]:
    """The JSON body for one webhook shape."""
    if shape == "slack":
        return {
            "text": message.text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": message.text}}],
            "unfurl_links": False,
        }
    if shape == "teams":
        incident = message.data.get("payload", {}).get("incident", {})
        title = str(incident.get("title") or message.text[:80])
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": title,
            "themeColor": SEVERITY_COLORS.get(message.severity or "", "6B7280"),
            "title": title,
            "text": message.text,
        }
    return dict(message.data.get("payload") or {"text": message.text, "test": message.test})


class Webhook(Adapter):
    name = "webhook"
    kind = ChannelKind.webhook
    limits = Limits(max_length=None, batch_size=10, rate_per_second=50.0)
    config_fields: ClassVar[tuple[str, ...]] = ("urls", "secret", "format")
    secret_fields: ClassVar[tuple[str, ...]] = ("secret",)

    def __init__(self, settings: Settings) -> None:
        self.urls = list(settings.webhook_urls)
        self.secret = settings.webhook_secret
        self.format = settings.webhook_format if settings.webhook_format in FORMATS else "json"
        self._http = LazySession(settings.provider_timeout_seconds, settings.provider_max_connections)

    @classmethod
    def from_settings(cls, settings: Settings) -> Webhook | None:
        if not settings.webhook_urls:
            return None
        return cls(settings)

    def config(self) -> dict[str, Any]:
        return {"urls": [mask_url(u) for u in self.urls], "secret": self.secret, "format": self.format}

    def broadcast_addresses(self) -> list[str]:
        return list(self.urls)

    def request(self, message: Message, url: str, recipient: Recipient) -> tuple[bytes, dict[str, str]]:
        """Body and headers of one POST (exposed for tests and receivers' docs)."""
        body = json.dumps(payload(message, format_for(url, self.format)), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"Broadcaster/{__version__}",
            "X-Broadcaster-Delivery": recipient.delivery_id,
        }
        if recipient.idempotency_key:
            headers["Idempotency-Key"] = recipient.idempotency_key
        if self.secret is not None:
            timestamp = str(int(time.time()))
            headers["X-Broadcaster-Timestamp"] = timestamp
            headers["X-Broadcaster-Signature"] = sign(self.secret.get_secret_value(), timestamp, body)
        return body, headers

    async def _post(self, message: Message, url: str, recipient: Recipient) -> ProviderError | None:
        body, headers = self.request(message, url, recipient)
        try:
            async with self._http.get().post(url, data=body, headers=headers) as resp:
                text = await resp.text()
                if 200 <= resp.status < 300:
                    return None
                return from_status(resp.status, f"http_{resp.status}", text[:300], headers=dict(resp.headers))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return network_error(exc)
        except Exception as exc:
            log.exception("unexpected error posting a webhook")
            return unexpected(exc)

    async def _one(self, message: Message, recipient: Recipient) -> SendResult:
        """A recipient whose address is a URL gets that URL; any other address (e.g. "webhook") every URL."""
        targets = [recipient.address] if recipient.address.startswith(("http://", "https://")) else self.urls
        errors = [e for e in await asyncio.gather(*(self._post(message, u, recipient) for u in targets)) if e]
        if not errors:
            return SendResult.success(recipient.delivery_id, None)
        permanent = [e for e in errors if not e.transient]
        return SendResult.failure(recipient.delivery_id, permanent[0] if permanent else errors[0])

    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        return list(await asyncio.gather(*(self._one(message, r) for r in recipients)))

    async def check(self) -> CheckResult:
        return CheckResult(True, f"{len(self.urls)} URL(s) configured; signed: {self.secret is not None}")

    async def aclose(self) -> None:
        await self._http.close()
