"""incidents: when the title last changed (feed entries carry it: their <updated> moves with it)

Revision ID: 0010_incident_title_changed_at
Revises: 0009_cap_messages
Create Date: 2026-12-07 12:15:00.000000

Existing incidents get NULL: their entries keep their publication time as <updated> until the title changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.models.base

revision = "0010_incident_title_changed_at"
down_revision = "0009_cap_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("title_changed_at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("title_changed_at")
