"""Fast multi-row inserts for the ingestion hot path.

SQLAlchemy's per-row parameter processing costs more than the insert itself at tens of thousands of
rows a second. Here each column's value is prepared once, the way SQLAlchemy would store it, and the
rows go to the driver in one call: `executemany` on SQLite, `COPY ... FROM STDIN` on PostgreSQL.
Reads through SQLAlchemy see exactly what they would have written (tests/test_bulk.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Connection, DateTime, Table
from sqlalchemy.exc import DBAPIError

from threadline.storage.models import Base

Prepare = Callable[[Any], Any]


def _json_text(value: Any) -> Any:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_datetime(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME storage format: always six digits of microseconds, so that
    # equality and ordering on the text match values SQLAlchemy binds in queries.
    return None if value is None else value.isoformat(sep=" ", timespec="microseconds")


def _preparers(table: Table, columns: Sequence[str], dialect: str) -> list[Prepare | None]:
    preparers: list[Prepare | None] = []
    for name in columns:
        kind = table.c[name].type
        if isinstance(kind, JSON):  # JSONType is JSON with a JSONB variant on PostgreSQL
            preparers.append(_json_text)
        elif isinstance(kind, DateTime) and dialect == "sqlite":
            preparers.append(_sqlite_datetime)
        else:
            preparers.append(None)
    return preparers


def insert_rows(connection: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `model`'s table within the connection's transaction."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    columns = list(rows[0])
    dialect = connection.dialect.name
    preparers = _preparers(table, columns, dialect)
    values = [
        tuple(prep(row[name]) if prep else row[name] for name, prep in zip(columns, preparers, strict=True))
        for row in rows
    ]
    names = ", ".join(columns)
    raw = connection.connection.driver_connection
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        if dialect == "postgresql":
            copy_sql = f"COPY {table.name} ({names}) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:  # type: ignore[union-attr]
                for value in values:
                    copy.write_row(value)
        else:
            marks = ", ".join("?" for _ in columns)
            cursor = raw.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", values)
            finally:
                cursor.close()
    except dbapi_error as error:
        # Raise what SQLAlchemy would (IntegrityError, OperationalError...), so callers that retry a
        # deadlock or report a constraint see the same exceptions on both paths.
        raise DBAPIError.instance(f"bulk insert into {table.name}", None, error, dbapi_error) from error
