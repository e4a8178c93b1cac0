"""Database triggers that make the audit log append-only, whatever connects to the database.

The app never updates or deletes an audit entry; these triggers make that true for any SQL that reaches
the database too (a bug, a console session), on both databases. Created by migration 0010. An operator
who must drop old entries does it as the database owner, dropping the trigger first (docs/privacy.md).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

GUARDED_TABLE = "audit_log"
_MESSAGE = "audit_log is append-only"


def create_guards(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION threadline_append_only() RETURNS trigger AS $$ "
                f"BEGIN RAISE EXCEPTION '{_MESSAGE}'; END; $$ LANGUAGE plpgsql"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER {GUARDED_TABLE}_append_only BEFORE UPDATE OR DELETE ON {GUARDED_TABLE} "
                "FOR EACH ROW EXECUTE FUNCTION threadline_append_only()"
            )
        )
        return
    for verb in ("update", "delete"):
        conn.execute(
            text(
                f"CREATE TRIGGER {GUARDED_TABLE}_no_{verb} BEFORE {verb.upper()} ON {GUARDED_TABLE} "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )
        )


def drop_guards(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"DROP TRIGGER IF EXISTS {GUARDED_TABLE}_append_only ON {GUARDED_TABLE}"))
        conn.execute(text("DROP FUNCTION IF EXISTS threadline_append_only()"))
        return
    for verb in ("update", "delete"):
        conn.execute(text(f"DROP TRIGGER IF EXISTS {GUARDED_TABLE}_no_{verb}"))
