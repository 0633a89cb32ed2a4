"""Delivery-engine tables (subscribers, broadcasts, deliveries, receipts). Owned by the delivery engine.

Deliveries are the work queue: one row per recipient and channel. A worker claims one channel at a time,
highest priority first: `status = 'pending' AND channel = :c ORDER BY priority, id`, served by
`ix_deliveries_pending`, a partial index `(channel, priority, id) WHERE status = 'pending'` on both
backends: it only ever holds pending work, so claims never slow down as sent rows accumulate. PostgreSQL's
planner picks it (a `(status, id)` index loses to the primary key when most rows are pending, and the claim
then turns quadratic); SQLite's planner ignores partial indexes for `ORDER BY ... LIMIT`, so the SQLite
claim names it with `INDEXED BY` (a test asserts both plans).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    Select,
    SmallInteger,
    String,
    Text,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow


class Subscriber(Base):
    """A person reachable by SMS/voice (phone) and/or email, with preferences and per-channel consent.

    The categories, tags and services a subscriber chose are join rows (`subscriber_categories`,
    `subscriber_tags`, `subscriber_services`), so an audience is an index lookup; `all_categories` marks
    those who chose no category and no service (every update reaches them).
    """

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True, nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    #: chose no category and no service: every update reaches them (kept in step with the join rows by
    #: subscribers/memberships.py; `ix_subscribers_all_categories` makes them an index lookup too)
    all_categories: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    #: double opt-in: email is only used once confirmed (API-created subscribers may be pre-confirmed)
    email_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    email_opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    #: STOP by SMS opts out of SMS and voice
    sms_opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    #: SMS double opt-in: a number from the public form is used once it replied YES; numbers added with an API
    #: key (API, CSV import) are confirmed by whoever added them
    phone_confirmed: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    #: last confirmation email / text sent (at most one per SUBSCRIBE_CONFIRM_INTERVAL_SECONDS)
    email_confirm_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    phone_confirm_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: latest email unsubscribe: a confirmation link issued before it cannot undo it
    email_opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: members of the test group receive test sends
    test_group: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="api")
    #: location (WGS 84 degrees) for area targeting; both set or both None
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    #: ids are never reused (SQLite AUTOINCREMENT; PostgreSQL sequences never go back): a deleted subscriber's
    #: links must not act on whoever is added next. `ix_subscribers_lat_lon`: the bounding-box prefilter of
    #: area targeting (a range on lat, lon checked in the index), located subscribers only; on PostgreSQL it
    #: carries the id too, so the prefilter is an index-only scan.
    __table_args__ = (
        Index(
            "ix_subscribers_all_categories",
            "id",
            postgresql_where=text("all_categories"),
            sqlite_where=text("all_categories = 1"),
        ),
        Index(
            "ix_subscribers_lat_lon",
            "lat",
            "lon",
            postgresql_include=["id"],
            postgresql_where=text("lat IS NOT NULL"),
            sqlite_where=text("lat IS NOT NULL"),
        ),
        {"sqlite_autoincrement": True},
    )


#: the broadcast kind of a question's re-send (broadcaster.responses.escalation_runner): it reached only part of
#: the update's audience, so it is never "the broadcast of the update" (see `update_broadcasts`)
ESCALATION_KIND = "escalation"


class Broadcast(Base):
    """The fan-out of one published update: planning -> sending -> done, or cancelled."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: the published update; None for system messages (e.g. a subscription confirmation)
    update_id: Mapped[int | None] = mapped_column(
        ForeignKey("updates.id", ondelete="CASCADE"), index=True, nullable=True
    )
    #: update | system | escalation (a question's re-send to part of the audience: ESCALATION_KIND)
    kind: Mapped[str] = mapped_column(String(16), default="update")
    #: content of a system message: {"subject": ..., "text": ...}
    message: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: planning | sending | done | cancelled | failed
    state: Mapped[str] = mapped_column(String(16), default="planning")
    #: delivery lane (see `Priority`): critical first, then major, then the rest; test sends last
    priority: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")
    #: routing-map channel names chosen at publish time
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: channels skipped at planning (no adapter configured), with the reason
    skipped: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    #: broadcast whose recipients a correction/cancel goes to
    corrects_broadcast_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the send hold (SEND_HOLD_SECONDS): no worker plans the broadcast, so no delivery exists and nothing reaches
    #: a provider, before this instant; until then `POST /v1/broadcasts/{id}/stop` cancels it. None: no hold
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_broadcasts_state_id", "state", "id"),)


class Delivery(Base):
    """One message to one recipient on one channel; also the queue entry the workers claim."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: the broadcast (deliberately no foreign key: PostgreSQL checks one per inserted row, which doubled
    #: fan-out time, 4.6 s instead of 2.4 s for 1M rows; broadcasts are never deleted, because updates and
    #: incidents that were published cannot be, and the planner is the only writer of this column)
    broadcast_id: Mapped[int] = mapped_column(BigId)
    #: routing-map channel name (a kind such as "sms" or an adapter name such as "twilio-sms")
    channel: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(2048))
    subscriber_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    locale: Mapped[str] = mapped_column(String(16), default="en")
    #: pending | sending | sent | delivered | opened | failed | undelivered | bounced | cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: lane copied from the broadcast: 0 critical, 1 major and system messages, 2 the rest, 3 test sends
    priority: Mapped[int] = mapped_column(SmallInteger, default=2, server_default="2")
    #: the last attempt timed out after the request may have reached the provider: look it up before resending
    outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    #: sent again although an earlier attempt may have arrived (the provider could not tell): a possible duplicate
    suspect_duplicate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index(
            "ix_deliveries_pending",
            "channel",
            "priority",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_deliveries_leased", "status", "lease_expires_at", postgresql_where=text("status = 'sending'")),
        Index("ix_deliveries_broadcast_id_id", "broadcast_id", "id"),
        Index(
            "ix_deliveries_provider_message_id",
            "provider_message_id",
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
    )

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and workers: sent to providers that support one."""
        return idempotency_key(self.broadcast_id, self.id)


def idempotency_key(broadcast_id: int, delivery_id: int) -> str:
    return f"bc{broadcast_id}-d{delivery_id}"


class DeliveryEvent(Base):
    """Receipts log: every provider status callback / event, verified, with its raw payload."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    provider: Mapped[str] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    #: the provider's id of this event (SendGrid `sg_event_id`): a retried or replayed event is stored and
    #: applied once (unique with the provider; NULL for providers without one)
    provider_event_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ux_delivery_events_provider_event", "provider", "provider_event_id", unique=True),)


class RateBucket(Base):
    """A token bucket per adapter shared by every worker (updated under a row lock).

    `floor_priority`/`floor_until`: the most urgent lane that recently took or asked for tokens; until
    `floor_until` a less urgent lane gets none, so a critical broadcast overtakes queued bulk sends in every
    worker (see delivery/ratelimit.py)."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    floor_priority: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    floor_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def update_broadcasts(update_id: int) -> Select[Broadcast]:
    """The broadcasts of an update that reached its audience, latest first (a question's re-sends excluded)."""
    return (
        select(Broadcast)
        .where(Broadcast.update_id == update_id, Broadcast.kind != ESCALATION_KIND)
        .order_by(Broadcast.id.desc())
    )
