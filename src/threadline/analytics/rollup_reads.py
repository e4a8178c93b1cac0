"""Reading the daily rollups for a chart: the days of the range, the events after the rollups added live,
and every customer number mapped to today's live customer.

Rollups answer a chart only when they can answer it exactly and fast: for a viewer who sees every
customer with no team or segment filter (an agent's or a team's dashboard reads their own customers'
events through the profiles instead, which is fast because it is few), once the worker has built them,
and while fewer than TAIL_LIMIT events wait after them. Otherwise `rollup_view` answers None and the
chart runs its live query: both give the same figures (tests/test_rollups.py checks every chart).

The tail is read by id: its other conditions go through `unindexed`, or SQLite would scan every event
of the date range instead (0.5 s per chart at 10,000,000 events, to find none).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.analytics.expressions import unindexed
from threadline.analytics.rollups import (
    COUNTS,
    SURVEY_SUMS,
    TIMES,
    current_moves,
    merge_marks,
    numbers_for,
    read_facts,
    read_surveys,
    read_times,
    unpack,
)
from threadline.analytics.scope import InsightFilters
from threadline.privacy import ERASED_PROFILE_ID
from threadline.storage import Database
from threadline.storage.models import (
    Event,
    Merge,
    RollupDay,
    RollupEventTimes,
    RollupProfile,
    RollupState,
    RollupSurvey,
)

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
    active_count: int  # distinct live customers in `active`

    def count(self, name: str) -> int:
        return int(self.counts[COUNTS.index(name)])


@dataclass(frozen=True, slots=True)
class RollupView:
    days: list[Day]
    size: int  # numbers are below this

    def distinct(self, arrays: list[Numbers]) -> int:
        total = sum(len(a) for a in arrays)
        if total * 32 < self.size:  # a few numbers: sorting them beats clearing a flag per customer
            return len(np.unique(np.concatenate(arrays))) if total else 0
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


# More merges than this since the worker's last map: the reader maps every merge itself (slower).
MAX_NEW_MERGES = 200


def _canonical(
    session: Session, state: RollupState, tail_ids: set[str]
) -> tuple[dict[str, int], NDArray[np.int64]]:
    """Numbers for the tail's profiles (new ones get numbers above the stored ones), and the array that
    maps every number to the number of the live customer it counts as today: the worker's map of the
    merged-away numbers, the merges made since it ran, and erased numbers to the one erased profile."""
    numbers = numbers_for(session, tail_ids, assign=False)
    size = int(session.scalar(select(func.max(RollupProfile.number))) or 0) + 1

    def number(profile_id: str) -> int:
        nonlocal size
        if profile_id not in numbers:
            numbers[profile_id], size = size, size + 1
        return numbers[profile_id]

    for profile_id in sorted(tail_ids):
        number(profile_id)
    marks = merge_marks(session)
    since: list[tuple[str, str]] = []
    if marks != (state.mapped_merges, state.mapped_merge_id):
        since = [
            (str(a), str(b))
            for a, b in session.execute(
                select(Merge.merged_id, Merge.survivor_id)
                .where(Merge.status == "merged", Merge.id > state.mapped_merge_id)
                .order_by(Merge.id)
            )
        ]
    # The worker's map holds only if every merge in force is in it or after it (an unmerge or a merge
    # that committed late breaks that): otherwise map them all here.
    incremental = marks[0] - state.mapped_merges == len(since) and len(since) <= MAX_NEW_MERGES
    moves: list[tuple[int, int]] = []
    if incremental:
        mapped = select(RollupProfile.number, RollupProfile.live_number).where(
            RollupProfile.live_number.is_not(None)
        )
        moves = [(int(n), int(v or n)) for n, v in session.execute(mapped)]
        numbers.update(numbers_for(session, {p for pair in since for p in pair} - set(numbers), assign=False))
    else:
        found = current_moves(session)
        numbers.update(numbers_for(session, set(found.values()) - set(numbers), assign=False))
        moves = [(n, number(live)) for n, live in found.items()]
        since = []
    erased = [
        int(n)
        for n in session.scalars(select(RollupProfile.number).where(RollupProfile.profile_id.is_(None)))
    ]
    if erased:
        numbers.update(numbers_for(session, {ERASED_PROFILE_ID} - set(numbers), assign=False))
        moves += [(n, number(ERASED_PROFILE_ID)) for n in erased]
    pairs = [(number(a), number(b)) for a, b in since]
    canon = np.arange(size, dtype=np.int64)
    for n, v in moves:
        canon[n] = v
    for merged, survivor in pairs:  # in merge order: whoever counted as the merged one now counts as
        canon[canon == merged] = canon[survivor]  # its survivor
    return numbers, canon


def _ready(session: Session, viewer: Viewer, filters: InsightFilters) -> RollupState | None:
    """The rollups' state when they can answer this viewer's chart, else None (the module's docstring)."""
    if not usable(viewer, filters):
        return None
    state = session.get(RollupState, 1)
    if state is None or state.through_event_id <= 0 or _tail_too_long(session, state.through_event_id):
        return None
    return state


def survey_sums(
    db: Database, viewer: Viewer, filters: InsightFilters
) -> dict[tuple[str, str], NDArray[np.float64]] | None:
    """(month, survey) -> the sums of surveys.answer_counts over the filters' days and channel, from the
    rollups and the events after them; None when the rollups cannot answer."""
    with db.read() as session:
        state = _ready(session, viewer, filters)
        if state is None:
            return None
        stored = select(RollupSurvey).where(
            RollupSurvey.day >= filters.start, RollupSurvey.day <= filters.end
        )
        tail = [
            Event.id > state.through_event_id,
            unindexed(db.dialect, Event.timestamp) >= filters.since,
            unindexed(db.dialect, Event.timestamp) < filters.until,
        ]
        if filters.channel:
            stored = stored.where(RollupSurvey.channel == filters.channel)
            tail.append(unindexed(db.dialect, Event.channel) == filters.channel)
        found = [
            ((r.day, r.survey), np.asarray([float(getattr(r, name)) for name in SURVEY_SUMS]))
            for r in session.scalars(stored)
        ]
        found += [((key[0], key[3]), sums) for key, sums in read_surveys(session, db.dialect, tail).items()]
    totals: dict[tuple[str, str], NDArray[np.float64]] = {}
    for (day, survey), sums in found:
        key = (day.strftime("%Y-%m"), survey)
        totals[key] = totals.get(key, 0) + sums
    return totals


_PAGE: ContextVar[dict[tuple[Any, ...], RollupView | None] | None] = ContextVar("rollup_page", default=None)


@contextmanager
def one_page() -> Iterator[None]:
    """The charts of one page share each rollup read they have in common (the overview's eleven charts
    read the same days): one consistent, faster answer."""
    token = _PAGE.set({})
    try:
        yield
    finally:
        _PAGE.reset(token)


def rollup_view(
    db: Database,
    viewer: Viewer,
    filters: InsightFilters,
    *,
    since: date | None,
    until: date,
    buyers_only: bool = False,
) -> RollupView | None:
    """The days from `since` (None: from the first) to before `until` on the filters' channel, or None
    when the rollups cannot answer (see the module's docstring). `buyers_only` leaves the active
    customers unread (empty), for charts about orders over long spans."""
    shared = _PAGE.get()
    key = (id(db), viewer.scope, filters, since, until, buyers_only)
    if shared is not None and key in shared:
        return shared[key]
    view = _rollup_view(db, viewer, filters, since=since, until=until, buyers_only=buyers_only)
    if shared is not None:
        shared[key] = view
    return view


def _rollup_view(
    db: Database,
    viewer: Viewer,
    filters: InsightFilters,
    *,
    since: date | None,
    until: date,
    buyers_only: bool,
) -> RollupView | None:
    with db.read() as session:
        state = _ready(session, viewer, filters)
        if state is None:
            return None
        columns = [getattr(RollupDay, c) for c in COUNTS]
        customers = [RollupDay.buyers] if buyers_only else [RollupDay.buyers, RollupDay.active]
        stored = select(
            RollupDay.day, RollupDay.channel, RollupDay.source_id, RollupDay.revenue, *customers, *columns
        ).where(RollupDay.day < until)
        at = unindexed(db.dialect, Event.timestamp)
        tail = [Event.id > state.through_event_id, at < datetime.combine(until, time.min)]
        if since is not None:
            stored = stored.where(RollupDay.day >= since)
            tail.append(at >= datetime.combine(since, time.min))
        if filters.channel:
            stored = stored.where(RollupDay.channel == filters.channel)
            tail.append(unindexed(db.dialect, Event.channel) == filters.channel)
        rows = session.execute(stored).all()
        fresh = read_facts(session, db.dialect, tail)
        numbers, canon = _canonical(session, state, {p for f in fresh.values() for p in f.active})
    counted = len(customers) + 4
    nobody = np.zeros(0, dtype=np.int64)
    moved = canon != np.arange(len(canon), dtype=np.int64)
    days = []
    for r in rows:
        active = nobody if buyers_only else unpack(r[5])
        days.append(
            Day(
                r[0], r[1], int(r[2]), np.asarray(r[counted:], dtype=np.int64), float(r[3]),
                canon[active], canon[unpack(r[4])], _distinct_live(active, canon, moved),
            )
        )  # fmt: skip
    for (day, channel, source_id), got in fresh.items():
        active = canon[np.asarray([numbers[p] for p in got.active], dtype=np.int64)]
        buyers = canon[np.asarray([numbers[p] for p in got.buyers], dtype=np.int64)]
        found = len(np.unique(active))
        days.append(Day(day, channel, source_id, got.counts, got.revenue, active, buyers, found))
    return RollupView(days, len(canon))


def _distinct_live(stored: Numbers, canon: Numbers, moved: NDArray[np.bool_]) -> int:
    """How many live customers a stored (sorted, distinct) array holds once merged-away numbers count as
    their survivors: the unmoved ones, plus each survivor not among them. No sort of the whole array."""
    hit = moved[stored]
    if not hit.any():
        return len(stored)
    stay = stored[~hit]
    survivors = np.unique(canon[stored[hit]])
    at = np.minimum(np.searchsorted(stay, survivors), max(len(stay) - 1, 0))
    present = (stay[at] == survivors) if len(stay) else np.zeros(len(survivors), dtype=np.bool_)
    return len(stay) + int((~present).sum())


@dataclass(frozen=True, slots=True)
class EventTimes:
    """Who did each of some event names when, per channel: live-customer numbers (below `size`) and
    microseconds since 1970, pairwise."""

    found: dict[tuple[str, str], tuple[Numbers, Numbers]]  # (name, channel) -> (numbers, times)
    size: int

    @property
    def channels(self) -> list[str]:
        return sorted({channel for _, channel in self.found})

    def of(self, name: str, channel: str | None) -> tuple[Numbers, Numbers]:
        """The pairs of `name` on `channel` (None: every channel)."""
        parts = [got for (n, c), got in self.found.items() if n == name and channel in (None, c)]
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def event_times(db: Database, viewer: Viewer, filters: InsightFilters, names: list[str]) -> EventTimes | None:
    """Who did each of `names` when within the filters' days and channel, from rollup_event_times and
    the events after them; None when the rollups cannot answer (see the module's docstring)."""
    with db.read() as session:
        state = _ready(session, viewer, filters)
        if state is None:
            return None
        table = RollupEventTimes
        stored = select(table.name, table.channel, table.numbers, table.times).where(
            table.day >= filters.start, table.day <= filters.end, table.name.in_(names)
        )
        tail = [
            Event.id > state.through_event_id,
            unindexed(db.dialect, Event.timestamp) >= filters.since,
            unindexed(db.dialect, Event.timestamp) < filters.until,
            unindexed(db.dialect, Event.name).in_(names),
        ]
        if filters.channel:
            stored = stored.where(table.channel == filters.channel)
            tail.append(unindexed(db.dialect, Event.channel) == filters.channel)
        rows = session.execute(stored).all()
        fresh = read_times(session, tail)
        numbers, canon = _canonical(session, state, {p for who, _ in fresh.values() for p in who})
    parts: dict[tuple[str, str], list[tuple[Numbers, Numbers]]] = {}
    for name, channel, who, when in rows:
        times = np.frombuffer(when, dtype=TIMES).astype(np.int64)
        parts.setdefault((name, channel), []).append((canon[unpack(who)], times))
    for (_, name, channel), (who_ids, when_list) in fresh.items():
        who_array = canon[np.asarray([numbers[p] for p in who_ids], dtype=np.int64)]
        parts.setdefault((name, channel), []).append((who_array, np.asarray(when_list, dtype=np.int64)))
    found = {
        key: (np.concatenate([p[0] for p in got]), np.concatenate([p[1] for p in got]))
        for key, got in parts.items()
    }
    return EventTimes(found, len(canon))
