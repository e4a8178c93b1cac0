"""events: an index by customer, event name and time, for segments' and journeys' per-customer event reads

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 03:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_profile_name_time", "events", ["profile_id", "name", "timestamp"])


def downgrade() -> None:
    op.drop_index("ix_events_profile_name_time", table_name="events")
