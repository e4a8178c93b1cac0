"""contact plans, their audience members and contact cards

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("goal", sa.Text(), nullable=False),
        sa.Column("audience_type", sa.String(length=10), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("method", sa.String(length=200), nullable=True),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("incentive", sa.String(length=500), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("lessons", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "contact_plan_members",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["contact_plans.id"]),
        sa.PrimaryKeyConstraint("plan_id", "profile_id"),
    )
    op.create_index("ix_contact_plan_members_profile", "contact_plan_members", ["profile_id"])
    op.create_table(
        "contact_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("contacted_at", sa.DateTime(), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column("effective", sa.Boolean(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("feedback", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["contact_plans.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contact_cards_plan", "contact_cards", ["plan_id", "contacted_at"])
    op.create_index("ix_contact_cards_profile", "contact_cards", ["profile_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_cards_profile", table_name="contact_cards")
    op.drop_index("ix_contact_cards_plan", table_name="contact_cards")
    op.drop_table("contact_cards")
    op.drop_index("ix_contact_plan_members_profile", table_name="contact_plan_members")
    op.drop_table("contact_plan_members")
    op.drop_table("contact_plans")
