"""How long reaching everyone takes at the configured rates: for the preview, the publish answer and the report.

An estimate per channel: (what is queued ahead of it in the same or a more urgent lane, plus its own
recipients) x the cost of one recipient (SMS segments) / the adapter's rate. Channels without a rate
limit are reported as "no rate limit" (their time is the provider's speed, not ours to promise).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, or_, select, text
from sqlalchemy.orm import Session

from broadcaster.channels.base import Adapter, Message
from broadcaster.domain import ChannelKind
from broadcaster.models import Update
from broadcaster.models.delivery import Broadcast, Delivery

#: subscriber tables the publish answer counts exactly (PostgreSQL estimates audiences in larger ones)
EXACT_BELOW = 100_000
#: a preview warns when reaching everyone on one channel takes longer than this
SLOW_SECONDS = 15 * 60
#: the rate's unit in plain words (an SMS is sent in parts of 153 or 67 characters: "segments")
_PLAIN = {"segments": "text parts", "sends": "messages"}


class EtaOut(BaseModel):
    """Time to reach every recipient of one channel at its configured rate."""

    channel: str
    recipients: int = Field(description="Recipients still to reach on this channel.")
    queued_ahead: int | None = Field(
        0,
        description="Deliveries of the same or a more urgent lane queued before these (counted up to 1,000,000; "
        "None in the publish answer, which does not count the queue to stay fast).",
    )
    rate_per_second: float | None = Field(None, description="The adapter's configured rate (None: no limit).")
    unit: str = Field("sends", description="What the rate counts: 'segments' for SMS, else 'sends'.")
    seconds: float | None = Field(None, description="Estimated seconds to reach them all; None without a rate.")
    text: str = Field(description='For people, e.g. "SMS: 12,400 queued, about 2 min at 100 text parts a second".')


@dataclass(frozen=True)
class _Cost:
    per_recipient: float
    rate: float | None
    unit: str


def human_duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {round(seconds)} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"about {seconds / 3600:.1f} h"
    return f"about {seconds / 86400:.1f} days"


def _cost(adapter: Adapter | None, message: Message | None) -> _Cost:
    if adapter is None:
        return _Cost(1.0, None, "sends")
    per = adapter.rate_cost(message, 1) if message is not None else 1.0
    unit = "segments" if adapter.kind is ChannelKind.sms else "sends"
    return _Cost(per, adapter.limits.rate_per_second, unit)


def estimate(
    channel: str,
    label: str,
    recipients: int,
    adapter: Adapter | None,
    message: Message | None,
    queued_ahead: int = 0,
) -> EtaOut:
    """The ETA of `recipients` on `channel` (shown as `label`) behind `queued_ahead` deliveries."""
    cost = _cost(adapter, message)
    if not cost.rate:
        text = f"{label}: {recipients:,} queued, no rate limit"
        return EtaOut(channel=channel, recipients=recipients, queued_ahead=queued_ahead, unit=cost.unit, text=text)
    seconds = (recipients + queued_ahead) * cost.per_recipient / cost.rate
    ahead = f" behind {queued_ahead:,} more urgent or earlier" if queued_ahead else ""
    text = (
        f"{label}: {recipients:,} queued{ahead}, {human_duration(seconds)} "
        f"at {cost.rate:g} {_PLAIN[cost.unit]} a second"
        if recipients or queued_ahead
        else f"{label}: nothing queued"
    )
    return EtaOut(
        channel=channel,
        recipients=recipients,
        queued_ahead=queued_ahead,
        rate_per_second=cost.rate,
        unit=cost.unit,
        seconds=round(seconds, 1),
        text=text,
    )


#: queued deliveries counted at most (an estimate says "over" past this; counting is an index range scan)
QUEUE_COUNT_LIMIT = 1_000_000


def queued_ahead(session: Session, channel: str, priority: int, before_broadcast: int | None = None) -> int:
    """Deliveries of `channel` waiting or in flight in a lane at least as urgent as `priority` (and, in the
    same lane, of earlier broadcasts than `before_broadcast`), counted up to `QUEUE_COUNT_LIMIT`."""

    def count(status: str) -> int:
        rows = select(Delivery.id).where(
            Delivery.status == status, Delivery.channel == channel, Delivery.priority <= priority
        )
        if before_broadcast is not None:
            rows = rows.where(or_(Delivery.priority < priority, Delivery.broadcast_id < before_broadcast))
        limited = rows.limit(QUEUE_COUNT_LIMIT).subquery()
        return int(session.scalar(select(func.count()).select_from(limited)) or 0)

    return count("pending") + count("sending")


def label_of(channel: str, adapter: Adapter | None) -> str:
    if adapter is not None and adapter.kind is ChannelKind.sms:
        return "SMS"
    return channel


def for_publish(session: Session, update: Update) -> list[EtaOut]:
    """ETAs per channel for a just-published update, cheap enough for the publish call's 100 ms budget: on
    PostgreSQL with a subscribers table of `EXACT_BELOW` rows or more, audience sizes are the planner's
    estimate (an exact count of a million subscribers costs ~60 ms per channel), a correction's audience is
    the original broadcast's size, and the queue ahead is not counted (`queued_ahead` None). The preview
    and the broadcast report give exact figures."""
    from broadcaster.channels.registry import kind_of, resolve_channel
    from broadcaster.delivery import audience
    from broadcaster.domain import SUBSCRIBER_KINDS
    from broadcaster.models.delivery import Subscriber
    from broadcaster.rendering import render_update
    from broadcaster.settings import get_settings

    settings = get_settings()
    postgres = session.get_bind().dialect.name == "postgresql"
    big = postgres and _table_rows(session, "subscribers") >= EXACT_BELOW
    original = audience.original_broadcast_id(session, update)
    if original is not None:
        orig = session.get(Broadcast, original)
        if big and orig is not None:  # a correction goes to whom the original reached: at most its size
            counts = {name: orig.total for name in orig.channels}
        else:
            counts = audience.audience_counts(session, update)
    else:
        counts = {}
        for name in audience.resolved_channels(session, update):
            kind = kind_of(name)
            if kind is None:
                continue
            if kind not in SUBSCRIBER_KINDS:
                counts[name] = 0 if update.test else len(audience.pseudo_addresses(name))
                continue
            where = audience.subscriber_conditions(update, kind)
            if big:
                counts[name] = _planned_rows(session, select(Subscriber.id).where(*where))
            else:
                counts[name] = int(session.scalar(select(func.count()).select_from(Subscriber).where(*where)) or 0)
    out = []
    for name, n in counts.items():
        adapters = resolve_channel(name, settings)
        adapter = adapters[0] if adapters else None
        message = None
        if adapter is not None:
            try:
                message = render_update(session, update, adapter.name, update.locale or settings.default_locale).message
            except Exception:  # an estimate never fails a publish
                message = None
        eta = estimate(name, label_of(name, adapter), n, adapter, message)
        out.append(eta.model_copy(update={"queued_ahead": None}))
    return out


def _table_rows(session: Session, table: str) -> float:
    """PostgreSQL's row count estimate of `table` (pg_class.reltuples; -1 before the first ANALYZE)."""
    value = session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table})
    return float(value or 0)


def _planned_rows(session: Session, stmt: Select[Any]) -> int:
    """PostgreSQL's estimate of the rows `stmt` returns (EXPLAIN, no execution)."""
    compiled = stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
    plan = session.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"]) if plan else 0
