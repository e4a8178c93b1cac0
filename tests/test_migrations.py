"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.factories import lookup_profile, profile_view, trait_history
from threadline.storage import Database, is_search_object, upgrade
from threadline.storage.models import Base


def test_models_and_migrations_agree(db: Database) -> None:
    with db.engine.connect() as connection:
        # The trigram search indexes are made by hand in migration 0004 (no portable model for them).
        context = MigrationContext.configure(
            connection, opts={"include_name": lambda name, type_, parent: not is_search_object(name)}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrading_a_database_that_has_data(tmp_path: Path) -> None:
    """A laptop's SQLite file from the first release migrates with its customers in it."""
    from alembic import command

    from threadline.storage.migrate import alembic_config

    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    command.upgrade(alembic_config(url), "0001")
    # Rows as release 0001 wrote them (today's code writes columns 0001 does not have).
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("INSERT INTO sources VALUES (1, 'web', 'web', 'k', '2026-01-01 00:00:00.000000', NULL)")
        raw.execute(
            "INSERT INTO profiles (id, created_at, first_seen, last_seen, event_count, traits, trait_meta,"
            " channels)"
            " VALUES ('p1', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000',"
            " '2026-01-01 00:00:00.000000', 1, '{\"ltv\": 418.63}', '{}', '{}')"
        )
        raw.execute(
            "INSERT INTO identities (kind, value, profile_id, original_profile_id, source_id, first_seen)"
            " VALUES ('user_id', 'u1', 'p1', 'p1', 1, '2026-01-01 00:00:00.000000')"
        )
        raw.execute(
            "INSERT INTO trait_history (profile_id, original_profile_id, key, value, source_id, observed_at,"
            " message_id) VALUES ('p1', 'p1', 'ltv', '418.63', 1, '2026-01-01 00:00:00.000000', 'm1')"
        )
    upgrade(url)
    db = Database(url)
    try:
        assert lookup_profile(db, "user_id", "u1") == "p1"
        assert profile_view(db, "p1")["traits"] == {"ltv": 418.63}
        # SQLite stores a JSON number in a JSON column as a REAL: it must still read back.
        assert trait_history(db, "p1")[0]["value"] == 418.63
    finally:
        db.dispose()
