"""Scheduled maintenance windows and their notices (each notice is sent exactly once by the runner)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow

#: window states: scheduled -> in_progress -> completed; scheduled/in_progress -> cancelled
WINDOW_STATES = ("scheduled", "in_progress", "completed", "cancelled")
#: notice kinds
NOTICE_KINDS = ("created", "reminder", "started", "completed", "moved", "cancelled")
#: notice states: pending -> sent | skipped (stale: a reminder due after the start) | superseded (re-planned)
NOTICE_STATES = ("pending", "sent", "skipped", "superseded")
#: the approval of a window's schedule (maintenance/schedule.py): pending (waiting for a second person),
#: approved (by a second person, or at once by the gate), rejected; NULL: planned before schedule approvals
#: existed (the runner has the gate decide the first time it sees the window)
APPROVAL_STATES = ("pending", "approved", "rejected")


class MaintenanceWindow(Base):
    """A planned window: its services go to "maintenance" from `starts_at` to `ends_at`.

    Its notices are published as updates of `incident_id` (an info-level incident of `category_id`), so they
    take the whole delivery pipeline: routing-map channels, templates, fan-out, feeds and banner.
    """

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text, default="")
    #: slugs of the services it affects
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    #: {"at_creation": bool, "hours_before": [int], "at_start": bool, "at_end": bool}
    notify: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: bumped by every move; notices are planned per revision
    revision: Mapped[int] = mapped_column(Integer, default=0)
    #: the incident whose updates carry the notices
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True, index=True
    )
    #: {service slug: state before the window started} (restored at the end)
    previous_states: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: when it actually started / ended / was cancelled (the runner's clock)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the approval of the schedule of notices (APPROVAL_STATES; NULL: not decided yet)
    approval_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: the gate's reason: why a second person is needed, or why the schedule was approved at once
    approval_reason: Mapped[str] = mapped_column(String(300), default="", server_default="")
    #: the schedule ETag the request (or the approval) is for
    approval_etag: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: whose change the decision is about (the second person must be someone else), and when
    approval_requested_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    approval_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: who approved or rejected, and when (NULL with `approved`: the gate approved at once)
    approval_decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    approval_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: a rejection's comment
    approval_comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    #: why the last approval stopped covering the unsent notices (e.g. an edit of the incident)
    approval_voided: Mapped[str] = mapped_column(String(500), default="", server_default="")

    __table_args__ = (Index("ix_maintenance_windows_state_starts_at", "state", "starts_at"),)


class MaintenanceNotice(Base):
    """One planned notice of a window. `(maintenance_id, revision, kind, minutes_before)` is unique, and the
    runner marks it sent in the transaction that publishes its update: each notice goes out exactly once."""

    __tablename__ = "maintenance_notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    maintenance_id: Mapped[int] = mapped_column(BigId, ForeignKey("maintenance_windows.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(16))
    #: reminders: how long before the start (minutes); 0 for the other kinds
    minutes_before: Mapped[int] = mapped_column(Integer, default=0)
    #: False: published on the public surfaces only (status page, feeds, banner), sent on no channel
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    #: why it was skipped or superseded
    reason: Mapped[str] = mapped_column(String(300), default="")
    #: the runner that claimed it, and when (in the sending transaction)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    update_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("updates.id", ondelete="SET NULL"), nullable=True)
    #: failed attempts (each rolled back entirely), the last error and when to try again
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the digest of this notice's content that the window's schedule approval covers (NULL: none does); the
    #: runner sends the notice only while its content still has this digest
    approved_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: why it waits (the schedule's approval does not cover it), "" when it does not
    waiting_reason: Mapped[str] = mapped_column(String(300), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("maintenance_id", "revision", "kind", "minutes_before"),
        Index(
            "ix_maintenance_notices_pending_due",
            "due_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_maintenance_notices_maintenance_id", "maintenance_id", "id"),
    )
