"""Reading the daily rollups for a chart: the days of the range, the events after the rollups added live,
and every customer number mapped to today's live customer.

Rollups answer a chart only when they can answer it exactly and fast: for a viewer who sees every
customer with no team or segment filter (an agent's or a team's dashboard reads their own customers'
events through the profiles instead, which is fast because it is few), once the worker has built them,
and while fewer than TAIL_LIMIT events wait after them. Otherwise `rollup_view` answers None and the
chart runs its live query: both give the same figures (tests/test_rollups.py checks every chart).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.analytics.rollups import COUNTS, numbers_for, read_facts, unpack
from threadline.analytics.scope import InsightFilters
from threadline.privacy import ERASED_PROFILE_ID
from threadline.storage import Database
from threadline.storage.models import Event, Profile, RollupDay, RollupProfile, RollupState

TAIL_LIMIT = 100_000
Numbers = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    channel: str
    source_id: int
    counts: NDArray[np.int64]  # in rollups.COUNTS order
    revenue: float
    active: Numbers  # customers, as live-customer numbers (may repeat after a merge)
    buyers: Numbers

    def count(self, name: str) -> int:
        return int(self.counts[COUNTS.index(name)])


@dataclass(frozen=True, slots=True)
class RollupView:
    days: list[Day]
    size: int  # numbers are below this

    def distinct(self, arrays: list[Numbers]) -> int:
        return int(self.members(arrays).sum())

    def members(self, arrays: list[Numbers]) -> NDArray[np.bool_]:
        seen = np.zeros(self.size, dtype=np.bool_)
        for numbers in arrays:
            seen[numbers] = True
        return seen

    def between(self, since: date, until: date) -> list[Day]:
        return [d for d in self.days if since <= d.day < until]


def usable(viewer: Viewer, filters: InsightFilters) -> bool:
    return viewer.scope == "all" and not filters.narrows_customers


def _tail_too_long(session: Session, through: int) -> bool:
    waiting = select(Event.id).where(Event.id > through).limit(TAIL_LIMIT + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(waiting)) or 0) > TAIL_LIMIT


def _live_numbers(session: Session, tail_ids: set[str]) -> tuple[dict[str, int], dict[int, str], int]:
    """Numbers of the tail's profiles (new ones get numbers above the stored ones), and for every
    number whose profile was merged away or erased, the profile id it now counts as."""
    numbers = numbers_for(session, tail_ids, assign=False)
    next_number = int(session.scalar(select(func.max(RollupProfile.number))) or 0) + 1
    for profile_id in sorted(tail_ids - set(numbers)):
        numbers[profile_id], next_number = next_number, next_number + 1
    merged_away = select(Profile.id, Profile.merged_into).where(Profile.merged_into.is_not(None))
    merged = {str(a): str(b) for a, b in session.execute(merged_away)}
    moved: dict[int, str] = {}
    if merged:
        rows = session.execute(
            select(RollupProfile.number, RollupProfile.profile_id)
            .join(Profile, Profile.id == RollupProfile.profile_id)
            .where(Profile.merged_into.is_not(None))
        )
        for number, original in rows:
            live, hops = merged[str(original)], 0
            while live in merged and hops < 100:  # a chain of merges ends at the live survivor
                live, hops = merged[live], hops + 1
            moved[int(number)] = live
    for number in session.scalars(select(RollupProfile.number).where(RollupProfile.profile_id.is_(None))):
        moved[int(number)] = ERASED_PROFILE_ID
    targets = set(moved.values()) - set(numbers)
    numbers.update(numbers_for(session, targets, assign=False))
    for profile_id in sorted(targets - set(numbers)):
        numbers[profile_id], next_number = next_number, next_number + 1
    return numbers, moved, next_number


def rollup_view(
    db: Database, viewer: Viewer, filters: InsightFilters, *, since: date | None, until: date
) -> RollupView | None:
    """The days from `since` (None: from the first) to before `until` on the filters' channel, or None
    when the rollups cannot answer (see the module's docstring)."""
    if not usable(viewer, filters):
        return None
    with db.read() as session:
        state = session.get(RollupState, 1)
        if state is None or state.through_event_id <= 0 or _tail_too_long(session, state.through_event_id):
            return None
        stored = select(RollupDay).where(RollupDay.day < until)
        tail = [Event.id > state.through_event_id, Event.timestamp < datetime.combine(until, time.min)]
        if since is not None:
            stored = stored.where(RollupDay.day >= since)
            tail.append(Event.timestamp >= datetime.combine(since, time.min))
        if filters.channel:
            stored = stored.where(RollupDay.channel == filters.channel)
            tail.append(Event.channel == filters.channel)
        rows = list(session.scalars(stored))
        fresh = read_facts(session, db.dialect, tail)
        numbers, moved, size = _live_numbers(session, {p for f in fresh.values() for p in f.active})
    canon = np.arange(size, dtype=np.int64)
    for number, live in moved.items():
        if number < size:
            canon[number] = numbers[live]
    days = [
        Day(
            r.day, r.channel, r.source_id,
            np.asarray([getattr(r, c) for c in COUNTS], dtype=np.int64), float(r.revenue),
            canon[unpack(r.active)], canon[unpack(r.buyers)],
        )
        for r in rows
    ]  # fmt: skip
    for (day, channel, source_id), got in fresh.items():
        active = np.asarray([numbers[p] for p in got.active], dtype=np.int64)
        buyers = np.asarray([numbers[p] for p in got.buyers], dtype=np.int64)
        days.append(Day(day, channel, source_id, got.counts, got.revenue, canon[active], canon[buyers]))
    return RollupView(days, size)
