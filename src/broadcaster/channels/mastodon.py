"""Mastodon adapter (optional extra `broadcaster[mastodon]`, Mastodon.py).

Importing this module fails without Mastodon.py; the registry then skips the adapter quietly. The
library is synchronous (requests), so each post runs in a worker thread. `ratelimit_method="throw"`:
retries are ours and bounded (the library's "wait" mode would retry without limit). The recipient's
idempotency key goes on the wire as `Idempotency-Key`, so a retried post is not duplicated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from mastodon import (
    Mastodon,
    MastodonAPIError,
    MastodonNetworkError,
    MastodonRatelimitError,
    MastodonServerError,
)

from broadcaster.channels.base import (
    Adapter,
    CheckResult,
    ErrorClass,
    Limits,
    Message,
    ProviderError,
    Recipient,
    SendResult,
)
from broadcaster.channels.errors import from_status, unexpected
from broadcaster.domain import ChannelKind
from broadcaster.settings import Settings

log = logging.getLogger(__name__)


class MastodonPost(Adapter):
    name = "mastodon"
    kind = ChannelKind.social
    limits = Limits(max_length=500, batch_size=1, rate_per_second=1.0)
    length_unit = "mastodon"
    priority = 110
    config_fields: ClassVar[tuple[str, ...]] = ("base_url", "access_token", "visibility")
    secret_fields: ClassVar[tuple[str, ...]] = ("access_token",)

    def __init__(self, settings: Settings) -> None:
        assert settings.mastodon_base_url and settings.mastodon_access_token
        self.base_url = settings.mastodon_base_url
        self.access_token = settings.mastodon_access_token
        self.visibility = settings.mastodon_visibility
        self.limits = Limits(max_length=settings.mastodon_max_characters, batch_size=1, rate_per_second=1.0)
        self._api = Mastodon(
            access_token=self.access_token.get_secret_value(),
            api_base_url=self.base_url,
            ratelimit_method="throw",
            request_timeout=settings.provider_timeout_seconds,
            version_check_mode="none",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> MastodonPost | None:
        if not (settings.mastodon_base_url and settings.mastodon_access_token):
            return None
        return cls(settings)

    def config(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "access_token": self.access_token, "visibility": self.visibility}

    def classify(self, exc: Exception) -> ProviderError:
        if isinstance(exc, MastodonRatelimitError):
            reset = getattr(self._api, "ratelimit_reset", None)
            retry = max(0.0, float(reset) - time.time()) if reset else None
            return ProviderError(ErrorClass.transient, "mastodon_429", str(exc)[:500], retry_after=retry, status=429)
        if isinstance(exc, MastodonNetworkError):
            return ProviderError(ErrorClass.transient, "network", str(exc)[:500])
        if isinstance(exc, MastodonAPIError):
            args = exc.args
            status = (
                args[1]
                if len(args) > 1 and isinstance(args[1], int)
                else (502 if isinstance(exc, MastodonServerError) else 400)
            )
            reason = str(args[3] if len(args) > 3 else exc)
            return from_status(status, f"mastodon_{status}", reason)
        return unexpected(exc)

    def _post(self, message: Message, key: str | None) -> str:
        status = self._api.status_post(
            message.text, language=message.locale.split("-")[0], visibility=self.visibility, idempotency_key=key
        )
        return str(status["id"])

    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        """Post once (keyed by the first recipient's idempotency key); every recipient gets that result."""
        key = next((r.idempotency_key for r in recipients if r.idempotency_key), None)
        try:
            status_id = await asyncio.to_thread(self._post, message, key)
        except Exception as exc:
            if not isinstance(exc, MastodonAPIError | MastodonNetworkError | MastodonRatelimitError):
                log.exception("unexpected error from Mastodon")
            error = self.classify(exc)
            return [SendResult.failure(r.delivery_id, error) for r in recipients]
        return [SendResult.success(r.delivery_id, status_id) for r in recipients]

    async def check(self) -> CheckResult:
        try:
            account = await asyncio.to_thread(self._api.account_verify_credentials)
        except Exception as exc:
            return CheckResult(False, f"Mastodon check failed: {self.classify(exc).reason}")
        return CheckResult(True, f"signed in as @{account['acct']}")
