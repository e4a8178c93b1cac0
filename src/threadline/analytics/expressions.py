"""SQL that differs between SQLite and PostgreSQL: a timestamp's day and month, JSON numbers and text.

Every key and format is written into the SQL as a literal, never bound: PostgreSQL (psycopg binds on the
server) would see `GROUP BY to_char(t, $2)` as a different expression from the selected
`to_char(t, $1)` and refuse the query. Keys come from this package's code, never from a request, and are
checked to be plain names all the same.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Float, Integer, String, case, cast, func, literal_column, null
from sqlalchemy.sql.elements import ColumnElement

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")


def _quoted(text: str) -> Any:
    return literal_column("'" + text.replace("'", "''") + "'")


def _key(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError(f"not a plain JSON key: {key!r}")
    return key


def month_of(dialect: str, column: Any) -> ColumnElement[str]:
    """'2024-03': the calendar month (UTC) of a timestamp."""
    if dialect == "postgresql":
        return func.to_char(column, _quoted("YYYY-MM"))
    return func.strftime(_quoted("%Y-%m"), column)


def day_of(dialect: str, column: Any) -> ColumnElement[str]:
    """'2024-03-05': the calendar day (UTC) of a timestamp, as text (it joins other text in keys)."""
    if dialect == "postgresql":
        return func.to_char(column, _quoted("YYYY-MM-DD"))
    return func.strftime(_quoted("%Y-%m-%d"), column)


def month_number(dialect: str, column: Any) -> ColumnElement[int]:
    """Months since year 0 (year * 12 + month), so that months apart is a subtraction."""
    if dialect == "postgresql":
        year = cast(func.date_part(_quoted("year"), column), Integer)
        month = cast(func.date_part(_quoted("month"), column), Integer)
    else:
        year = cast(func.strftime(_quoted("%Y"), column), Integer)
        month = cast(func.strftime(_quoted("%m"), column), Integer)
    return year * 12 + month


def json_number(dialect: str, column: Any, key: str) -> ColumnElement[float]:
    """column[key] when it is a JSON number, else NULL: "12.50" as text or a typo counts as missing
    rather than failing the whole query (PostgreSQL's cast would)."""
    key = _key(key)
    if dialect == "postgresql":
        is_number = func.jsonb_typeof(column.op("->")(_quoted(key))) == _quoted("number")
        value = cast(column.op("->>")(_quoted(key)), Float)
    else:
        path = _quoted(f"$.{key}")
        is_number = func.json_type(column, path).in_([_quoted("integer"), _quoted("real")])
        value = cast(func.json_extract(column, path), Float)
    return case((is_number, value), else_=null())


def json_text(dialect: str, column: Any, key: str) -> ColumnElement[str]:
    """column[key] as text (numbers too), NULL when absent or JSON null."""
    key = _key(key)
    if dialect == "postgresql":
        return column.op("->>")(_quoted(key))  # type: ignore[no-any-return]
    return cast(func.json_extract(column, _quoted(f"$.{key}")), String)


def has_key(dialect: str, column: Any, key: str) -> ColumnElement[bool]:
    """Whether a JSON object column has `key` (a profile's channels: has it been seen on "app")."""
    if dialect == "postgresql":
        return column.op("?")(_quoted(key))  # type: ignore[no-any-return]
    return func.json_type(column, _quoted(f'$."{key}"')).is_not(None)


def days_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    """Days from `earlier` to `later`, with fractions."""
    if dialect == "postgresql":
        return func.date_part(_quoted("epoch"), later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def unindexed(dialect: str, column: Any) -> Any:
    """`column` as SQLite's planner cannot use an index on (coalesce(c, c) is the same value), for a
    condition that must not lead the plan: SQLite would rather skip-scan ix_events_name_time over a whole
    date range than read a few events by id (the rollups' tail) or through a small table (scored events).
    PostgreSQL plans these well: unchanged there."""
    return func.coalesce(column, column) if dialect == "sqlite" else column
