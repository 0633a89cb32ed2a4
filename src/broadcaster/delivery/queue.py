"""The delivery queue in the database: claim, renew, requeue and record, each one short statement.

Claim (one channel at a time, most urgent lane first):

    UPDATE deliveries SET status='sending', lease_expires_at=now+lease, claimed_by=me, attempts=attempts+1
     WHERE id IN (SELECT id FROM deliveries WHERE status='pending' AND channel=:channel
                   AND next_attempt_at <= now ORDER BY priority, id LIMIT n FOR UPDATE SKIP LOCKED)
    RETURNING ...

Any number of workers run this on PostgreSQL without blocking each other. A worker keeps its leases alive
with `renew` (a heartbeat) while it holds rows, and sends a row only while that lease is its own. A lease
that runs out (its worker died or lost the database) is put back to `pending` by `requeue_expired`.
Outcomes are written only while the worker still holds the row (`claimed_by = me AND status='sending'`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, case, select, text, true, update

from broadcaster.models import utcnow
from broadcaster.models.base import UTCDateTime
from broadcaster.models.delivery import Broadcast, Delivery

_T = cast(Table, Delivery.__table__)


@dataclass(slots=True)
class Claimed:
    """A delivery row this worker holds."""

    id: int
    broadcast_id: int
    channel: str
    address: str
    subscriber_id: int | None
    locale: str
    attempts: int
    priority: int = 2
    outcome_unknown: bool = False
    created_at: datetime | None = None


@dataclass(slots=True)
class Outcome:
    """What happened to one claimed row; `status` "pending" means retry at `next_attempt_at`."""

    id: int
    channel: str
    status: str
    provider: str | None = None
    provider_message_id: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    next_attempt_at: Any = None
    #: the provider may have the message although the answer was lost (look it up before resending)
    outcome_unknown: bool = False
    #: sent again although an earlier attempt may have arrived
    suspect_duplicate: bool = False


_CLAIM = (
    "UPDATE deliveries SET status='sending', lease_expires_at=:lease, claimed_by=:me, "
    "attempts=attempts+1, updated_at=:now "
    "WHERE id IN (SELECT id FROM deliveries{indexed} WHERE status='pending' AND channel = :channel "
    "AND priority < :below AND next_attempt_at <= :now "
    "ORDER BY priority, id LIMIT :n{lock}) "
    "RETURNING id, broadcast_id, channel, address, subscriber_id, locale, attempts, priority, outcome_unknown, "
    "created_at"
)
CLAIM_PG = _CLAIM.replace("{lock}", " FOR UPDATE SKIP LOCKED").replace("{indexed}", "")
#: SQLite ignores the partial index for ORDER BY ... LIMIT unless told (11-25x, perf-baseline 3c)
CLAIM_SQLITE = _CLAIM.replace("{lock}", "").replace("{indexed}", " INDEXED BY ix_deliveries_pending")
#: any channel (tests and tools; workers claim per channel)
CLAIM_ANY = (
    "UPDATE deliveries SET status='sending', lease_expires_at=:lease, claimed_by=:me, "
    "attempts=attempts+1, updated_at=:now "
    "WHERE id IN (SELECT id FROM deliveries WHERE status='pending' AND priority < :below "
    "AND next_attempt_at <= :now ORDER BY priority, id LIMIT :n{lock}) "
    "RETURNING id, broadcast_id, channel, address, subscriber_id, locale, attempts, priority, outcome_unknown, "
    "created_at"
)

#: record final outcomes on PostgreSQL in one statement (only rows this worker still holds)
RECORD_PG = (
    "UPDATE deliveries AS d SET status = v.status, provider = v.provider, provider_message_id = v.mid, "
    "error_code = v.code, error_reason = v.reason, outcome_unknown = v.unknown, "
    "suspect_duplicate = d.suspect_duplicate OR v.dup, "
    "sent_at = CASE WHEN v.status = 'sent' THEN CAST(:now AS timestamptz) END, "
    "lease_expires_at = NULL, updated_at = CAST(:now AS timestamptz) "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:providers AS text[]), "
    "CAST(:mids AS text[]), CAST(:codes AS text[]), CAST(:reasons AS text[]), CAST(:unknowns AS boolean[]), "
    "CAST(:dups AS boolean[])) "
    "AS v(id, status, provider, mid, code, reason, unknown, dup) "
    "WHERE d.id = v.id AND d.claimed_by = :me AND d.status = 'sending'"
)

#: the common case (no timeout involved in the chunk): the same without the two flag arrays
RECORD_PG_PLAIN = (
    "UPDATE deliveries AS d SET status = v.status, provider = v.provider, provider_message_id = v.mid, "
    "error_code = v.code, error_reason = v.reason, outcome_unknown = false, "
    "sent_at = CASE WHEN v.status = 'sent' THEN CAST(:now AS timestamptz) END, "
    "lease_expires_at = NULL, updated_at = CAST(:now AS timestamptz) "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:providers AS text[]), "
    "CAST(:mids AS text[]), CAST(:codes AS text[]), CAST(:reasons AS text[])) "
    "AS v(id, status, provider, mid, code, reason) "
    "WHERE d.id = v.id AND d.claimed_by = :me AND d.status = 'sending'"
)

NO_PRIORITY_LIMIT = 1_000


def claim(
    engine: Engine,
    me: str,
    n: int,
    lease_seconds: float,
    *,
    channel: str | None = None,
    below_priority: int = NO_PRIORITY_LIMIT,
) -> list[Claimed]:
    """Claim up to `n` due pending deliveries (of `channel`, in lanes more urgent than `below_priority`)."""
    now = utcnow()
    dt = UTCDateTime()
    postgres = engine.dialect.name == "postgresql"
    if channel is None:
        sql = CLAIM_ANY.replace("{lock}", " FOR UPDATE SKIP LOCKED" if postgres else "")
    else:
        sql = CLAIM_PG if postgres else CLAIM_SQLITE
    stmt = text(sql).bindparams(bindparam("now", type_=dt), bindparam("lease", type_=dt))
    if channel is not None:
        stmt = stmt.bindparams(channel=channel)
    params = {"now": now, "lease": now + timedelta(seconds=lease_seconds), "me": me, "n": n, "below": below_priority}
    with engine.begin() as conn:
        rows = conn.execute(stmt, params)
        return [_claimed(row) for row in rows]


def _claimed(row: Any) -> Claimed:
    created = row[9]
    if created.__class__ is str:  # SQLite through text(): naive UTC as UTCDateTime stored it
        created = datetime.fromisoformat(created)
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return Claimed(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], bool(row[8]), created)


def active_channels(engine: Engine) -> dict[str, int]:
    """Channels that may have pending deliveries, with the most urgent lane there: read from the broadcasts
    still `sending` (a small table), since every pending row belongs to one and carries its channel names
    and lane. (A scan of the pending index would walk past the dead entries a big broadcast leaves behind
    until vacuum: ~0.3 s after a million sends.)"""
    out: dict[str, int] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(Broadcast.channels, Broadcast.priority).where(Broadcast.state == "sending"))
        for channels, priority in rows:
            for channel in channels or []:
                out[str(channel)] = min(int(priority), out.get(str(channel), int(priority)))
    return out


def renew(engine: Engine, me: str, lease_seconds: float) -> set[int]:
    """Extend the lease of every row `me` holds; the ids still held (a row missing was taken away)."""
    now = utcnow()
    with engine.begin() as conn:
        rows = conn.execute(
            update(_T)
            .where(_T.c.status == "sending", _T.c.claimed_by == me)
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
            .returning(_T.c.id)
        )
        return {int(r) for r in rows.scalars()}


def release(engine: Engine, me: str, ids: list[int]) -> int:
    """Give rows back to the queue unsent (the attempt does not count)."""
    if not ids:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            update(_T)
            .where(_T.c.id.in_(ids), _T.c.claimed_by == me, _T.c.status == "sending")
            .values(status="pending", claimed_by=None, lease_expires_at=None, attempts=_T.c.attempts - 1)
        )
        return int(result.rowcount or 0)


def look_up_first(channels: Iterable[str]) -> list[str]:
    """The channels among `channels` whose orphaned rows are looked up at the provider before a resend: calls
    (a second phone call is the duplicate people notice; the voice adapter's lookup lists the calls to that
    number, one request per row at a low rate)."""
    from broadcaster.channels.registry import kind_of
    from broadcaster.domain import ChannelKind

    return [c for c in channels if kind_of(c) is ChannelKind.voice]


def requeue_expired(engine: Engine) -> int:
    """Put rows whose lease ran out (their worker died or lost the database) back in the queue.

    A dead worker may have placed a call for a row it held (kill -9 while the call was in flight): such
    rows of voice channels come back with `outcome_unknown`, so the next attempt asks the provider first and
    places the call only when it finds none (worker `_lookup`)."""
    now = utcnow()
    expired = (_T.c.status == "sending", _T.c.lease_expires_at < now)
    with engine.begin() as conn:
        voice = look_up_first(conn.execute(select(_T.c.channel).where(*expired).distinct()).scalars())
        values: dict[str, Any] = {
            "status": "pending",
            "claimed_by": None,
            "lease_expires_at": None,
            "next_attempt_at": now,
        }
        if voice:
            values["outcome_unknown"] = case((_T.c.channel.in_(voice), true()), else_=_T.c.outcome_unknown)
        result = conn.execute(update(_T).where(*expired).values(**values))
        return int(result.rowcount or 0)


def record(engine: Engine, me: str, outcomes: list[Outcome]) -> None:
    """Write outcomes, only for rows `me` still holds."""
    if not outcomes:
        return
    now = utcnow()
    done = [o for o in outcomes if o.status != "pending"]
    retry = [o for o in outcomes if o.status == "pending"]
    guard = (_T.c.id == bindparam("b_id"), _T.c.claimed_by == me, _T.c.status == "sending")
    with engine.begin() as conn:
        if done and conn.dialect.name == "postgresql":
            # one statement for the whole chunk (an executemany of 500 UPDATEs costs ~2x more)
            params: dict[str, Any] = {
                "ids": [o.id for o in done],
                "statuses": [o.status for o in done],
                "providers": [o.provider for o in done],
                "mids": [o.provider_message_id for o in done],
                "codes": [o.error_code for o in done],
                "reasons": [o.error_reason for o in done],
                "now": now,
                "me": me,
            }
            if any(o.outcome_unknown or o.suspect_duplicate for o in done):
                params["unknowns"] = [o.outcome_unknown for o in done]
                params["dups"] = [o.suspect_duplicate for o in done]
                conn.execute(text(RECORD_PG), params)
            else:
                conn.execute(text(RECORD_PG_PLAIN), params)
        elif done:
            conn.execute(
                update(_T)
                .where(*guard)
                .values(
                    status=bindparam("b_status"),
                    provider=bindparam("b_provider"),
                    provider_message_id=bindparam("b_mid"),
                    error_code=bindparam("b_code"),
                    error_reason=bindparam("b_reason"),
                    outcome_unknown=bindparam("b_unknown"),
                    suspect_duplicate=_T.c.suspect_duplicate | bindparam("b_dup"),
                    sent_at=bindparam("b_sent"),
                    lease_expires_at=None,
                    updated_at=now,
                ),
                [
                    {
                        "b_id": o.id,
                        "b_status": o.status,
                        "b_provider": o.provider,
                        "b_mid": o.provider_message_id,
                        "b_code": o.error_code,
                        "b_reason": o.error_reason,
                        "b_unknown": o.outcome_unknown,
                        "b_dup": o.suspect_duplicate,
                        "b_sent": now if o.status == "sent" else None,
                    }
                    for o in done
                ],
            )
        if retry:
            conn.execute(
                update(_T)
                .where(*guard)
                .values(
                    status="pending",
                    provider=bindparam("b_provider"),
                    error_code=bindparam("b_code"),
                    error_reason=bindparam("b_reason"),
                    next_attempt_at=bindparam("b_next"),
                    outcome_unknown=bindparam("b_unknown"),
                    suspect_duplicate=_T.c.suspect_duplicate | bindparam("b_dup"),
                    claimed_by=None,
                    lease_expires_at=None,
                    updated_at=now,
                ),
                [
                    {
                        "b_id": o.id,
                        "b_provider": o.provider,
                        "b_code": o.error_code,
                        "b_reason": o.error_reason,
                        "b_next": o.next_attempt_at,
                        "b_unknown": o.outcome_unknown,
                        "b_dup": o.suspect_duplicate,
                    }
                    for o in retry
                ],
            )
