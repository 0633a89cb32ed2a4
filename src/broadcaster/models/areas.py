"""Area-targeting tables: named areas (imported from GeoJSON) and which subscribers belong to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow


class Area(Base):
    """A named area (district, zone, postcode, site): a GeoJSON Polygon or MultiPolygon and its bounding box."""

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    #: district | zone | postcode | site | other
    kind: Mapped[str] = mapped_column(String(16), default="other")
    description: Mapped[str] = mapped_column(Text, default="")
    #: GeoJSON geometry (Polygon or MultiPolygon, WGS 84 lon/lat), validated at import
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SubscriberArea(Base):
    """A subscriber placed in a named area by hand or by import (besides, or instead of, a location)."""

    __tablename__ = "subscriber_areas"

    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_subscriber_areas_area_id", "area_id", "subscriber_id"),)


class AreaMatch(Base):
    """The subscribers inside an update's area, as last computed (shapely on the bounding-box candidates, plus
    those placed in its named areas). Refreshed at every preview and at fan-out planning, so it always follows
    the current area and locations; the audience filter is `subscribers.id IN (SELECT subscriber_id FROM
    area_matches WHERE match_key = :k)`. `match_key` is the update's id, or a negative one-off key for an
    unsaved draft being previewed (those rows are deleted before the preview's transaction commits).
    No foreign keys: the rows are written in bulk (COPY on PostgreSQL) and a stale id matches nothing."""

    __tablename__ = "area_matches"

    match_key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    subscriber_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
