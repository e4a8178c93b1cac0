"""Sources: one per channel feed, each with its own write key."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, cast, func, select
from sqlalchemy.exc import IntegrityError

from threadline.config import CHANNELS
from threadline.errors import Conflict, Invalid, NotFound
from threadline.ingest.quarantine import QuarantineEntry
from threadline.storage import Database
from threadline.storage.models import Event, QuarantinedMessage, Source


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
    if "/" in name:
        # The name is a path segment of the source's page (/sources/{name}) and REST calls.
        raise Invalid("name: may not contain '/'", details={"field": "name"})
    if channel not in CHANNELS:
        raise Invalid(f"channel: must be one of {', '.join(CHANNELS)}", details={"field": "channel"})
    with db.write() as session:
        if session.scalar(select(Source.id).where(Source.name == name)) is not None:
            raise Conflict(f"name: a source called {name!r} already exists", details={"field": "name"})
        row = Source(name=name, channel=channel, write_key=secrets.token_urlsafe(24), created_at=now)
        session.add(row)
        session.flush()
        return _info(row)


def internal_source(db: Database, name: str, *, now: datetime, channel: str = "other") -> SourceInfo:
    """A source for what Threadline itself writes through the write path (e.g. a correction asked for
    in a privacy request), made on first use. Revoked from birth: its write key opens nothing. Its
    `channel` is the channel its events show on the timeline (messaging's are "email")."""
    if channel not in CHANNELS:
        raise Invalid(f"channel: must be one of {', '.join(CHANNELS)}", details={"field": "channel"})
    try:
        with db.write() as session:
            row = session.scalar(select(Source).where(Source.name == name))
            if row is None:
                key = secrets.token_urlsafe(24)
                row = Source(name=name, channel=channel, write_key=key, created_at=now, revoked_at=now)
                session.add(row)
                session.flush()
            return _info(row)
    except IntegrityError:
        # Two first uses at once (concurrent webhooks on a fresh database): the other one made it.
        with db.read() as session:
            row = session.scalar(select(Source).where(Source.name == name))
            if row is None:
                raise
            return _info(row)


def list_sources(db: Database) -> list[SourceInfo]:
    with db.read() as session:
        return [_info(row) for row in session.scalars(select(Source).order_by(Source.name))]


def get_source(db: Database, name: str) -> SourceInfo:
    with db.read() as session:
        row = session.scalar(select(Source).where(Source.name == name))
    if row is None:
        raise _missing(name)
    return _info(row)


def _missing(name: str) -> NotFound:
    return NotFound(f"source {name!r} does not exist; create it with `threadline sources create`")


def _change(db: Database, name: str, change: Callable[[Source], None]) -> tuple[SourceInfo, SourceInfo]:
    """Apply `change` to the source in one transaction; answers the source before and after."""
    with db.write() as session:
        row = session.scalar(select(Source).where(Source.name == name).with_for_update())
        if row is None:
            raise _missing(name)
        before = _info(row)
        change(row)
        session.flush()
        return before, _info(row)


def rotate_write_key(db: Database, name: str) -> tuple[SourceInfo, str]:
    """Give the source a new write key; answers the source and its old key, which stops working.

    Callers holding a `WriteKeys` cache must `forget` the old key (the web and REST handlers do);
    other processes stop accepting it within their cache's TTL.
    """

    def rotate(row: Source) -> None:
        row.write_key = secrets.token_urlsafe(24)

    before, after = _change(db, name, rotate)
    return after, before.write_key


def revoke_source(db: Database, name: str, *, now: datetime) -> SourceInfo:
    """Refuse the source's write key from now on; its events and quarantine stay."""

    def revoke(row: Source) -> None:
        row.revoked_at = row.revoked_at or now  # revoking twice keeps the first time

    return _change(db, name, revoke)[1]


def activate_source(db: Database, name: str) -> SourceInfo:
    """Accept a revoked source's write key again (the same key: senders need no change)."""

    def activate(row: Source) -> None:
        row.revoked_at = None

    return _change(db, name, activate)[1]


@dataclass(frozen=True, slots=True)
class SourceActivity:
    source: SourceInfo
    days: list[tuple[date, int]]  # oldest first, one entry per day, zero-filled
    total: int
    last_event_at: datetime | None
    quarantined: int


def source_activity(db: Database, *, days: int = 14, now: datetime) -> list[SourceActivity]:
    """Per source: events received per UTC day over the last `days` days, total, last, quarantined.

    Three grouped queries whatever the number of sources. Without an index on events (source_id,
    received_at) the two on events read the whole table; see docs/sources.md for the figures.
    """
    days = min(max(days, 1), 90)
    first = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time())
    # SQLite's date() answers 'YYYY-MM-DD' text; PostgreSQL casts the timestamp to a date.
    day = func.date(Event.received_at) if db.dialect == "sqlite" else cast(Event.received_at, Date)
    with db.read() as session:
        sources = [_info(row) for row in session.scalars(select(Source).order_by(Source.name))]
        per_day = session.execute(
            select(Event.source_id, day, func.count())
            .where(Event.received_at >= since)
            .group_by(Event.source_id, day)
        ).all()
        totals = {
            source_id: (int(count), last)
            for source_id, count, last in session.execute(
                select(Event.source_id, func.count(), func.max(Event.received_at)).group_by(Event.source_id)
            )
        }
        quarantined = {
            source_id: int(count)
            for source_id, count in session.execute(
                select(QuarantinedMessage.source_id, func.count()).group_by(QuarantinedMessage.source_id)
            )
        }
    counts: dict[tuple[int, date], int] = {}
    for source_id, when, count in per_day:
        key = when if isinstance(when, date) else date.fromisoformat(str(when))
        counts[(source_id, key)] = int(count)
    calendar = [first + timedelta(days=n) for n in range(days)]
    return [
        SourceActivity(
            source=s,
            days=[(d, counts.get((s.id, d), 0)) for d in calendar],
            total=totals.get(s.id, (0, None))[0],
            last_event_at=totals.get(s.id, (0, None))[1],
            quarantined=quarantined.get(s.id, 0),
        )
        for s in sources
    ]


