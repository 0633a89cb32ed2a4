"""routing-map versions: every change of the map is a version; a loosening one waits for a second person

Revision ID: 0006_routing_versions
Revises: 0005_change_requests
Create Date: 2026-12-11 10:00:00.000000

An install that already has a routing map gets a baseline version 1 holding that map, applied and approved by
nobody: an alert rule's `two_person_rule: automation_allowed` in it does not count until a second person
approves a version that holds it (docs/core.md, "Routing-map versions"). An empty map gets no baseline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import broadcaster.models.base

revision = "0006_routing_versions"
down_revision = "0005_change_requests"
branch_labels = None
depends_on = None

_CATEGORIES = sa.table(
    "categories",
    sa.column("slug", sa.String),
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("contact", sa.JSON),
    sa.column("channels", sa.JSON),
    sa.column("position", sa.Integer),
    sa.column("reach", sa.String),
    sa.column("escalation", sa.JSON),
)
_RULES = sa.table(
    "alert_rules",
    sa.column("section", sa.String),
    sa.column("position", sa.Integer),
    sa.column("spec", sa.JSON),
)


def _baseline(conn: sa.Connection) -> dict[str, Any] | None:
    """The stored map in the shape `GET /v1/routing-map` answers (None when it is empty)."""
    cats = conn.execute(sa.select(_CATEGORIES).order_by(_CATEGORIES.c.position, _CATEGORIES.c.slug)).mappings().all()
    rules = conn.execute(sa.select(_RULES).order_by(_RULES.c.section, _RULES.c.position)).mappings().all()
    if not cats and not rules:
        return None
    return {
        "version": 1,
        "categories": [
            {
                "slug": c["slug"],
                "name": c["name"],
                "description": c["description"] or "",
                "contact": dict(c["contact"] or {}),
                "channels": dict(c["channels"] or {}),
                "position": c["position"],
                "reach": c["reach"] or "either",
                "escalation": c["escalation"],
            }
            for c in cats
        ],
        "alert_rules": [dict(r["spec"]) for r in rules if r["section"] == "alert_rules"],
        "webhook_mappings": [dict(r["spec"]) for r in rules if r["section"] == "webhook_mappings"],
    }


def upgrade() -> None:
    versions = op.create_table(
        "routing_map_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("proposed_by", sa.String(length=200), nullable=False),
        sa.Column("proposed_at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("base_number", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("loosens", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("applied_at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rejected_by", sa.String(length=200), nullable=True),
        sa.Column("rejected_at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("superseded_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("allowances", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_map_versions")),
        sa.UniqueConstraint("number", name=op.f("uq_routing_map_versions_number")),
    )
    with op.batch_alter_table("routing_map_versions", schema=None) as batch_op:
        batch_op.create_index("ix_routing_map_versions_state_number", ["state", "number"], unique=False)

    document = _baseline(op.get_bind())
    if document is not None:
        now = datetime.now(UTC)
        op.bulk_insert(
            versions,
            [
                {
                    "number": 1,
                    "document": document,
                    "state": "applied",
                    "proposed_by": "migration",
                    "proposed_at": now,
                    "source": "migration",
                    "base_number": None,
                    "summary": "baseline: the routing map as it was before versions (approved by nobody)",
                    "loosens": False,
                    "reasons": [],
                    "approved_by": None,
                    "applied_at": now,
                    "allowances": {},
                }
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("routing_map_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_map_versions_state_number")

    op.drop_table("routing_map_versions")
