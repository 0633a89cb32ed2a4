"""Public-surface tables. Owned by the public surfaces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow


class PublicState(Base):
    """One row (id=1): a version counter bumped whenever public content changes.

    Every API process compares it with the version its in-memory banner/feeds were built from
    (polled on SQLite; on PostgreSQL a `NOTIFY broadcaster_public` carries the new version).
    """

    __tablename__ = "public_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CapMessage(Base):
    """One CAP 1.2 document exactly as first emitted (public/cap_log.py): a row is written once and never changed.

    A change to what an alert said is a new row (msgType Update) referencing the ones it supersedes; a retraction
    is a new row (msgType Cancel) referencing every message of the incident still in force."""

    __tablename__ = "cap_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: CAP <identifier> (unique for this sender)
    identifier: Mapped[str] = mapped_column(String(200), unique=True)
    #: CAP <sender> when emitted
    sender: Mapped[str] = mapped_column(String(200))
    #: CAP <sent> text, e.g. 2026-12-07T11:00:00+00:00
    sent: Mapped[str] = mapped_column(String(32))
    #: Actual | Exercise
    status: Mapped[str] = mapped_column(String(16))
    #: Alert | Update | Cancel
    msg_type: Mapped[str] = mapped_column(String(16))
    #: CAP <references>: space-separated "sender,identifier,sent" of the messages it supersedes or cancels
    references: Mapped[str] = mapped_column(Text, default="")
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    #: the published update whose content it carries
    update_id: Mapped[int] = mapped_column(ForeignKey("updates.id", ondelete="CASCADE"), index=True)
    #: publish (the update's own message) | change (what an earlier message said changed: title, area, ...)
    reason: Mapped[str] = mapped_column(String(16))
    #: SHA-256 of what the message says apart from its header (to notice a change)
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: the exact bytes served for it, ever after
    xml: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_cap_messages_incident", "incident_id", "status", "id"),)
