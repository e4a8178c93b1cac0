"""Daily rollups of the events, kept by the worker, so the dashboards read days instead of events.

For each day, channel and source, `rollup_days` holds the counts the dashboards add up (events, page and
screen views, app opens, emails, messages, orders, revenue) and two sorted arrays of customer numbers:
who was active and who ordered. `rollup_event_times` holds, per day, event name and channel, who did it
and when (one pair per event), so funnels over any sequence of names follow customers exactly. Counts
add over days; "customers" over a range is the union of the
days' arrays, so distinct counts stay exact for any range. Numbers (`rollup_profiles`) stand for the
profile an event was first attached to (`original_profile_id`, which a merge does not change): reading
maps each to today's live customer (rollup_reads.py), so a merge after the rollup is counted as one
customer at once, without rewriting any day. The worker keeps that map (`live_number`, remap_merges) and
a reader adds the merges made since; `rollup_surveys` holds the survey sums the same way.

The worker reads new events in id order, a chunk at a time, and records how far it got in
`rollup_state`; readers add the events after that point live (the tail), so figures are never stale.
On PostgreSQL ids are taken at insert but become visible at commit, so a run only reads up to the
highest id the previous run saw: a transaction still open then has had a whole interval to commit.

What rollups keep that the events may lose: counts of events later deleted by retention or erasure
(aggregates stay; an erased customer's number no longer leads to anyone). An unmerge that moves events
to another profile than the one they first reached, or a change of the measures in measures.py, needs
`threadline analytics rollups --rebuild`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from threadline.analytics.expressions import day_of
from threadline.analytics.measures import (
    APP_OPENED,
    EMAIL_CLICKED,
    EMAIL_OPENED,
    EMAIL_SENT,
    MESSAGES,
    ORDER_EVENTS,
    revenue_of,
)
from threadline.analytics.surveys import SURVEY_EVENT, answer_counts, on_scale, survey_kind
from threadline.storage import Database
from threadline.storage.models import (
    Event,
    Merge,
    Profile,
    RollupDay,
    RollupEventTimes,
    RollupProfile,
    RollupState,
    RollupSurvey,
)

CHUNK_EVENTS = 100_000
# One worker run reads at most this many events; a backfill continues on the next runs (or run
# `threadline analytics rollups`, which goes on until it has caught up).
RUN_EVENTS = 2_000_000
COUNTS = (
    "events", "page_views", "screen_views", "app_opens", "emails_sent",
    "emails_opened", "emails_clicked", "messages", "orders",
)  # fmt: skip
NUMBERS = np.dtype("<u4")
Key = tuple[date, str, int]


def _sum_of(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def count_columns(dialect: str) -> list[Any]:
    """The per-group SQL aggregates, in COUNTS order then revenue."""
    is_order = Event.name.in_(ORDER_EVENTS)
    return [
        func.count(),
        _sum_of(Event.type == "page"),
        _sum_of(Event.type == "screen"),
        _sum_of(Event.name.in_(APP_OPENED)),
        _sum_of(Event.name.in_(EMAIL_SENT)),
        _sum_of(Event.name.in_(EMAIL_OPENED)),
        _sum_of(Event.name.in_(EMAIL_CLICKED)),
        _sum_of(Event.name.in_(MESSAGES)),
        _sum_of(is_order),
        func.sum(case((is_order, revenue_of(dialect)), else_=0.0)),
    ]


@dataclass(slots=True)
class DayFacts:
    """One (day, channel, source)'s counts and customers; customers by profile id or by number."""

    counts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(len(COUNTS), dtype=np.int64))
    revenue: float = 0.0
    active: set[Any] = field(default_factory=set)
    buyers: set[Any] = field(default_factory=set)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def read_facts(session: Session, dialect: str, conditions: Iterable[Any]) -> dict[Key, DayFacts]:
    """Counts and customers (original profile ids) of the events matching `conditions`, by day,
    channel and source. Two grouped queries: one for the counts, one for who was active and ordered."""
    conditions = list(conditions)
    day = day_of(dialect, Event.timestamp).label("day")
    keys = (day, Event.channel, Event.source_id)
    facts: dict[Key, DayFacts] = {}
    counted = select(*keys, *count_columns(dialect)).where(*conditions).group_by(*keys)
    for row in session.execute(counted):
        got = facts.setdefault((_day(row[0]), row[1], int(row[2])), DayFacts())
        got.counts += np.asarray([int(v or 0) for v in row[3:-1]], dtype=np.int64)
        got.revenue += float(row[-1] or 0.0)
    ordered = func.max(case((Event.name.in_(ORDER_EVENTS), 1), else_=0))
    who = (
        select(*keys, Event.original_profile_id, ordered)
        .where(*conditions)
        .group_by(*keys, Event.original_profile_id)
    )
    for row in session.execute(who):
        got = facts.setdefault((_day(row[0]), row[1], int(row[2])), DayFacts())
        got.active.add(row[3])
        if row[4]:
            got.buyers.add(row[3])
    return facts