def source_quarantine(
    db: Database, source: SourceInfo, *, before: int | None = None, limit: int = 25
) -> tuple[list[QuarantineEntry], int | None]:
    """One page of the source's quarantine, newest first, and the cursor of the next page (or None)."""
    query = (
        select(QuarantinedMessage)
        .where(QuarantinedMessage.source_id == source.id)
        .order_by(QuarantinedMessage.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.where(QuarantinedMessage.id < before)
    with db.read() as session:
        rows = list(session.scalars(query))
    entries = [
        QuarantineEntry(q.id, source.name, q.received_at, q.message_id, q.type, q.field, q.reason, q.payload)
        for q in rows[:limit]
    ]
    return entries, (entries[-1].id if len(rows) > limit else None)


class WriteKeys:
    """Write key -> source, cached briefly: every ingestion request needs it, revocations are rare."""

    def __init__(self, db: Database, ttl_seconds: float = 5.0) -> None:
        self.db = db
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, SourceInfo | None]] = {}
        self._generation = 0  # bumped by `forget`, so a lookup racing it does not re-cache stale rows
        self._lock = threading.Lock()

    def forget(self, *write_keys: str) -> None:
        """Drop cached answers for these keys (after a rotation, revocation or re-activation)."""
        with self._lock:
            self._generation += 1
            for key in write_keys:
                self._cache.pop(key, None)

    def lookup(self, write_key: str) -> SourceInfo | None:
        hit = self._cache.get(write_key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        generation = self._generation
        with self.db.read() as session:
            row = session.scalar(select(Source).where(Source.write_key == write_key))
        info = _info(row) if row is not None and row.revoked_at is None else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            if generation == self._generation:
                self._cache[write_key] = (now, info)
        return info
