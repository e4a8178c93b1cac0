"""merge lineage: explicit merges (steward, resolver) and unmerges

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:00:00

Rows written before this revision have no snapshot: identity/unmerge.py treats every row that moved
with such a merge by its original_profile_id alone (see docs/identity.md, "Unmerge").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("merges") as batch:
        batch.add_column(sa.Column("actor_user_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("rule", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("match_probability", sa.Float(), nullable=True))
        batch.add_column(sa.Column("evidence", JSON, nullable=True))
        batch.add_column(sa.Column("snapshot", JSON, nullable=True))
        batch.add_column(sa.Column("unmerged_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("unmerged_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("unmerge_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("merges") as batch:
        for name in (
            "unmerge_reason",
            "unmerged_by",
            "unmerged_at",
            "snapshot",
            "evidence",
            "match_probability",
            "rule",
            "actor_user_id",
        ):
            batch.drop_column(name)
