"""Reading JSON columns in SQL on both databases: the one place where SQLite and PostgreSQL differ.

SQLite reads with `json_extract` / `json_type` and a path (`$."plan"`); PostgreSQL with `->`, `->>` and
`jsonb_typeof`. A number is compared only when the stored value is a JSON number: PostgreSQL's cast of
"12 EUR" would fail the whole query, and SQLite's would read it as 12. Keys are written into the SQL as
literals (validated by definitions.py to hold no quote or control character): psycopg binds on the server,
where `traits ->> $1` is ambiguous between the text and the integer operator.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, String, and_, case, cast, exists, func, literal_column, null, select
from sqlalchemy.sql.elements import ColumnElement

POSTGRESQL = "postgresql"


def _quoted(text: str) -> Any:
    return literal_column("'" + text.replace("'", "''") + "'")


def _path(key: str) -> Any:
    return _quoted(f'$."{key}"')


def json_type(dialect: str, column: Any, key: str) -> ColumnElement[str]:
    """The JSON type of column[key] in PostgreSQL's words (string, number, boolean, null, object, array),
    NULL when absent."""
    if dialect == POSTGRESQL:
        return func.jsonb_typeof(column.op("->")(_quoted(key)))
    sqlite_type = func.json_type(column, _path(key))
    return case(
        (sqlite_type.in_([_quoted("integer"), _quoted("real")]), _quoted("number")),
        (sqlite_type == _quoted("text"), _quoted("string")),
        (sqlite_type.in_([_quoted("true"), _quoted("false")]), _quoted("boolean")),
        else_=sqlite_type,
    )


def has_value(dialect: str, column: Any, key: str) -> ColumnElement[bool]:
    """column has `key` with a value other than JSON null."""
    kind = json_type(dialect, column, key)
    return and_(kind.is_not(None), kind != _quoted("null"))


def text_at(dialect: str, column: Any, key: str) -> ColumnElement[str]:
    """column[key] as text (a number as its digits), NULL when absent or JSON null."""
    if dialect == POSTGRESQL:
        return column.op("->>", return_type=String)(_quoted(key))  # type: ignore[no-any-return]
    return cast(func.json_extract(column, _path(key)), String)


def string_at(dialect: str, column: Any, key: str) -> ColumnElement[str]:
    """column[key] when it is a JSON string, else NULL: "eq 5" on a string trait is not "eq 5" on 5."""
    return case(
        (json_type(dialect, column, key) == _quoted("string"), text_at(dialect, column, key)), else_=null()
    )


def number_at(dialect: str, column: Any, key: str) -> ColumnElement[float]:
    """column[key] when it is a JSON number, else NULL."""
    if dialect == POSTGRESQL:
        value = cast(column.op("->>", return_type=String)(_quoted(key)), Float)
    else:
        value = cast(func.json_extract(column, _path(key)), Float)
    return case((json_type(dialect, column, key) == _quoted("number"), value), else_=null())


def boolean_is(dialect: str, column: Any, key: str, wanted: bool) -> ColumnElement[bool]:
    """column[key] is the JSON boolean `wanted`."""
    if dialect == POSTGRESQL:
        is_bool = func.jsonb_typeof(column.op("->")(_quoted(key))) == _quoted("boolean")
        return and_(
            is_bool,
            column.op("->>", return_type=String)(_quoted(key)) == _quoted("true" if wanted else "false"),
        )
    return func.json_type(column, _path(key)) == _quoted("true" if wanted else "false")  # type: ignore[no-any-return]


def has_key(dialect: str, column: Any, key: str) -> ColumnElement[bool]:
    """A JSON object column has `key` (a profile's channels: has it been seen on "app")."""
    if dialect == POSTGRESQL:
        return column.op("?", is_comparison=True)(_quoted(key))  # type: ignore[no-any-return]
    return func.json_type(column, _path(key)).is_not(None)


def list_holds(dialect: str, column: Any, value: str) -> ColumnElement[bool]:
    """A JSON list column (a profile's tags) holds the string `value`."""
    if dialect == POSTGRESQL:
        return column.op("@>", is_comparison=True)(func.jsonb_build_array(cast(value, String)))  # type: ignore[no-any-return]
    each = func.json_each(column).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == value))
