"""messaging: open and click tracking, quiet hours, frequency caps

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Columns of the delivery log only: open and click events go on the timeline (events), and quiet
    # hours hold a message through its job's run_at, so no new table is needed.
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("send_after", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("tracked", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("first_opened_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("first_clicked_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("first_clicked_at")
        batch.drop_column("first_opened_at")
        batch.drop_column("tracked")
        batch.drop_column("send_after")
