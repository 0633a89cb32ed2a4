"""Routing-map versions (owned by `broadcaster.routing.versions`).

`RoutingMapVersion`: one version of the whole routing map. Every change of the map records one: applied at
once when it does not loosen safety, or proposed by an admin and applied when a second person approves its
diff. The map in force is the newest applied version; a newer change supersedes older pending proposals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow

#: the states of a version
PROPOSED, APPLIED, REJECTED, SUPERSEDED = "proposed", "applied", "rejected", "superseded"


class RoutingMapVersion(Base):
    __tablename__ = "routing_map_versions"
    __table_args__ = (Index("ix_routing_map_versions_state_number", "state", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: 1, 2, 3, ... in the order the versions were recorded
    #: 64-bit like every id and cursor of the API (pagination.MAX_ID)
    number: Mapped[int] = mapped_column(BigId, unique=True)
    #: the whole map (`GET /v1/routing-map` as JSON)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: proposed | applied | rejected | superseded
    state: Mapped[str] = mapped_column(String(16))
    #: who made the change: `user:<id>`, `key:<name>`, `cli:<login>`, `serve:ROUTING_MAP_FILE`, `migration`
    proposed_by: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: through which door: api | cli | startup | migration
    source: Mapped[str] = mapped_column(String(200), default="api")
    #: the applied version this one was compared with when it was recorded (None: none existed)
    base_number: Mapped[int | None] = mapped_column(BigId, nullable=True)
    #: the diff against the base, in one line (e.g. "categories: 1 changed; alert_rules: 1 added")
    summary: Mapped[str] = mapped_column(Text, default="")
    #: the change loosens safety (it needed a second person), and why
    loosens: Mapped[bool] = mapped_column(Boolean, default=False)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: the second person who approved it (None: applied at once, or the baseline of an upgraded install)
    approved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rejected_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the newer version that superseded this proposal
    superseded_by: Mapped[int | None] = mapped_column(BigId, nullable=True)
    #: alert rules whose `two_person_rule: automation_allowed` a second person approved, carried while the rule
    #: stays the same: {rule name: {"version": n, "approved_by": actor, "spec": sha256 of the rule}}
    allowances: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
