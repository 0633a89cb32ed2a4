"""cap messages: every CAP 1.2 document as first emitted, served byte for byte ever after

Revision ID: 0009_cap_messages
Revises: 0008_approval_notify
Create Date: 2026-12-07 12:00:00.000000

Alerts published before this revision get their row the first time they are served (same identifier and sent
as before: `<host>.update.<id>` and the publish time).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import broadcaster.models.base

revision = "0009_cap_messages"
down_revision = "0008_approval_notify"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cap_messages",
        sa.Column("id", _ID, nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("sent", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("references", sa.Text(), nullable=False),
        sa.Column("incident_id", _ID, nullable=False),
        sa.Column("update_id", _ID, nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("xml", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", broadcaster.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_cap_messages_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["update_id"], ["updates.id"], name=op.f("fk_cap_messages_update_id_updates"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cap_messages")),
        sa.UniqueConstraint("identifier", name=op.f("uq_cap_messages_identifier")),
    )
    with op.batch_alter_table("cap_messages", schema=None) as batch_op:
        batch_op.create_index("ix_cap_messages_incident", ["incident_id", "status", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cap_messages_update_id"), ["update_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cap_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cap_messages_update_id"))
        batch_op.drop_index("ix_cap_messages_incident")
    op.drop_table("cap_messages")