TIMES = np.dtype("<i8")
EPOCH = datetime(1970, 1, 1)
TimesKey = tuple[date, str, str]


def micros(at: datetime) -> int:
    """Microseconds since 1970-01-01 (UTC, as events store it): exact, and ordered as the timestamps."""
    return (at - EPOCH) // timedelta(microseconds=1)


def read_times(session: Session, conditions: Iterable[Any]) -> dict[TimesKey, tuple[list[str], list[int]]]:
    """Who (original profile ids) did each named event matching `conditions` and when, by day, name
    and channel."""
    stmt = select(Event.name, Event.channel, Event.original_profile_id, Event.timestamp).where(
        *conditions, Event.name.is_not(None)
    )
    found: dict[TimesKey, tuple[list[str], list[int]]] = {}
    for name, channel, profile_id, at in session.execute(stmt):
        who, when = found.setdefault((at.date(), str(name), channel), ([], []))
        who.append(profile_id)
        when.append(micros(at))
    return found


def _store_times(
    session: Session, found: dict[TimesKey, tuple[list[str], list[int]]], numbers: dict[str, int]
) -> None:
    """Appends `found` to rollup_event_times."""
    days = sorted({key[0] for key in found})
    existing = {
        (row.day, row.name, row.channel): row
        for row in session.scalars(select(RollupEventTimes).where(RollupEventTimes.day.in_(days)))
    }
    for key, (who, when) in found.items():
        new_numbers = np.asarray([numbers[p] for p in who], dtype=NUMBERS).tobytes()
        new_times = np.asarray(when, dtype=TIMES).tobytes()
        row = existing.get(key)
        if row is None:
            session.add(
                RollupEventTimes(
                    day=key[0], name=key[1], channel=key[2], numbers=new_numbers, times=new_times
                )
            )
        else:
            row.numbers = bytes(row.numbers) + new_numbers
            row.times = bytes(row.times) + new_times


SURVEY_SUMS = ("responses", "score_sum", "satisfied", "promoters", "detractors")
SurveyKey = tuple[date, str, int, str]


def read_surveys(
    session: Session, dialect: str, conditions: Iterable[Any]
) -> dict[SurveyKey, NDArray[np.float64]]:
    """The sums CSAT, NPS and CES are computed from (surveys.py), by day, channel, source and survey, of
    the answers on their scale among the events matching `conditions`."""
    keys = (day_of(dialect, Event.timestamp), Event.channel, Event.source_id, survey_kind(dialect))
    stmt = (
        select(*keys, *answer_counts(dialect))
        .where(*conditions, Event.name == SURVEY_EVENT, on_scale(dialect))
        .group_by(*keys)
    )
    return {
        (_day(row[0]), row[1], int(row[2]), str(row[3])): np.asarray([float(v or 0) for v in row[4:]])
        for row in session.execute(stmt)
    }


def _store_surveys(session: Session, sums: dict[SurveyKey, NDArray[np.float64]]) -> None:
    days = sorted({key[0] for key in sums})
    existing = {
        (row.day, row.channel, row.source_id, row.survey): row
        for row in session.scalars(select(RollupSurvey).where(RollupSurvey.day.in_(days)))
    }
    for key, values in sums.items():
        row = existing.get(key)
        if row is None:
            row = RollupSurvey(day=key[0], channel=key[1], source_id=key[2], survey=key[3])
            for name in SURVEY_SUMS:
                setattr(row, name, 0)
            session.add(row)
        for name, value in zip(SURVEY_SUMS, values, strict=True):
            setattr(row, name, getattr(row, name) + (float(value) if name == "score_sum" else int(value)))


