"""Per-adapter send rate shared by every worker: a token bucket row in the database, with priority.

A worker takes tokens for a chunk right before its provider call (`acquire`), inside a short transaction
that holds the bucket row's write lock from its first statement: an `UPDATE` that touches the row comes
before the read, so on SQLite the transaction is a writer from the start (a plain `SELECT` would read the
bucket outside the write lock, and concurrent readers would all see it full: issue 9's 170/s at a
configured 50/s), and on PostgreSQL it is the row lock. Tokens are never taken ahead of time: a chunk that
finds too few waits and asks again, so no worker holds reservations that a more urgent chunk would queue
behind.

Burst: the bucket holds at most half a second of tokens (`BUCKET_SECONDS`, or one chunk if a chunk costs
more). Tokens bound when chunks are *granted*; a chunk can *arrive* at the provider a little later (a busy
machine, a slow connection) and land next to the following one. The documented burst is therefore one
second of tokens: over any window of T seconds the provider sees at most `rate * T + rate` units (segments
for SMS), with half a second of that as headroom for arrival jitter (measured at the fake provider in
tests/delivery/test_contention.py and bench/contention.py).

Priority: `floor_priority`/`floor_until` record the most urgent lane (`domain.Priority`, lower is more
urgent) that took or asked for tokens in the last `FLOOR_SECONDS`. A less urgent lane gets no tokens
while that floor stands, in any worker. So a critical broadcast overtakes bulk sends that other workers
already hold, and the bulk resumes at most `FLOOR_SECONDS` after the critical lane's last chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from broadcaster.models import utcnow
from broadcaster.models.delivery import RateBucket

#: seconds of tokens the bucket holds (the documented burst, one second, leaves the rest for arrival jitter)
BUCKET_SECONDS = 0.5
#: how long a lane's claim on a bucket keeps less urgent lanes out after its last request
FLOOR_SECONDS = 1.5


@dataclass(frozen=True)
class Grant:
    """The answer of `acquire`: `granted`, or the seconds to wait before asking again."""

    granted: bool
    wait: float = 0.0


def acquire(engine: Engine, name: str, rate: float, cost: float, priority: int = 2) -> Grant:
    """Take `cost` tokens from bucket `name` (`rate` per second) for a chunk of lane `priority`, or say how
    long to wait. Never goes into debt except for one chunk larger than the whole burst (taken when full)."""
    burst = max(1.0, rate * BUCKET_SECONDS, cost)
    for _ in range(3):
        with engine.begin() as conn:
            # take the write lock first (SQLite: BEGIN becomes a write transaction; PostgreSQL: row lock)
            touched = conn.execute(update(RateBucket).where(RateBucket.name == name).values(name=name)).rowcount
            now = utcnow()
            if not touched:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(RateBucket).values(
                                name=name,
                                tokens=burst - cost,
                                updated_at=now,
                                floor_priority=priority,
                                floor_until=now + timedelta(seconds=FLOOR_SECONDS),
                            )
                        )
                except IntegrityError:
                    continue
                return Grant(True)
            row = conn.execute(
                select(RateBucket.tokens, RateBucket.updated_at, RateBucket.floor_priority, RateBucket.floor_until)
                .where(RateBucket.name == name)
                .with_for_update()
            ).one()
            elapsed = max(0.0, (now - row.updated_at).total_seconds())
            tokens = min(burst, row.tokens + elapsed * rate)
            floor, until = row.floor_priority, row.floor_until
            floor_active = floor is not None and until is not None and until > now
            hold = now + timedelta(seconds=FLOOR_SECONDS)
            if floor_active and priority > floor:  # a more urgent lane is sending: stay out of its way
                assert until is not None
                conn.execute(update(RateBucket).where(RateBucket.name == name).values(tokens=tokens, updated_at=now))
                return Grant(False, max(0.05, min(FLOOR_SECONDS, (until - now).total_seconds())))
            new_floor = {"floor_priority": priority, "floor_until": hold}
            if tokens >= cost:
                values = {"tokens": tokens - cost, "updated_at": now, **new_floor}
                conn.execute(update(RateBucket).where(RateBucket.name == name).values(**values))
                return Grant(True)
            conn.execute(
                update(RateBucket).where(RateBucket.name == name).values(tokens=tokens, updated_at=now, **new_floor)
            )
            needed = min(cost, burst) - tokens
            return Grant(False, max(0.001, needed / rate))
    return Grant(False, cost / rate)
