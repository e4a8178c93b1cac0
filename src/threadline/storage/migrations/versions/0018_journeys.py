"""journeys, their enrollments and the step log

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=True),
        sa.Column("trigger", JSONType, nullable=False),
        sa.Column("steps", JSONType, nullable=False),
        sa.Column("exit_goal", JSONType, nullable=True),
        sa.Column("reentry", sa.String(length=10), nullable=False),
        sa.Column("reentry_days", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "journey_enrollments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("journey_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("entry_key", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(length=40), nullable=True),
        sa.Column("step_started_at", sa.DateTime(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(), nullable=True),
        sa.Column("context", JSONType, nullable=False),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["journey_id"], ["journeys.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("journey_id", "profile_id", "entry_key", name="uq_journey_enrollments_entry"),
    )
    op.create_index("ix_journey_enrollments_due", "journey_enrollments", ["status", "next_run_at"])
    op.create_index("ix_journey_enrollments_profile", "journey_enrollments", ["profile_id"])
    op.create_table(
        "journey_step_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("step_key", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("outbound_message_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["enrollment_id"], ["journey_enrollments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrollment_id", "step_key", name="uq_journey_step_log_step"),
    )


def downgrade() -> None:
    op.drop_table("journey_step_log")
    op.drop_index("ix_journey_enrollments_profile", table_name="journey_enrollments")
    op.drop_index("ix_journey_enrollments_due", table_name="journey_enrollments")
    op.drop_table("journey_enrollments")
    op.drop_table("journeys")
