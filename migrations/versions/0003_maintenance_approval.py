"""maintenance approval: a window's schedule of notices is approved once (issue 19)

Revision ID: 0003_maintenance_approval
Revises: 0002_role_grants
Create Date: 2026-12-10 12:00:00.000000

Windows planned before this revision get no decision (`approval_state` NULL): the maintenance runner has the
gate decide the first time it sees one of them, before it sends anything.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.models.base

revision = "0003_maintenance_approval"
down_revision = "0002_role_grants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("maintenance_windows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approval_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("approval_reason", sa.String(length=300), server_default="", nullable=False))
        batch_op.add_column(sa.Column("approval_etag", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("approval_requested_by", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("approval_requested_at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("approval_decided_by", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("approval_decided_at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("approval_comment", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("approval_voided", sa.String(length=500), server_default="", nullable=False))

    with op.batch_alter_table("maintenance_notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approved_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("waiting_reason", sa.String(length=300), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("maintenance_notices", schema=None) as batch_op:
        batch_op.drop_column("waiting_reason")
        batch_op.drop_column("approved_digest")

    with op.batch_alter_table("maintenance_windows", schema=None) as batch_op:
        batch_op.drop_column("approval_voided")
        batch_op.drop_column("approval_comment")
        batch_op.drop_column("approval_decided_at")
        batch_op.drop_column("approval_decided_by")
        batch_op.drop_column("approval_requested_at")
        batch_op.drop_column("approval_requested_by")
        batch_op.drop_column("approval_etag")
        batch_op.drop_column("approval_reason")
        batch_op.drop_column("approval_state")
