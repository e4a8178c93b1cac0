"""customer list indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LIVE = sa.text("merged_into IS NULL")
MERGED = sa.text("merged_into IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_profiles_merged_into", table_name="profiles")
    op.create_index(
        "ix_profiles_merged_into", "profiles", ["merged_into"], postgresql_where=MERGED, sqlite_where=MERGED
    )
    op.create_index(
        "ix_profiles_live_last_seen",
        "profiles",
        ["last_seen", "id"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index(
        "ix_profiles_live_owner_last_seen",
        "profiles",
        ["owner_id", "last_seen", "id"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("ix_profiles_live_owner_last_seen", table_name="profiles")
    op.drop_index("ix_profiles_live_last_seen", table_name="profiles")
    op.drop_index("ix_profiles_merged_into", table_name="profiles")
    op.create_index("ix_profiles_merged_into", "profiles", ["merged_into"])
