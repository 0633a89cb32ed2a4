"""Inbound alert integrations (owned by `broadcaster.integrations`) and static publishing state (owned by
`broadcaster.staticsite`).

- `Integration`: one configured sender (Alertmanager, Grafana or a generic JSON webhook) and how it proves
  itself: a bearer token (only its SHA-256 is stored) or an HMAC secret (stored: the signature is computed
  from it; never shown again after creation, masked in the audit log), and optionally the names of the
  sender's signature and timestamp headers.
- `AlertRuleRow`: the routing map's `alert_rules` and `webhook_mappings` sections, in order.
- `AlertGroup`: one alert group (Alertmanager `groupKey`, or an alert fingerprint) of one integration, and the
  incident it maps to. `(integration_id, key_hash)` is unique: concurrent deliveries of a new group insert-or-get
  the same row, then serialise on it, so a group never makes two incidents.
- `StaticPublishState`: per static target, the public-content version last written and the retry state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow


class Integration(Base):
    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: alertmanager | grafana | webhook
    kind: Mapped[str] = mapped_column(String(16))
    #: token | hmac
    auth: Mapped[str] = mapped_column(String(8))
    #: SHA-256 of the bearer token (auth=token)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the HMAC-SHA256 secret (auth=hmac)
    hmac_secret: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: auth=hmac: the sender's own signature header name (Grafana's "Header" field), read besides the defaults
    hmac_header: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: auth=hmac: the sender's timestamp header name (Grafana's "Timestamp header" field); when set it is required
    hmac_timestamp_header: Mapped[str | None] = mapped_column(String(100), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AlertRuleRow(Base):
    __tablename__ = "alert_rules"
    __table_args__ = (UniqueConstraint("section", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: alert_rules | webhook_mappings
    section: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AlertGroup(Base):
    __tablename__ = "alert_groups"
    __table_args__ = (
        UniqueConstraint("integration_id", "key_hash"),
        Index("ix_alert_groups_due", "pending", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    #: SHA-256 of the group key (group keys can be long)
    key_hash: Mapped[str] = mapped_column(String(64))
    group_key: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(64), default="")
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True, index=True
    )
    #: firing | resolved: what the sender last said
    status: Mapped[str] = mapped_column(String(16), default="firing")
    #: hash of what the sender last said (status, alerts, labels, annotations): repeats have the same
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    #: hash of what was last made public (or drafted) for this group; differs from content_hash while deferred
    published_hash: Mapped[str] = mapped_column(String(64), default="")
    #: the last notification, kept to render a deferred update when its time comes
    last_payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_public_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: a change waits for the flapping limit (ALERT_MIN_UPDATE_MINUTES); due_at: when it may go out
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: notifications that were not exact repeats (repeats are read-only: they write nothing)
    changes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaticPublishState(Base):
    __tablename__ = "static_publish_state"

    #: the target as configured (a directory path or s3://bucket/prefix), secrets never included
    target: Mapped[str] = mapped_column(String(500), primary_key=True)
    #: public_state.version last written completely to the target
    published_version: Mapped[int] = mapped_column(BigInteger, default=0)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    files: Mapped[int] = mapped_column(Integer, default=0)
    #: consecutive failures; reset by a success
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
