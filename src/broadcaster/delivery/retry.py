"""Retry policy: exponential backoff with full jitter, bounded attempts, provider Retry-After honoured."""

from __future__ import annotations

import random
from dataclasses import dataclass

from broadcaster.settings import Settings

#: longest Retry-After honoured (a provider asking for more is treated as asking for this)
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class RetryStrategy:
    """`delay(attempts)` is the wait before the next attempt, or None when the delivery should give up."""

    max_attempts: int = 8
    base_seconds: float = 2.0
    max_seconds: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryStrategy:
        return cls(settings.retry_max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)

    def delay(self, attempts: int, retry_after: float | None = None) -> float | None:
        """After `attempts` failed attempts: seconds to wait (full jitter, at least Retry-After) or None."""
        if attempts >= self.max_attempts:
            return None
        ceiling = min(self.max_seconds, self.base_seconds * (2 ** max(0, attempts - 1)))
        wait = random.uniform(0, ceiling)
        if retry_after is not None:
            # the provider knows best: honour Retry-After even above our own backoff ceiling (within reason)
            wait = max(wait, min(retry_after, MAX_RETRY_AFTER))
        return wait
