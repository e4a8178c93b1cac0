"""Fixtures: every storage test runs on SQLite and, when THREADLINE_TEST_DATABASE_URL is set, PostgreSQL.

Servers are real: `server` runs uvicorn on a free loopback port in a thread, and tests talk HTTP to it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from threadline.app import create_app
from threadline.clock import Clock, utcnow
from threadline.config import Settings
from threadline.storage import Database, upgrade
from threadline.storage.append_only import create_guards, drop_guards
from threadline.storage.migrate import alembic_config
from threadline.storage.models import Base

PG_URL = os.environ.get("THREADLINE_TEST_DATABASE_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


def _reset_postgres(url: str) -> None:
    from alembic import command

    db = Database(url)
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.dispose()
    command.upgrade(alembic_config(url), "head")


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'threadline.db'}"
        upgrade(url)
        return url
    assert PG_URL
    _reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, default_region="US", secret_key="test-secret-key-not-for-production"
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as conn:
        if database.dialect == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            # The audit log refuses deletes (storage/append_only.py): lift the guard for the reset only.
            drop_guards(conn)
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
            create_guards(conn)
    yield database
    database.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, settings: Settings, db: Database, clock: Clock = utcnow) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings, db=db, clock=clock),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    with LiveServer(settings, db) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def data_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "shared" / "data"
