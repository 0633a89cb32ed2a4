"""Per-adapter send rate shared by every worker: a token bucket row in the database.

Each worker reserves tokens for a chunk inside a short transaction that locks the bucket row
(`SELECT ... FOR UPDATE` on PostgreSQL; SQLite has one writer anyway). The balance may go negative:
that is a reservation, and the caller sleeps until its tokens exist. So N workers together never
exceed the provider's rate, without a coordinator. Bursts are capped at one second of tokens.
"""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from broadcaster.models import utcnow
from broadcaster.models.delivery import RateBucket


def reserve(engine: Engine, name: str, rate: float, n: float) -> float:
    """Reserve `n` sends on bucket `name` (`rate` per second); seconds to wait before sending."""
    burst = max(1.0, rate)
    for _ in range(2):
        with engine.begin() as conn:
            row = conn.execute(
                select(RateBucket.tokens, RateBucket.updated_at).where(RateBucket.name == name).with_for_update()
            ).first()
            now = utcnow()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(RateBucket).values(name=name, tokens=burst - n, updated_at=now))
                except IntegrityError:
                    continue
                tokens = burst - n
            else:
                elapsed = max(0.0, (now - row.updated_at).total_seconds())
                tokens = min(burst, row.tokens + elapsed * rate) - n
                conn.execute(update(RateBucket).where(RateBucket.name == name).values(tokens=tokens, updated_at=now))
        return max(0.0, -tokens / rate)
    return n / rate
