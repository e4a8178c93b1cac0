"""identity prefix search: pattern ops on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 15:00:00

PostgreSQL turns `value LIKE 'amar%'` into an index range only for the C collation or an index with
pattern ops; with the range written out by hand its row estimate was off by thousands, so it fetched
every identity row instead of reading the covering index. SQLite keeps the index as it is.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_identities_value_profile", table_name="identities")
    op.create_index(
        "ix_identities_value_profile",
        "identities",
        ["value", "kind", "profile_id"],
        postgresql_ops={"value": "varchar_pattern_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_identities_value_profile", table_name="identities")
    op.create_index("ix_identities_value_profile", "identities", ["value", "kind", "profile_id"])
