"""Search index objects the migrations create by hand (migration 0004), outside the SQLAlchemy models.

Trigram indexes cannot be declared portably: PostgreSQL has pg_trgm GIN indexes, SQLite has FTS5 virtual
tables (and their shadow tables). Schema comparisons (tests/test_migrations.py, Alembic autogenerate in
migrations/env.py) skip these names; threadline.profiles.search queries them.

On SQLite, triggers keep the FTS5 tables in step with profiles and identities. A later migration that
rebuilds either table in Alembic's batch mode (copy, drop, rename) drops those triggers and renumbers
profiles' rowids: it must drop and re-create the search objects the way migration 0004 does.
"""

from __future__ import annotations

PROFILE_NAME_FTS = "profile_name_search"  # SQLite: FTS5 over profiles.search_name, rowid = profiles.rowid
PHONE_FTS = "phone_search"  # SQLite: FTS5 over identities.value of kind phone, rowid = identities.id
POSTGRESQL_INDEXES = frozenset({"ix_profiles_search_name_trgm", "ix_identities_phone_trgm"})


def is_search_object(name: str | None) -> bool:
    """Whether a table or index name belongs to the hand-made search indexes (FTS5 shadow tables too)."""
    if name is None:
        return False
    return name in POSTGRESQL_INDEXES or any(
        name == fts or name.startswith(fts + "_") for fts in (PROFILE_NAME_FTS, PHONE_FTS)
    )
