"""SendGrid e-mail adapter (sendgrid SDK, v3 mail/send).

Up to `SENDGRID_BATCH_SIZE` (max 1000) personalizations per request, one per recipient, each carrying
`custom_args` (delivery id, idempotency key) so Event Webhook receipts match, its own `List-Unsubscribe`
and `List-Unsubscribe-Post` headers (RFC 8058 one-click) and a substitution of the unsubscribe URL into
the body. An address appears once per request (SendGrid rejects duplicates), so repeats go in the next
request. The SDK is synchronous (urllib), so each request runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.error
from collections.abc import Sequence
from typing import Any, ClassVar

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from broadcaster.channels.base import (
    UNSUBSCRIBE_PLACEHOLDER,
    Adapter,
    CheckResult,
    Limits,
    Message,
    ProviderError,
    Recipient,
    SendResult,
)
from broadcaster.channels.errors import from_status, network_error, unexpected
from broadcaster.domain import ChannelKind
from broadcaster.settings import Settings

log = logging.getLogger(__name__)
NETWORK_ERRORS = (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError)


def batches(recipients: Sequence[Recipient], size: int) -> list[list[Recipient]]:
    """Split into requests of at most `size`, never repeating an address (case-insensitive) in one."""
    out: list[list[Recipient]] = []
    seen: list[set[str]] = []
    first_open = 0  # batches before this one are full
    for r in recipients:
        address = r.address.strip().lower()
        for i in range(first_open, len(out)):
            if len(out[i]) < size and address not in seen[i]:
                out[i].append(r)
                seen[i].add(address)
                break
        else:
            out.append([r])
            seen.append({address})
        while first_open < len(out) and len(out[first_open]) >= size:
            first_open += 1
    return out


class SendGridEmail(Adapter):
    name = "sendgrid"
    kind = ChannelKind.email
    limits = Limits(max_length=None, batch_size=1000, rate_per_second=10.0)
    config_fields: ClassVar[tuple[str, ...]] = ("api_key", "from_email", "from_name", "base_url")
    secret_fields: ClassVar[tuple[str, ...]] = ("api_key",)

    def __init__(self, settings: Settings) -> None:
        assert settings.sendgrid_api_key and settings.sendgrid_from_email
        self.api_key = settings.sendgrid_api_key
        self.from_email = settings.sendgrid_from_email
        self.from_name = settings.sendgrid_from_name
        self.base_url = settings.sendgrid_base_url
        self.timeout = settings.provider_timeout_seconds
        self.batch_size = max(1, min(1000, settings.sendgrid_batch_size))
        self.default_unsubscribe = settings.public_url.rstrip("/") + "/unsubscribe"
        self.limits = Limits(batch_size=self.batch_size, rate_per_second=settings.sendgrid_rate_per_second)
        kwargs: dict[str, Any] = {"api_key": self.api_key.get_secret_value()}
        if self.base_url:
            kwargs["host"] = self.base_url.rstrip("/")
        self._sg = SendGridAPIClient(**kwargs)
        self._sg.client.timeout = self.timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SendGridEmail | None:
        if not (settings.sendgrid_api_key and settings.sendgrid_from_email):
            return None
        return cls(settings)

    def config(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "from_email": self.from_email,
            "from_name": self.from_name,
            "base_url": self.base_url,
            "batch_size": self.batch_size,
        }

    def personalization(self, message: Message, r: Recipient) -> dict[str, Any]:
        unsubscribe = r.variables.get("unsubscribe_url") or self.default_unsubscribe
        custom_args = {"delivery_id": r.delivery_id}
        if r.idempotency_key:
            custom_args["idempotency_key"] = r.idempotency_key
        if message.update_id is not None:
            custom_args["update_id"] = str(message.update_id)
        return {
            "to": [{"email": r.address}],
            "custom_args": custom_args,
            # per-recipient signed answer links of a question (`-answer_url_<key>-`, broadcaster.responses)
            "substitutions": {
                UNSUBSCRIBE_PLACEHOLDER: unsubscribe,
                **{f"-{k}-": v for k, v in r.variables.items() if k.startswith("answer_url_")},
            },
            "headers": {
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        }

    def request_body(self, message: Message, batch: Sequence[Recipient]) -> dict[str, Any]:
        """The v3 mail/send JSON for one batch: plain text first, then HTML (SendGrid's required order)."""
        content = [{"type": "text/plain", "value": message.text}]
        if message.html:
            content.append({"type": "text/html", "value": message.html})
        body: dict[str, Any] = {
            "from": {"email": self.from_email, "name": self.from_name},
            "subject": message.subject or message.text.splitlines()[0][:78],
            "personalizations": [self.personalization(message, r) for r in batch],
            "content": content,
            "categories": ["broadcaster", "test" if message.test else "live"],
        }
        if message.headers:
            body["headers"] = {k: v for k, v in message.headers.items() if not k.lower().startswith("list-unsub")}
            if not body["headers"]:
                del body["headers"]
        return body

    def _post(self, body: dict[str, Any]) -> str | None:
        response = self._sg.send(body)
        headers = response.headers
        return headers.get("X-Message-Id") if headers is not None else None

    async def _send_batch(self, message: Message, batch: list[Recipient]) -> list[SendResult]:
        try:
            message_id = await asyncio.to_thread(self._post, self.request_body(message, batch))
        except HTTPError as exc:
            error = self.classify(exc)
            return [SendResult.failure(r.delivery_id, error) for r in batch]
        except NETWORK_ERRORS as exc:
            error = network_error(exc)
            return [SendResult.failure(r.delivery_id, error) for r in batch]
        except Exception as exc:
            log.exception("unexpected error from SendGrid")
            error = unexpected(exc)
            return [SendResult.failure(r.delivery_id, error) for r in batch]
        return [SendResult.success(r.delivery_id, message_id) for r in batch]

    @staticmethod
    def classify(exc: HTTPError) -> ProviderError:
        body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
        headers = dict(exc.headers.items()) if exc.headers is not None else None
        return from_status(int(exc.status_code), f"http_{exc.status_code}", body or str(exc.reason), headers=headers)

    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        by_id: dict[str, SendResult] = {}
        groups = batches(recipients, self.batch_size)
        for results in await asyncio.gather(*(self._send_batch(message, b) for b in groups)):
            for result in results:
                by_id[result.delivery_id] = result
        return [by_id[r.delivery_id] for r in recipients]

    async def check(self) -> CheckResult:
        try:
            response = await asyncio.to_thread(self._sg.client.scopes.get)
        except HTTPError as exc:
            return CheckResult(False, f"SendGrid answered {exc.status_code}")
        except NETWORK_ERRORS as exc:
            return CheckResult(False, f"cannot reach SendGrid: {exc!r}")
        return CheckResult(True, f"API key accepted (HTTP {response.status_code})")
