"""New customers by the day they were first seen: their acquisition channel and CLV (CAC's customers),
and the channels they have been seen on (customer counts with a channel filter), live or from the daily
snapshot.

Read live, both look at every profile first seen in the range: its first event (through
ix_events_profile_time) or its channels (JSON), which takes seconds at a million customers. So the daily
scores run, right after CLV, stores them per day and channel in `rollup_first_seen` for the days before
its own day. A chart adds the stored days of its range and counts the days from the run's day on live,
so today's new customers count at once; a change since the run to a customer first seen before it (a
merge, an event dated before their first sight, an erasure) shows after the next run, and the chart
says "as of" when it used the snapshot. Used only for a viewer who sees every customer with no team or
segment filter, like the rollups (rollup_reads.usable); tests/test_rollups.py checks it against live.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select

from threadline.accounts import Viewer
from threadline.analytics.expressions import day_of, has_key
from threadline.analytics.rollup_reads import usable
from threadline.analytics.scope import InsightFilters, customer_scope
from threadline.analytics.scores import CLV_12M
from threadline.storage import Database
from threadline.storage.models import Event, Profile, ProfileScore, RollupFirstSeen, Source

UNKNOWN_CHANNEL = "unknown"


def acquisitions(viewer: Viewer, filters: InsightFilters, *, since: datetime | None, until: datetime) -> Any:
    """Customers first seen in [since, until) and the channel of their first event (their acquisition
    channel): the event at the profile's first_seen, found through ix_events_profile_time."""
    first_event = and_(Event.profile_id == Profile.id, Event.timestamp == Profile.first_seen)
    in_range = [Profile.first_seen < until, *([] if since is None else [Profile.first_seen >= since])]
    return (
        select(
            Profile.id.label("profile_id"),
            Profile.first_seen.label("first_seen"),
            func.coalesce(func.min(Event.channel), UNKNOWN_CHANNEL).label("channel"),
        )
        .select_from(Profile)
        .outerjoin(Event, first_event)
        .where(customer_scope(viewer, filters), *in_range)
        .group_by(Profile.id, Profile.first_seen)
        .subquery()
    )


def _with_clv(acquired: Any, *keys: Any) -> Any:
    """Per `keys`: the acquired customers, the sum of their clv_12m scores and how many have one."""
    clv = ProfileScore.value
    return (
        select(*keys, func.count(), func.coalesce(func.sum(clv), 0.0), func.count(clv))
        .select_from(acquired)
        .outerjoin(
            ProfileScore,
            and_(ProfileScore.profile_id == acquired.c.profile_id, ProfileScore.name == CLV_12M),
        )
        .group_by(*keys)
    )


@dataclass(slots=True)
class Acquired:
    customers: int = 0
    clv_sum: float = 0.0
    clv_customers: int = 0

    def add(self, customers: int, clv_sum: float, clv_customers: int) -> None:
        self.customers += customers
        self.clv_sum += clv_sum
        self.clv_customers += clv_customers

    @property
    def average_clv(self) -> float | None:
        return self.clv_sum / self.clv_customers if self.clv_customers else None


def _acquired_live(
    db: Database, viewer: Viewer, filters: InsightFilters, since: datetime, until: datetime
) -> dict[str, Acquired]:
    acquired = acquisitions(viewer, filters, since=since, until=until)
    stmt = _with_clv(acquired, acquired.c.channel)
    if filters.channel:
        stmt = stmt.where(acquired.c.channel == filters.channel)
    found: dict[str, Acquired] = {}
    with db.read() as session:
        for channel, count, clv_sum, clv_count in session.execute(stmt):
            found.setdefault(channel, Acquired()).add(int(count), float(clv_sum or 0.0), int(clv_count))
    return found


def _seen_on_live(
    db: Database, viewer: Viewer, filters: InsightFilters, channel: str, since: datetime | None
) -> tuple[int, int]:
    """Customers seen on `channel` first seen from `since` (None: ever) to the end of the range, and
    those of them first seen within the range."""
    first = Profile.first_seen
    stmt = select(func.count(), func.coalesce(func.sum(case((first >= filters.since, 1), else_=0)), 0))
    stmt = stmt.where(
        customer_scope(viewer, filters), has_key(db.dialect, Profile.channels, channel), first < filters.until
    )
    if since is not None:
        stmt = stmt.where(first >= since)
    with db.read() as session:
        total, new = session.execute(stmt).one()
    return int(total or 0), int(new or 0)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min)


def snapshot_time(db: Database, viewer: Viewer, filters: InsightFilters) -> datetime | None:
    """When the stored days were computed, if they can answer this view; they cover days before it."""
    if not usable(viewer, filters):
        return None
    with db.read() as session:
        return session.scalar(select(func.max(RollupFirstSeen.as_of)))


