"""The portrait page for every customer, stored by the daily scores run, because computing five tags for
a million customers from their events takes seconds (bench/dashboards.py).

The snapshot holds exactly what the live page computes as of the run's moment (`portrait_distribution`
and `trait_distribution` with `until` = the run), for a viewer who sees every customer, with no filter
and with each channel's filter (the channels of the sources). The page uses it when it asks for one of
those views of the snapshot's day (the default range ends today) and says "as of" when; a team or
segment filter, an agent's scope or another range is computed live.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, select

from threadline.accounts import Viewer
from threadline.analytics.dataset import Dataset
from threadline.analytics.portrait import TRAIT_VIEWS, portrait_distribution, trait_distribution
from threadline.analytics.scope import InsightFilters
from threadline.storage import Database
from threadline.storage.models import PortraitSnapshot, Source

SNAPSHOT_NOTE = "as of"


def portrait_datasets(
    db: Database, viewer: Viewer, filters: InsightFilters, *, until: datetime | None = None
) -> dict[str, Dataset]:
    """Every chart of the portrait page, computed live."""
    tags = portrait_distribution(db, viewer, filters, until=until)
    traits = {
        f"portrait_by_{v}": trait_distribution(db, viewer, filters, v, until=until) for v in TRAIT_VIEWS
    }
    return {d.name: d for d in (*tags.values(), *traits.values())}


def store_portrait_snapshot(db: Database, *, now: datetime) -> int:
    """Computes the page for every customer as of `now` and replaces the stored snapshot; answers the
    charts stored."""
    day = now.date()
    with db.read() as session:
        channels = sorted(set(session.scalars(select(Source.channel))))
    views = {
        channel or "": portrait_datasets(db, Viewer.system(), InsightFilters(day, day, channel), until=now)
        for channel in (None, *channels)
    }
    with db.write() as session:
        session.execute(delete(PortraitSnapshot))
        for channel, charts in views.items():
            for name, data in charts.items():
                rows = [list(row) for row in data.rows]
                session.add(
                    PortraitSnapshot(
                        channel=channel, name=name, columns=list(data.columns), rows=rows, as_of=now
                    )
                )
    return sum(len(charts) for charts in views.values())


def stored_portrait(db: Database, viewer: Viewer, filters: InsightFilters) -> dict[str, Dataset] | None:
    """The stored page when it answers this view (see the module's docstring), each chart noting when
    it was computed; None otherwise."""
    if viewer.scope != "all" or filters.narrows_customers:
        return None
    with db.read() as session:
        found = list(
            session.scalars(
                select(PortraitSnapshot)
                .where(PortraitSnapshot.channel == (filters.channel or ""))
                .order_by(PortraitSnapshot.name)
            )
        )
    if not found or found[0].as_of.date() != filters.end or not _same_day(found, filters.end):
        return None
    note = f"{SNAPSHOT_NOTE} {found[0].as_of:%Y-%m-%d %H:%M} UTC (the daily scores run)"
    return {s.name: Dataset(s.name, tuple(s.columns), [tuple(row) for row in s.rows], note) for s in found}


def _same_day(found: list[PortraitSnapshot], day: date) -> bool:
    return all(s.as_of.date() == day for s in found)
