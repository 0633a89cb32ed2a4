"""Change requests: a requested change to a live incident's public fields, waiting for a second person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow

#: pending -> applied (approved) | rejected (with a comment) | superseded (a newer request of the incident)
#: | voided (the incident's public content changed another way before anyone approved)
CHANGE_STATES = ("pending", "applied", "rejected", "superseded", "voided")


class ChangeRequest(Base):
    """A change to the public fields of a live incident at or above APPROVAL_SEVERITY (publishing/gate.py,
    door `incident.edit`): it takes effect only when someone other than the requester approves exactly this
    diff against the content stored in `base`."""

    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    #: one of CHANGE_STATES
    state: Mapped[str] = mapped_column(String(16), default="pending")
    #: {field: requested value} for the public fields that change (title, category slug, severity, status,
    #: affected_services, sites, public)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: the incident's public fields when the change was requested (what the diff is against)
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: why the gate asked for a second person
    reason: Mapped[str] = mapped_column(String(300), default="")
    requested_by: Mapped[str] = mapped_column(String(120))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who approved or rejected it, or whose action superseded or voided it
    decided_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the rejection comment, or why it was superseded or voided
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_change_requests_incident", "incident_id", "state", "id"),)
