"""search indexes: trigram indexes for "contains" searches on names and phone numbers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:50:00

A name fragment ("ang", "张伟明") or the last digits of a phone number match inside the value, which a
B-tree cannot answer without reading every row. PostgreSQL gets pg_trgm GIN indexes (pg_trgm is a
trusted extension: a database owner may create it without being superuser). SQLite gets FTS5 tables
with the trigram tokenizer (SQLite 3.34+), kept in step with their tables by triggers, so every write
path (ingestion, merges, imports, a future erasure) updates them without knowing they exist.
The names of these objects are in threadline.storage.search_objects, which the schema check skips:
they are not SQLAlchemy models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE = sa.text("merged_into IS NULL")

POSTGRESQL_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_profiles_search_name_trgm ON profiles USING gin (search_name gin_trgm_ops)"
    " WHERE merged_into IS NULL",
    "CREATE INDEX ix_identities_phone_trgm ON identities USING gin (value gin_trgm_ops) WHERE kind = 'phone'",
]
POSTGRESQL_DOWN = [
    "DROP INDEX IF EXISTS ix_identities_phone_trgm",
    "DROP INDEX IF EXISTS ix_profiles_search_name_trgm",
]

# External-content FTS5 tables store only the index; the text stays in profiles / identities. The
# triggers must hand FTS5 exactly the old text of a row it indexed, hence the WHEN clauses.
SQLITE_UP = [
    "CREATE VIRTUAL TABLE profile_name_search USING fts5("
    "search_name, content='profiles', content_rowid='rowid', tokenize='trigram')",
    "INSERT INTO profile_name_search (rowid, search_name)"
    " SELECT rowid, search_name FROM profiles WHERE search_name IS NOT NULL",
    "CREATE TRIGGER profile_name_search_insert AFTER INSERT ON profiles"
    " WHEN new.search_name IS NOT NULL BEGIN"
    " INSERT INTO profile_name_search (rowid, search_name) VALUES (new.rowid, new.search_name); END",
    "CREATE TRIGGER profile_name_search_delete AFTER DELETE ON profiles"
    " WHEN old.search_name IS NOT NULL BEGIN"
    " INSERT INTO profile_name_search (profile_name_search, rowid, search_name)"
    " VALUES ('delete', old.rowid, old.search_name); END",
    # One trigger for both halves of an update: SQLite does not promise an order between two triggers.
    "CREATE TRIGGER profile_name_search_update AFTER UPDATE OF search_name ON profiles"
    " WHEN old.search_name IS NOT new.search_name BEGIN"
    " INSERT INTO profile_name_search (profile_name_search, rowid, search_name)"
    " SELECT 'delete', old.rowid, old.search_name WHERE old.search_name IS NOT NULL;"
    " INSERT INTO profile_name_search (rowid, search_name)"
    " SELECT new.rowid, new.search_name WHERE new.search_name IS NOT NULL; END",
    "CREATE VIRTUAL TABLE phone_search USING fts5("
    "value, content='identities', content_rowid='id', tokenize='trigram')",
    "INSERT INTO phone_search (rowid, value) SELECT id, value FROM identities WHERE kind = 'phone'",
    "CREATE TRIGGER phone_search_insert AFTER INSERT ON identities WHEN new.kind = 'phone' BEGIN"
    " INSERT INTO phone_search (rowid, value) VALUES (new.id, new.value); END",
    "CREATE TRIGGER phone_search_delete AFTER DELETE ON identities WHEN old.kind = 'phone' BEGIN"
    " INSERT INTO phone_search (phone_search, rowid, value) VALUES ('delete', old.id, old.value); END",
    "CREATE TRIGGER phone_search_update AFTER UPDATE OF kind, value ON identities"
    " WHEN old.kind IS NOT new.kind OR old.value IS NOT new.value BEGIN"
    " INSERT INTO phone_search (phone_search, rowid, value)"
    " SELECT 'delete', old.id, old.value WHERE old.kind = 'phone';"
    " INSERT INTO phone_search (rowid, value) SELECT new.id, new.value WHERE new.kind = 'phone'; END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS phone_search_update",
    "DROP TRIGGER IF EXISTS phone_search_delete",
    "DROP TRIGGER IF EXISTS phone_search_insert",
    "DROP TABLE IF EXISTS phone_search",
    "DROP TRIGGER IF EXISTS profile_name_search_update",
    "DROP TRIGGER IF EXISTS profile_name_search_delete",
    "DROP TRIGGER IF EXISTS profile_name_search_insert",
    "DROP TABLE IF EXISTS profile_name_search",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # An ordinary index, in the models: identifiers by prefix with their profile, from the index alone.
    op.create_index("ix_identities_value_profile", "identities", ["value", "kind", "profile_id"])
    # The newest-first list index also carries owner_id (see models.Profile).
    op.drop_index("ix_profiles_live_last_seen", table_name="profiles")
    op.create_index(
        "ix_profiles_live_last_seen",
        "profiles",
        ["last_seen", "id", "owner_id"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    for statement in POSTGRESQL_UP if dialect == "postgresql" else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_identities_value_profile", table_name="identities")
    op.drop_index("ix_profiles_live_last_seen", table_name="profiles")
    op.create_index(
        "ix_profiles_live_last_seen",
        "profiles",
        ["last_seen", "id"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    for statement in POSTGRESQL_DOWN if dialect == "postgresql" else SQLITE_DOWN:
        op.execute(statement)
