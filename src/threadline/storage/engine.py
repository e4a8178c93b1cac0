"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode. Writers open their transaction with BEGIN IMMEDIATE so that two writers (two
requests, two worker processes) queue on the database lock instead of failing half-way with SQLITE_BUSY;
readers keep plain deferred transactions and never block writers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from threadline.config import get_settings


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_loads(value: Any) -> Any:
    # SQLite gives a column declared JSON numeric affinity, so a JSON number ("418.63") comes back as a
    # REAL or INTEGER, not as text: it is already the decoded value.
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


def normalise_url(url: str) -> str:
    """Accept the plain `postgresql://` spelling too and run it on psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def build_engine(url: str | None = None, *, synchronous: str | None = None) -> Engine:
    settings = get_settings()
    url = normalise_url(url or settings.database_url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=_json_loads,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        _configure_sqlite(engine, synchronous or settings.sqlite_synchronous)
    else:
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            pool_size=10,
            max_overflow=20,
            pool_pre_ping=True,
        )
        _configure_postgres(engine)
    return engine


def _configure_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # psycopg prepares a statement after a few runs; a generic plan made while a table was small
        # (a fresh database, autovacuum off) would be kept as the table grows. Plan each execution.
        # A SET rather than libpq `options`, so that options given in the URL still apply.
        dbapi_connection.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_connection.commit()


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN cannot be IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The engine plus the two kinds of session Threadline uses: read and write."""

    def __init__(self, url: str | None = None, *, synchronous: str | None = None) -> None:
        self.engine = build_engine(url, synchronous=synchronous)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Threads of this process queue here, in order, instead of
        # sleep-polling on the file lock (busy_timeout), which under load costs more than the writes.
        self._sqlite_writer = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if is_sqlite(self.engine):
            with self._sqlite_writer:
                connection = self.engine.connect().execution_options(sqlite_begin="IMMEDIATE")
                try:
                    with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                        yield session
                finally:
                    connection.close()
        else:
            with self._sessions() as session, session.begin():
                yield session

    def dispose(self) -> None:
        self.engine.dispose()
