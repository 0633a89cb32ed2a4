"""Shared provider-error classification: HTTP status and provider codes to transient vs permanent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

from broadcaster.channels.base import ErrorClass, ProviderError

#: statuses worth retrying: timeouts, conflicts of the moment, rate limits, server errors
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or HTTP date), or a rate-limit reset header
    (`x-rate-limit-reset` / `X-RateLimit-Reset` as epoch seconds or an ISO 8601 time)."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    value = lower.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                pass
    for key in ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset"):
        value = lower.get(key)
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            try:
                return max(0.0, datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - now)
            except ValueError:
                continue
        # small numbers are "seconds from now" (IETF RateLimit-Reset); big ones are epoch seconds
        return max(0.0, number - now) if number > 1_000_000_000 else max(0.0, number)
    return None


def from_status(
    status: int,
    code: str,
    reason: str,
    *,
    headers: Mapping[str, str] | None = None,
    transient_codes: frozenset[str] = frozenset(),
) -> ProviderError:
    """Classify an HTTP failure: 429/408/5xx (and listed provider codes) are transient, other 4xx permanent."""
    transient = status in TRANSIENT_STATUSES or status >= 500 or code in transient_codes
    return ProviderError(
        ErrorClass.transient if transient else ErrorClass.permanent,
        code,
        reason[:500],
        retry_after=retry_after_seconds(headers) if transient else None,
        status=status,
    )


def network_error(exc: BaseException) -> ProviderError:
    """A timeout or connection failure: always transient."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ProviderError(ErrorClass.transient, "timeout", f"provider did not answer in time ({exc!r})"[:500])
    return ProviderError(ErrorClass.transient, "network", f"{type(exc).__name__}: {exc}"[:500])


def unexpected(exc: BaseException) -> ProviderError:
    """An exception no rule covers: transient (bounded retries decide), named so it can be fixed."""
    return ProviderError(ErrorClass.transient, f"unexpected:{type(exc).__name__}", str(exc)[:500])
