"""Bluesky adapter (optional extra `broadcaster[bluesky]`, the atproto SDK's `AsyncClient`).

Importing this module fails without the SDK; the registry then skips the adapter quietly. The SDK itself
is imported on first use, not here: it takes about half a second, and every process that lists the
adapters would pay it. The SDK is async (httpx), so posts run on the worker's loop.

Session: one `createSession` (handle + app password) on the first send, reused afterwards. The SDK
refreshes the access token itself (`refreshSession`, 15 minutes before it expires); when the server still
rejects it (401, or 400 ExpiredToken / InvalidToken, as the official client recognises them), the adapter
signs in again once and repeats the call. Posts carry `langs` (the locale's language) and the SDK's
facet detection (`atproto_client.utils.facet_detection.detect_facets`, a port of the official app's
rules) so links, #tags and $cashtags are clickable; @mentions are not resolved (that would cost one
request per handle). Bluesky has no idempotency key: a post whose answer was lost may be posted twice.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

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
from broadcaster.channels.errors import from_status, network_error, unexpected
from broadcaster.domain import ChannelKind
from broadcaster.settings import Settings
from broadcaster.text.length import BLUESKY_MAX_GRAPHEMES

if importlib.util.find_spec("atproto_client") is None:
    raise ImportError("the Bluesky adapter needs the atproto SDK: pip install 'broadcaster[bluesky]'")

if TYPE_CHECKING:
    from atproto_client import AsyncClient, Session, SessionEvent

log = logging.getLogger(__name__)
T = TypeVar("T")
#: 400 errors that mean "this token is no good, sign in again" (with any 401)
TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})


def _token_rejected(exc: Exception) -> bool:
    """Whether the server refused the session (not the request): 401, or 400 ExpiredToken/InvalidToken."""
    from atproto_client.exceptions import RequestErrorBase
    from atproto_client.models.common import XrpcError

    if not isinstance(exc, RequestErrorBase) or exc.response is None:
        return False
    content = exc.response.content
    error = content.error if isinstance(content, XrpcError) else None
    return exc.response.status_code == 401 or (exc.response.status_code == 400 and error in TOKEN_ERRORS)


class BlueskyPost(Adapter):
    name = "bluesky"
    kind = ChannelKind.social
    limits = Limits(max_length=BLUESKY_MAX_GRAPHEMES, batch_size=1, rate_per_second=1.0)
    length_unit = "bluesky"
    priority = 120
    config_fields: ClassVar[tuple[str, ...]] = ("base_url", "handle", "app_password")
    secret_fields: ClassVar[tuple[str, ...]] = ("app_password",)

    def __init__(self, settings: Settings) -> None:
        assert settings.bluesky_handle and settings.bluesky_app_password
        self.base_url = settings.bluesky_base_url
        self.handle = settings.bluesky_handle
        self.app_password = settings.bluesky_app_password
        self.timeout = settings.provider_timeout_seconds
        self._client: AsyncClient | None = None
        self._did: str | None = None  # set by the SDK's session callback once signed in
        self._generation = 0  # bumped at every sign-in, so concurrent sends sign in again only once
        self._lock: asyncio.Lock | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BlueskyPost | None:
        if not (settings.bluesky_handle and settings.bluesky_app_password):
            return None
        return cls(settings)

    def config(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "handle": self.handle, "app_password": self.app_password}

    # --- session ------------------------------------------------------------------------------------
    def _get_client(self) -> AsyncClient:
        if self._client is None:
            from atproto_client import AsyncClient
            from atproto_client.request import AsyncRequest

            self._client = AsyncClient(base_url=self.base_url, request=AsyncRequest(timeout=self.timeout))
            self._client.on_session_change(self._on_session)
        return self._client

    def _on_session(self, event: SessionEvent, session: Session) -> None:
        self._did = session.did

    async def _signed_in(self, stale: int | None = None) -> tuple[AsyncClient, str, int]:
        """The signed-in client, the account's DID and the session generation. Signs in when there is no
        session yet, or when `stale` (the generation a rejected call used) is still the current one."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            client = self._get_client()
            if self._did is None or self._generation == stale:
                self._did = None
                # no getProfile: the DID comes with the session, and not every PDS serves app.bsky
                await client.login(self.handle, self.app_password.get_secret_value(), fetch_bsky_profile=False)
                self._generation += 1
            assert self._did is not None
            return client, self._did, self._generation

    async def _call(self, op: Callable[[AsyncClient, str], Awaitable[T]]) -> T:
        """Run `op(client, did)` signed in; when the server refuses the session, sign in again once."""
        client, did, generation = await self._signed_in()
        try:
            return await op(client, did)
        except Exception as exc:
            if not _token_rejected(exc):
                raise
            log.info("Bluesky refused the session (%s); signing in again", exc)
        client, did, _ = await self._signed_in(stale=generation)
        return await op(client, did)

    # --- errors -------------------------------------------------------------------------------------
    @staticmethod
    def classify(exc: Exception) -> ProviderError:
        """429 (retry after `ratelimit-reset`), 408/409/5xx, timeouts and network errors are transient;
        other 4xx (400 invalid record, 401 wrong handle or app password, 413) permanent, with the XRPC
        error and message as the reason."""
        import httpx
        from atproto_client.exceptions import InvokeTimeoutError, NetworkError, RequestErrorBase
        from atproto_client.models.common import XrpcError

        if isinstance(exc, RequestErrorBase) and exc.response is not None:
            status = exc.response.status_code
            content = exc.response.content
            if isinstance(content, XrpcError):
                reason = f"{content.error}: {content.message}" if content.message else content.error
            else:
                reason = str(exc)
            return from_status(status, f"bluesky_{status}", reason, headers=exc.response.headers)
        if isinstance(exc, InvokeTimeoutError):
            return ProviderError(ErrorClass.transient, "timeout", f"Bluesky did not answer in time ({exc.__cause__!r})")
        if isinstance(exc, NetworkError):
            return network_error(exc.__cause__ or exc)
        if isinstance(exc, httpx.TransportError | OSError):
            return network_error(exc)
        return unexpected(exc)

    # --- contract -----------------------------------------------------------------------------------
    async def send(self, message: Message, recipients: Sequence[Recipient]) -> list[SendResult]:
        """Post once; every (pseudo-)recipient gets the post's AT URI."""
        from atproto_client.utils.facet_detection import detect_facets

        langs = [message.locale.split("-")[0]] if message.locale else None

        async def post(client: AsyncClient, did: str) -> str:
            facets = detect_facets(message.text) or None
            created = await client.send_post(message.text, profile_identify=did, langs=langs, facets=facets)
            return str(created.uri)

        try:
            uri = await self._call(post)
        except Exception as exc:
            error = self.classify(exc)
            if error.code.startswith("unexpected:"):
                log.exception("unexpected error from Bluesky")
            return [SendResult.failure(r.delivery_id, error) for r in recipients]
        return [SendResult.success(r.delivery_id, uri) for r in recipients]

    async def check(self) -> CheckResult:
        async def whoami(client: AsyncClient, did: str) -> str:
            session = await client.com.atproto.server.get_session()
            return str(session.handle)

        try:
            handle = await self._call(whoami)
        except Exception as exc:
            return CheckResult(False, f"Bluesky check failed: {self.classify(exc).reason}")
        return CheckResult(True, f"signed in as @{handle}")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.request.close()
            self._client = None
            self._did = None
        self._lock = None  # a lock belongs to its event loop; the next send may run on another