def numbers_for(session: Session, profile_ids: Iterable[str], *, assign: bool) -> dict[str, int]:
    """Each profile id's number; with `assign`, ids without one get the next numbers."""
    wanted = sorted(set(profile_ids))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 5000):
        part = wanted[start : start + 5000]
        rows = session.execute(
            select(RollupProfile.profile_id, RollupProfile.number).where(RollupProfile.profile_id.in_(part))
        )
        found.update({str(pid): int(n) for pid, n in rows})
    missing = [pid for pid in wanted if pid not in found]
    if assign and missing:
        session.execute(insert(RollupProfile), [{"profile_id": pid} for pid in missing])
        found.update(numbers_for(session, missing, assign=False))
    return found


def pack(numbers: Iterable[int]) -> bytes:
    return np.unique(np.fromiter(numbers, dtype=np.int64)).astype(NUMBERS).tobytes()


def unpack(blob: bytes | None) -> NDArray[np.int64]:
    return np.frombuffer(blob or b"", dtype=NUMBERS).astype(np.int64)


def merge_marks(session: Session) -> tuple[int, int]:
    """How many profiles are merged away (from ix_profiles_merged_into alone) and the highest id of a
    merge in force: each merge adds one merged-away profile and an unmerge takes one away, so a reader
    that finds as many new merges as new merged-away profiles knows nothing else changed."""
    merged_away = select(func.count()).select_from(Profile).where(Profile.merged_into.is_not(None))
    newest = select(func.coalesce(func.max(Merge.id), 0)).where(Merge.status == "merged")
    return int(session.scalar(merged_away) or 0), int(session.scalar(newest) or 0)


def merged_into_live(session: Session) -> dict[str, str]:
    """Every merged-away profile id and the live profile it ended in (chains followed)."""
    direct = {
        str(a): str(b)
        for a, b in session.execute(
            select(Profile.id, Profile.merged_into).where(Profile.merged_into.is_not(None))
        )
    }
    final: dict[str, str] = {}
    for merged, into in direct.items():
        hops = 0
        while into in direct and hops < 100:
            into, hops = direct[into], hops + 1
        final[merged] = into
    return final


def current_moves(session: Session) -> dict[int, str]:
    """Every stored number whose profile was merged away, and the live profile id it counts as now."""
    final = merged_into_live(session)
    if not final:
        return {}
    rows = session.execute(
        select(RollupProfile.number, RollupProfile.profile_id)
        .join(Profile, Profile.id == RollupProfile.profile_id)
        .where(Profile.merged_into.is_not(None))
    )
    return {int(number): final[str(original)] for number, original in rows}


def remap_merges(session: Session, now: datetime) -> int:
    """Brings rollup_profiles.live_number in line with the merges in force, when they changed since the
    last run; answers how many numbers changed. Readers apply the merges made since on their own."""
    state = _state(session, now)
    marks = merge_marks(session)
    if marks == (state.mapped_merges, state.mapped_merge_id):
        return 0
    moves = current_moves(session)
    numbers = numbers_for(session, set(moves.values()), assign=True)
    wanted = {number: numbers[live] for number, live in moves.items()}
    stored = {
        int(n): int(v or n)
        for n, v in session.execute(
            select(RollupProfile.number, RollupProfile.live_number).where(
                RollupProfile.live_number.is_not(None)
            )
        )
    }
    changes = [{"n": n, "v": None} for n in stored if n not in wanted]
    changes += [{"n": n, "v": v} for n, v in wanted.items() if stored.get(n) != v]
    if changes:
        column = RollupProfile.__table__.c
        session.connection().execute(
            update(RollupProfile)
            .where(column.number == bindparam("n"))
            .values({column.live_number: bindparam("v")})
            .execution_options(synchronize_session=False),
            changes,
        )
    state.mapped_merges, state.mapped_merge_id = marks
    return len(changes)


