"""Services (components) people follow: their current state, its history, and who follows which."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow

#: component states, best first (the order of severity for a 90-day bar's worst-of-day)
SERVICE_STATES = ("operational", "maintenance", "degraded", "partial_outage", "major_outage")


class Service(Base):
    """A service/component with a current state (one of SERVICE_STATES)."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: optional group shown as a heading on the status page
    group: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="operational")
    #: shown on the public status page (a hidden service can still be followed by API)
    public: Mapped[bool] = mapped_column(default=True)
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ServiceStateChange(Base):
    """Every change of a service's state, with what caused it: the 90-day history bar is built from these."""

    __tablename__ = "service_state_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    previous: Mapped[str | None] = mapped_column(String(16), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    incident_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    update_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    maintenance_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    actor: Mapped[str] = mapped_column(String(120), default="")

    __table_args__ = (Index("ix_service_state_changes_service_at", "service_id", "at"),)


class SubscriberService(Base):
    """A subscriber following a service: updates affecting it reach them (as the routing map says)."""

    __tablename__ = "subscriber_services"

    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_subscriber_services_service_id", "service_id", "subscriber_id"),)
