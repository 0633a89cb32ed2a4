"""The service's clock for scheduled work (maintenance notices, escalations): tests move it, nothing sleeps.

`now()` is the wall clock (UTC) unless a test pinned it with `set_now` or moved it with `advance`. Only code
that decides *when something is due* reads it; timestamps of records still use `models.utcnow`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_fixed: datetime | None = None
_offset = timedelta(0)


def now() -> datetime:
    """The current instant (timezone-aware UTC)."""
    return (_fixed or datetime.now(UTC)) + _offset


def set_now(instant: datetime | None) -> None:
    """Pin the clock to `instant` (None: back to the wall clock, offset cleared)."""
    global _fixed, _offset
    _fixed = instant if instant is None or instant.tzinfo else instant.replace(tzinfo=UTC)
    _offset = timedelta(0)


def advance(delta: timedelta) -> datetime:
    """Move the clock forward by `delta`; the new now."""
    global _offset
    _offset += delta
    return now()
