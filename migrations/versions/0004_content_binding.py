"""content binding: the escalation a published question runs is the snapshot taken when it was published

Revision ID: 0004_content_binding
Revises: 0003_maintenance_approval
Create Date: 2026-12-12 10:00:00.000000

`questions.escalation_applied` holds the effective escalation rules (the question's own, else its category's
from the routing map) taken when the update was published, i.e. what its approval covered ({}: none). The
escalation runner reads only this column, so a later edit of the routing map changes nothing for a question
already published.

Questions published before this revision have no snapshot: the upgrade fills it from the data as it is at
upgrade time (their own rules, else their category's now), which is what the runner would have read next.
Drafts stay NULL: their snapshot is taken when they are published.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_content_binding"
down_revision = "0003_maintenance_approval"
branch_labels = None
depends_on = None

_questions = sa.table(
    "questions",
    sa.column("id", sa.Integer()),
    sa.column("update_id", sa.Integer()),
    sa.column("state", sa.String()),
    sa.column("escalation", sa.JSON()),
    sa.column("escalation_applied", sa.JSON()),
)
_updates = sa.table("updates", sa.column("id", sa.Integer()), sa.column("incident_id", sa.Integer()))
_incidents = sa.table("incidents", sa.column("id", sa.Integer()), sa.column("category_id", sa.Integer()))
_categories = sa.table("categories", sa.column("id", sa.Integer()), sa.column("escalation", sa.JSON()))


def upgrade() -> None:
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalation_applied", sa.JSON(), nullable=True))

    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_questions.c.id, _questions.c.escalation, _categories.c.escalation)
        .select_from(
            _questions.join(_updates, _updates.c.id == _questions.c.update_id)
            .join(_incidents, _incidents.c.id == _updates.c.incident_id)
            .join(_categories, _categories.c.id == _incidents.c.category_id)
        )
        .where(_questions.c.state != "draft")
    ).all()
    for qid, own, inherited in rows:
        applied: dict[str, Any] = own if own is not None else (inherited or {})
        conn.execute(sa.update(_questions).where(_questions.c.id == qid).values(escalation_applied=applied))


def downgrade() -> None:
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.drop_column("escalation_applied")