def _state(session: Session, now: datetime) -> RollupState:
    state = session.get(RollupState, 1)
    if state is None:
        state = RollupState(
            id=1, through_event_id=0, seen_event_id=0, mapped_merges=0, mapped_merge_id=0, updated_at=now
        )
        session.add(state)
        session.flush()
    return state


def _store(session: Session, facts: dict[Key, DayFacts], numbers: dict[str, int]) -> None:
    """Adds `facts` into rollup_days: counts added, customer arrays united."""
    days = sorted({key[0] for key in facts})
    existing = {
        (row.day, row.channel, row.source_id): row
        for row in session.scalars(select(RollupDay).where(RollupDay.day.in_(days)))
    }
    for key, got in facts.items():
        active = np.asarray([numbers[p] for p in got.active], dtype=np.int64)
        buyers = np.asarray([numbers[p] for p in got.buyers], dtype=np.int64)
        row = existing.get(key)
        if row is None:
            values = dict(zip(COUNTS, (int(v) for v in got.counts), strict=True))
            session.add(
                RollupDay(
                    day=key[0], channel=key[1], source_id=key[2], revenue=got.revenue,
                    active=pack(active), buyers=pack(buyers), **values,
                )
            )  # fmt: skip
            continue
        for name, value in zip(COUNTS, got.counts, strict=True):
            setattr(row, name, getattr(row, name) + int(value))
        row.revenue += got.revenue
        row.active = pack(np.concatenate([unpack(row.active), active]))
        row.buyers = pack(np.concatenate([unpack(row.buyers), buyers]))


@dataclass(frozen=True, slots=True)
class RollupRun:
    events: int  # events read by this run
    through_event_id: int
    behind: int  # events committed after that point (the tail readers add live)
    remapped: int = 0  # customer numbers whose live customer changed by a merge or an unmerge

    def counts(self) -> dict[str, int]:
        return {
            "events": self.events,
            "through_event_id": self.through_event_id,
            "behind": self.behind,
            "remapped": self.remapped,
        }


def refresh_rollups(
    db: Database,
    *,
    now: datetime,
    limit: int = RUN_EVENTS,
    settled: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RollupRun:
    """Adds the events after the last run to the rollups, CHUNK_EVENTS at a time (each chunk and the
    new position in one transaction, so a crash loses nothing and counts nothing twice). `settled`: read
    up to the newest id at once (nothing is writing, as in a test or a quiet CLI run)."""
    with db.write() as session:
        state = _state(session, now)
        start, seen = state.through_event_id, state.seen_event_id
        newest = int(session.scalar(select(func.max(Event.id))) or 0)
        state.seen_event_id = newest
    target = newest if settled or db.dialect == "sqlite" else min(seen, newest)
    target = min(target, start + limit) if limit else target
    done, position = 0, start
    while position < target:
        upper = min(position + CHUNK_EVENTS, target)
        with db.write() as session:
            in_chunk = [Event.id > position, Event.id <= upper]
            facts = read_facts(session, db.dialect, in_chunk)
            times = read_times(session, in_chunk)
            ids = {p for got in facts.values() for p in got.active}
            numbers = numbers_for(session, ids | {p for who, _ in times.values() for p in who}, assign=True)
            _store(session, facts, numbers)
            _store_times(session, times, numbers)
            _store_surveys(session, read_surveys(session, db.dialect, in_chunk))
            read = sum(int(got.counts[0]) for got in facts.values())
            session.execute(
                update(RollupState).where(RollupState.id == 1).values(through_event_id=upper, updated_at=now)
            )
        done, position = done + read, upper
        if progress:
            progress(position - start, target - start)
    with db.write() as session:
        remapped = remap_merges(session, now)
    with db.read() as session:
        behind = int(session.scalar(select(func.count()).where(Event.id > position)) or 0)
    return RollupRun(done, position, behind, remapped)


def reset_rollups(db: Database, *, now: datetime) -> None:
    """Forgets every rollup (numbers too): the next refresh reads all events again."""
    with db.write() as session:
        session.execute(delete(RollupDay))
        session.execute(delete(RollupSurvey))
        session.execute(delete(RollupEventTimes))
        session.execute(delete(RollupProfile))
        session.execute(delete(RollupState))
        _state(session, now)
