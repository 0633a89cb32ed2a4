"""send hold: a live broadcast is not planned (nothing reaches a provider) before `broadcasts.not_before`

Revision ID: 0011_send_hold
Revises: 0010_incident_title_changed_at
Create Date: 2026-12-07 12:00:00.000000

Broadcasts that exist before this revision get no hold (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.models.base

revision = "0011_send_hold"
down_revision = "0010_incident_title_changed_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_before", broadcaster.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("not_before")
