"""Core domain tables: categories (the routing map), incidents, updates, API keys, idempotency, audit."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broadcaster.domain import IncidentStatus
from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow

if TYPE_CHECKING:
    from broadcaster.models.changes import ChangeRequest
    from broadcaster.models.responses import Question


class Category(Base):
    """One need or incident category and its route: how customers reach us, which channels fire."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: contact route: live_chat_url, phone, sms, email, portal_url, opening_hours, note
    contact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: default broadcast channels per severity: {"info": [...], "minor": [...], "major": [...], "critical": [...]}
    channels: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    #: who an update of this category reaches: "category" (its subscribers), "services" (followers of the
    #: incident's affected services) or "either" (both)
    reach: Mapped[str] = mapped_column(String(16), default="either", server_default="either")
    #: default escalation rules of a question on this category's updates (shape of Question.escalation)
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Incident(Base):
    """An incident with a lifecycle (investigating -> identified -> monitoring -> resolved)."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="investigating")
    affected_services: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: banner sites this incident shows on; empty means every site
    sites: Mapped[list[str]] = mapped_column(JSON, default=list)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    #: {severity: ISO instant the incident last dropped below it}, for each severity above the current one;
    #: a recent drop from the approval level still needs approval (APPROVAL_DOWNGRADE_WINDOW)
    severity_lowered_at: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    #: when the title last changed (None: never since creation); feed entries carry the title, so their
    #: <updated> moves with it
    title_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    category: Mapped[Category] = relationship(lazy="joined")
    updates: Mapped[list[Update]] = relationship(
        back_populates="incident", order_by="Update.id", cascade="all, delete-orphan"
    )
    #: requested changes to its public fields, oldest first (broadcaster.models.changes)
    change_requests: Mapped[list[ChangeRequest]] = relationship(
        "ChangeRequest", order_by="ChangeRequest.id", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (Index("ix_incidents_status_id", "status", "id"),)

    def set_status(self, status: IncidentStatus | str) -> None:
        """Move the incident along its lifecycle; resolving stamps `resolved_at`, reopening clears it."""
        status = IncidentStatus(status)
        self.status = status.value
        if status is IncidentStatus.resolved:
            self.resolved_at = self.resolved_at or utcnow()
        else:
            self.resolved_at = None


class Update(Base):
    """One entry of an incident's timeline; a correction or cancel references the update it corrects."""

    __tablename__ = "updates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="normal")
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("updates.id"), nullable=True)
    #: draft | pending_approval | published
    state: Mapped[str] = mapped_column(String(20), default="draft")
    #: incident status this update moves the incident to (None: unchanged)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(String(320), default="")
    locale: Mapped[str] = mapped_column(String(16), default="en")
    #: {"fr": {"body": ..., "summary": ...}}
    translations: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
    #: [{"title": ..., "url": ...}]
    links: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    #: per-update channel override; None means the routing map decides
    channels: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    #: per-update audience override: {"categories": [...], "tags": [...], "locales": [...]}
    audience: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: area targeting: {"description": str, "areas": [area slugs], "polygon": GeoJSON Polygon/MultiPolygon
    #: geometry, "circle": {"lat": float, "lon": float, "radius_m": float}}; any of areas/polygon/circle,
    #: the audience is the subscribers inside their union. None: no area (everyone the filters select)
    area: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: component states this update sets when published: {service slug: state}
    service_states: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    #: a test send goes only to the test group and is visibly marked
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    published_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    #: content ETag of what the requester asked to publish (set while pending_approval)
    approval_etag: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the last rejection of an approval request: who, when and why (kept until the next rejection)
    rejected_by: Mapped[str | None] = mapped_column(String(120), nullable=True)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rejection_comment: Mapped[str | None] = mapped_column(Text, nullable=True)

    incident: Mapped[Incident] = relationship(back_populates="updates")
    #: the question the update asks ("Are you safe?"), if any (broadcaster.responses)
    question: Mapped[Question | None] = relationship("Question", uselist=False, viewonly=True)

    @property
    def rejection(self) -> dict[str, Any] | None:
        """The last rejection `{by, at, comment}`, or None (shown on the update as `rejection`)."""
        if self.rejected_by is None:
            return None
        return {"by": self.rejected_by, "at": self.rejected_at, "comment": self.rejection_comment or ""}

    __table_args__ = (Index("ix_updates_state_published_at", "state", "published_at"),)


class ApiKey(Base):
    """An API key: only a SHA-256 of the secret is stored; the full key is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the person who owns the key (`keys create --owner`): their key acts as them (`user:<id>`)
    owner_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )


class IdempotencyRecord(Base):
    """The first response to a POST carrying an `Idempotency-Key`, replayed for retries."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    #: None while the first request is still running
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    __table_args__ = (UniqueConstraint("api_key_id", "key"),)


class AuditEntry(Base):
    """Who did what, when: every state change through the API or CLI."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: the target's state before and after the change (secrets masked; None where it does not apply)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    #: the audit API's filters, each newest first (keyset on id)
    __table_args__ = (
        Index("ix_audit_log_target", "target_type", "target_id", "id"),
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
    )
