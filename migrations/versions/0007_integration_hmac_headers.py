"""integrations: the sender's own HMAC signature and timestamp header names

Revision ID: 0007_integration_hmac_headers
Revises: 0006_routing_versions
Create Date: 2026-12-07 12:00:00.000000

Grafana signs in the header named in its contact point's "Header" field (`X-Grafana-Alert-Signature` when blank)
and, when its "Timestamp header" field names one, puts the Unix time in that header and signs
`<timestamp>:<body>`. An HMAC integration may name both (docs/integrations.md). Existing rows get NULL: only the
default header names are read, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_integration_hmac_headers"
down_revision = "0006_routing_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hmac_header", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("hmac_timestamp_header", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("integrations", schema=None) as batch_op:
        batch_op.drop_column("hmac_timestamp_header")
        batch_op.drop_column("hmac_header")
