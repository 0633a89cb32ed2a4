"""approval notices: staff notification preferences, who was told of each approval request, escalations

Revision ID: 0008_approval_notify
Revises: 0007_integration_hmac_headers
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.models.base

revision = "0008_approval_notify"
down_revision = "0007_integration_hmac_headers"
branch_labels = None
depends_on = None

_BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notification_prefs",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("sms", sa.String(length=32), nullable=True),
        sa.Column("webhook", sa.String(length=500), nullable=True),
        sa.Column("updated_at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notification_prefs_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_prefs")),
    )
    op.create_table(
        "approval_notices",
        sa.Column("id", _BIG, nullable=False),
        sa.Column("request_id", _BIG, nullable=False),
        sa.Column("update_id", _BIG, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.String(length=16), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_approval_notices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_notices")),
        sa.UniqueConstraint(
            "request_id", "round", "user_id", name=op.f("uq_approval_notices_request_id_round_user_id")
        ),
    )
    with op.batch_alter_table("approval_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_notices_update_id"), ["update_id"], unique=False)
    op.create_table(
        "approval_escalations",
        sa.Column("request_id", _BIG, autoincrement=False, nullable=False),
        sa.Column("update_id", _BIG, nullable=False),
        sa.Column("at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("to", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_approval_escalations")),
    )
    with op.batch_alter_table("approval_escalations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_escalations_update_id"), ["update_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("approval_escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_escalations_update_id"))
    op.drop_table("approval_escalations")
    with op.batch_alter_table("approval_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_notices_update_id"))
    op.drop_table("approval_notices")
    op.drop_table("notification_prefs")
