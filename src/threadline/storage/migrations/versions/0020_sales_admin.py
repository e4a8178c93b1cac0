"""sales: follow-up attachments

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follow_up_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("follow_up_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=True),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=150), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["follow_up_id"], ["follow_ups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_follow_up_files_follow_up", "follow_up_files", ["follow_up_id"])
    op.create_index("ix_follow_up_files_profile_id", "follow_up_files", ["profile_id"])


def downgrade() -> None:
    op.drop_index("ix_follow_up_files_profile_id", table_name="follow_up_files")
    op.drop_index("ix_follow_up_files_follow_up", table_name="follow_up_files")
    op.drop_table("follow_up_files")
