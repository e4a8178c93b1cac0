"""analytics: who did each named event when, by day and channel, for funnels from the rollups; new
customers by day of first sight and channel, for CAC and channel-filtered customer counts

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_event_times",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("numbers", sa.LargeBinary(), nullable=False),
        sa.Column("times", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "rollup_first_seen",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("acquired", sa.Integer(), nullable=False),
        sa.Column("clv_sum", sa.Float(), nullable=False),
        sa.Column("clv_customers", sa.Integer(), nullable=False),
        sa.Column("seen_on", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
    )
    # The rollups so far hold no event times: read every event again (the next worker run, or
    # `threadline analytics rollups`), as `--rebuild` would.
    op.execute("DELETE FROM rollup_days")
    op.execute("DELETE FROM rollup_surveys")
    op.execute("DELETE FROM rollup_profiles")
    op.execute("DELETE FROM rollup_state")


def downgrade() -> None:
    op.drop_table("rollup_first_seen")
    op.drop_table("rollup_event_times")
