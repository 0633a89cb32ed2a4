"""A minimal third-party Broadcaster channel: POST short alerts to a pager gateway.

Configured by the environment (a plugin may read its own settings however it likes):
``EXAMPLE_PAGER_URL`` (gateway endpoint) and ``EXAMPLE_PAGER_TOKEN`` (Bearer token).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp

from broadcaster.channels.base import (
    Adapter,
    ErrorClass,
    Limits,
    Message,
    ProviderError,
    Recipient,
    SendResult,
)
from broadcaster.domain import ChannelKind


class PagerAdapter(Adapter):
    name = "example-pager"
    kind = ChannelKind.sms  # pagers take short texts: a failover for SMS after the built-ins
    limits = Limits(max_length=80, batch_size=50, rate_per_second=5.0)
    priority = 500
    config_fields: ClassVar[tuple[str, ...]] = ("url", "token")
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> PagerAdapter | None:
        url = os.environ.get("EXAMPLE_PAGER_URL")
        if not url:
            return None
        return cls(url, os.environ.get("EXAMPLE_PAGER_TOKEN", ""))

    def config(self) -> dict[str, Any]:
        return {"url": self.url, "token": self.token}

    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        results = []
        for r in recipients:
            body = {"pager": r.address, "text": message.text[:80], "key": r.idempotency_key}
            try:
                async with self._session.post(
                    self.url, json=body, headers={"Authorization": f"Bearer {self.token}"}
                ) as resp:
                    data = await resp.json(content_type=None)
                    if resp.status < 300:
                        results.append(SendResult.success(r.delivery_id, str(data.get("id", "")) or None))
                        continue
                    kind = ErrorClass.transient if resp.status == 429 or resp.status >= 500 else ErrorClass.permanent
                    error = ProviderError(kind, f"http_{resp.status}", str(data)[:200], status=resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = ProviderError(ErrorClass.transient, "network", repr(exc))
            results.append(SendResult.failure(r.delivery_id, error))
        return results

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
