"""analytics: daily rollups of the events for the dashboards, events by name and time, live profiles by
first sight

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None
COUNTS = (
    "events", "page_views", "screen_views", "app_opens", "emails_sent",
    "emails_opened", "emails_clicked", "messages", "orders",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "rollup_profiles",
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("profile_id", sa.String(32), nullable=True, unique=True),
        sa.Column("live_number", sa.Integer(), nullable=True),
    )
    op.create_index(
        "ix_rollup_profiles_moved",
        "rollup_profiles",
        ["number", "live_number"],
        postgresql_where=sa.text("live_number IS NOT NULL"),
        sqlite_where=sa.text("live_number IS NOT NULL"),
    )
    op.create_table(
        "rollup_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("source_id", sa.Integer(), primary_key=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("revenue", sa.Float(), nullable=False),
        sa.Column("active", sa.LargeBinary(), nullable=False),
        sa.Column("buyers", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "rollup_surveys",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("source_id", sa.Integer(), primary_key=True),
        sa.Column("survey", sa.String(10), primary_key=True),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("satisfied", sa.Integer(), nullable=False),
        sa.Column("promoters", sa.Integer(), nullable=False),
        sa.Column("detractors", sa.Integer(), nullable=False),
    )
    op.create_table(
        "rollup_portraits",
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("columns", JSONType, nullable=False),
        sa.Column("rows", JSONType, nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "rollup_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("through_event_id", sa.BigInteger(), nullable=False),
        sa.Column("seen_event_id", sa.BigInteger(), nullable=False),
        sa.Column("mapped_merges", sa.Integer(), nullable=False),
        sa.Column("mapped_merge_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_events_name_time", "events", ["name", "timestamp"])
    op.create_index(
        "ix_profiles_live_first_seen",
        "profiles",
        ["first_seen"],
        postgresql_where=sa.text("merged_into IS NULL"),
        sqlite_where=sa.text("merged_into IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_profiles_live_first_seen", table_name="profiles")
    op.drop_index("ix_events_name_time", table_name="events")
    op.drop_table("rollup_state")
    op.drop_table("rollup_portraits")
    op.drop_table("rollup_surveys")
    op.drop_table("rollup_days")
    op.drop_table("rollup_profiles")
