"""Sources: one per channel feed, each with its own write key."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from threadline.config import CHANNELS
from threadline.errors import Conflict, Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import Source


@dataclass(frozen=True, slots=True)
class SourceInfo:
    id: int
    name: str
    channel: str
    write_key: str
    created_at: datetime
    revoked: bool = False


def _info(row: Source) -> SourceInfo:
    return SourceInfo(
        row.id, row.name, row.channel, row.write_key, row.created_at, row.revoked_at is not None
    )


def create_source(db: Database, name: str, channel: str, *, now: datetime) -> SourceInfo:
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("name: must be 1 to 100 characters", details={"field": "name"})
    if channel not in CHANNELS:
        raise Invalid(f"channel: must be one of {', '.join(CHANNELS)}", details={"field": "channel"})
    with db.write() as session:
        if session.scalar(select(Source.id).where(Source.name == name)) is not None:
            raise Conflict(f"name: a source called {name!r} already exists", details={"field": "name"})
        row = Source(name=name, channel=channel, write_key=secrets.token_urlsafe(24), created_at=now)
        session.add(row)
        session.flush()
        return _info(row)


def list_sources(db: Database) -> list[SourceInfo]:
    with db.read() as session:
        return [_info(row) for row in session.scalars(select(Source).order_by(Source.name))]


def get_source(db: Database, name: str) -> SourceInfo:
    with db.read() as session:
        row = session.scalar(select(Source).where(Source.name == name))
    if row is None:
        raise NotFound(f"source {name!r} does not exist; create it with `threadline sources create`")
    return _info(row)


class WriteKeys:
    """Write key -> source, cached briefly: every ingestion request needs it, revocations are rare."""

    def __init__(self, db: Database, ttl_seconds: float = 5.0) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, SourceInfo | None]] = {}

    def lookup(self, write_key: str) -> SourceInfo | None:
        hit = self._cache.get(write_key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        with self.db.read() as session:
            row = session.scalar(select(Source).where(Source.write_key == write_key))
        info = _info(row) if row is not None and row.revoked_at is None else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[write_key] = (now, info)
        return info
