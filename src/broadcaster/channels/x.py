"""X (Twitter) adapter: tweepy v2 `AsyncClient.create_tweet` with OAuth 1.0a user context.

tweepy hard-codes ``https://api.twitter.com``; `_Session` stands in for its aiohttp session, keeps one
pooled connection set across sends and rewrites the host to `X_BASE_URL` when set. The OAuth 1.0a
signature still covers the api.twitter.com URL (what X itself would verify). One post per broadcast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp
import tweepy
import yarl
from tweepy.asynchronous import AsyncClient

from broadcaster.channels.base import Adapter, CheckResult, Limits, Message, ProviderError, Recipient, SendResult
from broadcaster.channels.errors import from_status, network_error, unexpected
from broadcaster.channels.http import LazySession
from broadcaster.domain import ChannelKind
from broadcaster.settings import Settings

log = logging.getLogger(__name__)
X_API = "https://api.twitter.com"


class _Session:
    """The subset of aiohttp.ClientSession tweepy uses, with the base URL rewritten."""

    def __init__(self, base_url: str | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self._session = LazySession(timeout)

    def request(self, method: str, url: Any, **kwargs: Any) -> Any:
        raw = str(url)
        if self.base_url and raw.startswith(X_API):
            url = yarl.URL(self.base_url + raw[len(X_API) :], encoded=True)
        return self._session.get().request(method, url, **kwargs)

    async def close(self) -> None:
        await self._session.close()


class XPost(Adapter):
    name = "x"
    kind = ChannelKind.social
    limits = Limits(max_length=280, batch_size=1, rate_per_second=1.0)
    length_unit = "x_weighted"
    priority = 100
    config_fields: ClassVar[tuple[str, ...]] = (
        "consumer_key",
        "consumer_secret",
        "access_token",
        "access_token_secret",
        "base_url",
    )
    secret_fields: ClassVar[tuple[str, ...]] = ("consumer_secret", "access_token_secret")

    def __init__(self, settings: Settings) -> None:
        assert settings.x_consumer_secret and settings.x_access_token_secret
        self.consumer_key = settings.x_consumer_key
        self.consumer_secret = settings.x_consumer_secret
        self.access_token = settings.x_access_token
        self.access_token_secret = settings.x_access_token_secret
        self.base_url = settings.x_base_url
        self._session = _Session(self.base_url, settings.provider_timeout_seconds)
        self._client = AsyncClient(
            consumer_key=self.consumer_key,
            consumer_secret=self.consumer_secret.get_secret_value(),
            access_token=self.access_token,
            access_token_secret=self.access_token_secret.get_secret_value(),
            wait_on_rate_limit=False,  # retries are ours, bounded
        )
        self._client.session = self._session

    @classmethod
    def from_settings(cls, settings: Settings) -> XPost | None:
        if not (
            settings.x_consumer_key
            and settings.x_consumer_secret
            and settings.x_access_token
            and settings.x_access_token_secret
        ):
            return None
        return cls(settings)

    def config(self) -> dict[str, Any]:
        return {
            "consumer_key": self.consumer_key,
            "consumer_secret": self.consumer_secret,
            "access_token": self.access_token,
            "access_token_secret": self.access_token_secret,
            "base_url": self.base_url,
        }

    @staticmethod
    def classify(exc: tweepy.HTTPException) -> ProviderError:
        status = int(exc.response.status)
        reason = "; ".join(str(m) for m in exc.api_messages) or str(exc)
        headers = dict(exc.response.headers)
        if (
            isinstance(exc, tweepy.TooManyRequests)
            and exc.reset_time is not None
            and "retry-after" not in {k.lower() for k in headers}
        ):
            headers["retry-after"] = str(max(0, int(exc.reset_time) - int(time.time())))
        return from_status(status, f"x_{status}", reason, headers=headers)

    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        """Post once; every (pseudo-)recipient gets the same result."""
        try:
            response = await self._client.create_tweet(text=message.text, user_auth=True)
        except tweepy.HTTPException as exc:
            error = self.classify(exc)
            return [SendResult.failure(r.delivery_id, error) for r in recipients]
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = network_error(exc)
            return [SendResult.failure(r.delivery_id, error) for r in recipients]
        except Exception as exc:
            log.exception("unexpected error from X")
            error = unexpected(exc)
            return [SendResult.failure(r.delivery_id, error) for r in recipients]
        tweet_id = str(response.data["id"])
        return [SendResult.success(r.delivery_id, tweet_id) for r in recipients]

    async def check(self) -> CheckResult:
        try:
            response = await self._client.get_me(user_auth=True)
        except tweepy.HTTPException as exc:
            return CheckResult(False, f"X answered {exc.response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return CheckResult(False, f"cannot reach X: {exc!r}")
        return CheckResult(True, f"signed in as @{response.data['username']}")

    async def aclose(self) -> None:
        await self._session.close()
