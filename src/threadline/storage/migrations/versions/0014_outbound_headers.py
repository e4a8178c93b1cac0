"""messaging: threading headers of an outbound message (a service reply's In-Reply-To and References)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Kept on the row, not in the job's payload: the worker builds the email from the row, so a retry
    # (or a later sweep that queues forgotten rows) sends the same headers.
    op.add_column("outbound_messages", sa.Column("headers", JSONType, nullable=True))


def downgrade() -> None:
    op.drop_column("outbound_messages", "headers")