def _stored_days(start: date | None, end: date, as_of: datetime) -> Iterator[Any]:
    """The conditions picking the stored days from `start` (None: the first) to `end`."""
    yield RollupFirstSeen.day <= end
    yield RollupFirstSeen.day < as_of.date()
    if start is not None:
        yield RollupFirstSeen.day >= start


def acquired_by_channel(
    db: Database, viewer: Viewer, filters: InsightFilters
) -> tuple[dict[str, Acquired], datetime | None]:
    """Per acquisition channel, the customers first seen within the filters' range and their CLV; and
    the snapshot's time when stored days were used."""
    as_of = snapshot_time(db, viewer, filters)
    if as_of is None:
        return _acquired_live(db, viewer, filters, filters.since, filters.until), None
    stored = (
        select(
            RollupFirstSeen.channel,
            func.sum(RollupFirstSeen.acquired),
            func.sum(RollupFirstSeen.clv_sum),
            func.sum(RollupFirstSeen.clv_customers),
        )
        .where(*_stored_days(filters.start, filters.end, as_of))
        .group_by(RollupFirstSeen.channel)
        .having(func.sum(RollupFirstSeen.acquired) > 0)
    )
    if filters.channel:
        stored = stored.where(RollupFirstSeen.channel == filters.channel)
    found: dict[str, Acquired] = {}
    with db.read() as session:
        for channel, count, clv_sum, clv_count in session.execute(stored):
            found.setdefault(channel, Acquired()).add(int(count), float(clv_sum or 0.0), int(clv_count or 0))
    since = max(filters.since, _midnight(as_of.date()))
    if since < filters.until:
        for channel, got in _acquired_live(db, viewer, filters, since, filters.until).items():
            found.setdefault(channel, Acquired()).add(got.customers, got.clv_sum, got.clv_customers)
    used = filters.start < as_of.date()
    return found, as_of if used else None


def seen_on(
    db: Database, viewer: Viewer, filters: InsightFilters, channel: str
) -> tuple[int, int, datetime | None]:
    """Customers seen on `channel` first seen by the end of the range, and those first seen within it;
    and the snapshot's time when stored days were used (always, for the first figure)."""
    as_of = snapshot_time(db, viewer, filters)
    if as_of is None:
        return (*_seen_on_live(db, viewer, filters, channel, None), None)
    in_range = case((RollupFirstSeen.day >= filters.start, RollupFirstSeen.seen_on), else_=0)
    stored = select(
        func.coalesce(func.sum(RollupFirstSeen.seen_on), 0), func.coalesce(func.sum(in_range), 0)
    ).where(*_stored_days(None, filters.end, as_of), RollupFirstSeen.channel == channel)
    with db.read() as session:
        total, new = (int(n or 0) for n in session.execute(stored).one())
    since = _midnight(as_of.date())
    if since < filters.until:
        live_total, live_new = _seen_on_live(db, viewer, filters, channel, since)
        total, new = total + live_total, new + live_new
    return total, new, as_of


def store_first_seen(db: Database, *, now: datetime) -> int:
    """Counts every live customer first seen before today by day and channel (acquired, with CLV, and
    seen on) and replaces the stored days; answers the rows stored."""
    viewer, everyone = Viewer.system(), InsightFilters(now.date(), now.date())
    today = _midnight(now.date())
    acquired = acquisitions(viewer, everyone, since=None, until=today)
    day = day_of(db.dialect, acquired.c.first_seen)
    by_acquisition = _with_clv(acquired, day, acquired.c.channel)
    rows: dict[tuple[date, str], dict[str, Any]] = {}

    def row(day_value: Any, channel: str) -> dict[str, Any]:
        key = (day_value if isinstance(day_value, date) else date.fromisoformat(str(day_value)), channel)
        return rows.setdefault(
            key,
            {"day": key[0], "channel": channel, "acquired": 0, "clv_sum": 0.0, "clv_customers": 0,
             "seen_on": 0, "as_of": now},
        )  # fmt: skip

    with db.read() as session:
        channels = sorted(set(session.scalars(select(Source.channel))))
        for first_day, channel, count, clv_sum, clv_count in session.execute(by_acquisition):
            got = row(first_day, channel)
            got.update(acquired=int(count), clv_sum=float(clv_sum or 0.0), clv_customers=int(clv_count))
        seen_day = day_of(db.dialect, Profile.first_seen)
        per_channel = [
            func.sum(case((has_key(db.dialect, Profile.channels, c), 1), else_=0)) for c in channels
        ]
        if channels:
            seen = (
                select(seen_day, *per_channel)
                .where(customer_scope(viewer, everyone), Profile.first_seen < today)
                .group_by(seen_day)
            )
            for first_day, *counts in session.execute(seen):
                for channel, count in zip(channels, counts, strict=True):
                    if count:
                        row(first_day, channel)["seen_on"] = int(count)
    with db.write() as session:
        session.execute(delete(RollupFirstSeen))
        if rows:
            session.execute(insert(RollupFirstSeen), list(rows.values()))
    return len(rows)
