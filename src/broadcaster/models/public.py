"""Public-surface tables. Owned by the public surfaces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, UTCDateTime, utcnow


class PublicState(Base):
    """One row (id=1): a version counter bumped whenever public content changes.

    Every API process compares it with the version its in-memory banner/feeds were built from
    (polled on SQLite; on PostgreSQL a `NOTIFY broadcaster_public` carries the new version).
    """

    __tablename__ = "public_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
