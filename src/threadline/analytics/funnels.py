"""Conversion funnels over any sequence of event names, across channels or within each channel.

A customer reaches step k when they did step k's event at or after the moment they reached step k-1,
within the date range. Across channels (the default) the steps may happen anywhere: viewed on the app,
bought in the store. By channel, every step must happen on the same channel, which shows where a
channel loses people. From the worker's rollups (who did each name when, rollup_reads.event_times) when
they can answer, else one query: a CTE per step, each reading only its event name. Both give the same
counts (tests/test_rollups.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, func, literal_column, select, union_all

from threadline.accounts import Viewer
from threadline.analytics.dataset import Dataset
from threadline.analytics.rollup_reads import EventTimes, event_times
from threadline.analytics.scope import InsightFilters, scoped_events
from threadline.errors import Invalid
from threadline.storage import Database
from threadline.storage.models import Event

MAX_STEPS = 8
ALL_CHANNELS = "all"
NEVER = np.iinfo(np.int64).max


def check_steps(steps: list[str]) -> list[str]:
    steps = [s.strip() for s in steps if s.strip()]
    if not 2 <= len(steps) <= MAX_STEPS:
        raise Invalid(f"steps: give 2 to {MAX_STEPS} event names", details={"field": "steps"})
    if any(len(s) > 200 for s in steps):
        raise Invalid("steps: an event name is at most 200 characters", details={"field": "steps"})
    return steps


def funnel(
    db: Database, viewer: Viewer, filters: InsightFilters, steps: list[str], *, by_channel: bool = False
) -> Dataset:
    """Customers reaching each step, per channel ("all" across channels), with the conversion from
    the step before and from the first step."""
    filters, steps = filters.checked(), check_steps(steps)
    times = event_times(db, viewer, filters, sorted(set(steps)))
    if times is not None:
        found = _reached_from_times(times, steps, by_channel=by_channel)
    else:
        found = _reached_live(db, viewer, filters, steps, by_channel=by_channel)
    rows = []
    for channel in sorted({c for _, c in found}):
        first = found.get((0, channel), 0)
        previous = first
        for index, name in enumerate(steps):
            n = found.get((index, channel), 0)
            rows.append(
                (
                    channel,
                    index + 1,
                    name,
                    n,
                    n / previous if previous else None,
                    n / first if first else None,
                )
            )
            previous = n
    columns = ("channel", "step", "event", "customers", "from_previous", "from_first")
    return Dataset("funnel", columns, rows)


def _reached_from_times(
    times: EventTimes, steps: list[str], *, by_channel: bool
) -> dict[tuple[int, str], int]:
    """(step index, channel) -> customers who reached it, following each customer's earliest time at
    every step: the first step's earliest, then each step's earliest at or after the step before."""
    found: dict[tuple[int, str], int] = {}
    for channel in times.channels if by_channel else [ALL_CHANNELS]:
        reached: NDArray[np.int64] | None = None
        for index, name in enumerate(steps):
            who, when = times.of(name, channel if by_channel else None)
            if reached is not None:
                later = when >= reached[who]  # never reached before: NEVER, so nothing is later
                who, when = who[later], when[later]
            if not len(who):
                break  # nobody reaches this step, nor any after it
            reached = np.full(times.size, NEVER, dtype=np.int64)
            np.minimum.at(reached, who, when)
            found[(index, channel)] = int((reached != NEVER).sum())
    return found


def _reached_live(
    db: Database, viewer: Viewer, filters: InsightFilters, steps: list[str], *, by_channel: bool
) -> dict[tuple[int, str], int]:
    """(step index, channel) -> customers who reached it, by one query over the events."""
    reached: list[Any] = []
    for index, name in enumerate(steps):
        channel: Any = Event.channel if by_channel else literal_column(f"'{ALL_CHANNELS}'").label("channel")
        keys: list[Any] = [Event.profile_id, channel]
        stmt = select(*keys, func.min(Event.timestamp).label("at"))
        if reached:
            before = reached[-1]
            after_previous = and_(Event.profile_id == before.c.profile_id, Event.timestamp >= before.c.at)
            if by_channel:
                after_previous = and_(after_previous, Event.channel == before.c.channel)
            stmt = stmt.select_from(Event).join(before, after_previous)
        stmt = scoped_events(stmt, viewer, filters, names=(name,))
        group = [Event.profile_id, *([Event.channel] if by_channel else [])]
        reached.append(stmt.group_by(*group).cte(f"step_{index}"))
    counts = union_all(
        *(
            select(
                literal_column(str(index)).label("step"), step.c.channel, func.count().label("customers")
            ).group_by(step.c.channel)
            for index, step in enumerate(reached)
        )
    )
    with db.read() as session:
        return {(int(step), channel): int(n) for step, channel, n in session.execute(counts)}
