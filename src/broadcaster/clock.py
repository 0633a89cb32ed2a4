"""The service's clock for scheduled work (maintenance notices, escalations): tests move it, nothing sleeps.

`now()` is the wall clock (UTC) unless a test pinned it with `set_now` or moved it with `advance`. Only code
that decides *when something is due* reads it; timestamps of records still use `models.utcnow`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


# --- daily windows (quiet hours) ------------------------------------------------------------------------

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    """`"22:00-07:00"` -> (start, end); empty -> None; ValueError when malformed."""
    if not value.strip():
        return None
    m = _HOURS.match(value)
    if not m:
        raise ValueError("quiet hours must look like 22:00-07:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError("quiet hours must look like 22:00-07:00")
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValueError("quiet hours must not start and end at the same time")
    return start, end


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def quiet_until(instant: datetime, hours: tuple[time, time] | None, tz: ZoneInfo) -> datetime | None:
    """When the quiet hours holding `instant` end (UTC-aware), or None when `instant` is outside them."""
    if hours is None:
        return None
    start, end = hours
    local = instant.astimezone(tz)
    t = local.time().replace(tzinfo=None)
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date()
    if start > end and t >= start:  # the evening part: they end tomorrow morning
        day = day + timedelta(days=1)
    naive_end = datetime.combine(day, end)
    return naive_end.replace(tzinfo=tz).astimezone(instant.tzinfo)
