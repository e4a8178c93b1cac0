"""analytics: computed scores per customer (CLV, churn risk, recommendations), sentiment per event,
marketing spend per channel and day

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "profile_scores",
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("details", JSONType, nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("profile_id", "name"),
    )
    op.create_index("ix_profile_scores_name_value", "profile_scores", ["name", "value"])
    op.create_table(
        "event_sentiments",
        sa.Column("event_id", BigID, nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("label", sa.String(length=10), nullable=False),
        sa.Column("scored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_event_sentiments_profile", "event_sentiments", ["profile_id"])
    op.create_table(
        "marketing_spend",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "day", "campaign", name="uq_marketing_spend_day"),
    )


def downgrade() -> None:
    op.drop_table("marketing_spend")
    op.drop_index("ix_event_sentiments_profile", table_name="event_sentiments")
    op.drop_table("event_sentiments")
    op.drop_index("ix_profile_scores_name_value", table_name="profile_scores")
    op.drop_table("profile_scores")
