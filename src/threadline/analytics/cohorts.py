"""Retention cohorts by first-purchase month, and the churn rate.

A customer's cohort is the month of their first order ever (within their data scope and the channel
filter); cohorts whose month falls in the date range are shown. For each cohort and each month after
it, the share of its customers who ordered again in that month. Month 0 is the cohort's own size.

Churn rate: of the customers who ordered in the period of the same length just before the range, the
share who did not order within the range.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from sqlalchemy import case, distinct, func, select

from threadline.accounts import Viewer
from threadline.analytics import rollup_charts
from threadline.analytics.dataset import Dataset
from threadline.analytics.expressions import month_number
from threadline.analytics.measures import ORDER_EVENTS
from threadline.analytics.rollup_reads import rollup_view
from threadline.analytics.scope import InsightFilters, scoped_events
from threadline.storage import Database
from threadline.storage.models import Event


def _month_text(number: int) -> str:
    year, month = divmod(number - 1, 12)
    return f"{year:04d}-{month + 1:02d}"


def retention_cohorts(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    filters = filters.checked()
    lowest = filters.start.year * 12 + filters.start.month
    highest = filters.end.year * 12 + filters.end.month
    # Every order ever: a cohort is the month of the first one.
    view = rollup_view(db, viewer, filters, since=None, until=date.max, buyers_only=True)
    if view is not None:
        return _cohorts(rollup_charts.cohort_counts(view, lowest, highest))
    month = month_number(db.dialect, Event.timestamp)
    first = (
        scoped_events(
            select(Event.profile_id, func.min(month).label("cohort")),
            viewer,
            filters,
            names=ORDER_EVENTS,
            in_range=False,
        )
        .group_by(Event.profile_id)
        .subquery()
    )
    offset = (month - first.c.cohort).label("offset")
    stmt = (
        select(first.c.cohort, offset, func.count(distinct(Event.profile_id)))
        .select_from(Event)
        .join(first, first.c.profile_id == Event.profile_id)
        .where(first.c.cohort >= lowest, first.c.cohort <= highest)
    )
    # Orders after the range still count: a cohort of March keeps its April column when the range
    # ends in March. Cohort membership, not activity, is what the range selects.
    stmt = scoped_events(stmt, viewer, filters, names=ORDER_EVENTS, in_range=False)
    stmt = stmt.group_by(first.c.cohort, offset).order_by(first.c.cohort, offset)
    with db.read() as session:
        rows = session.execute(stmt).all()
    return _cohorts([(int(c), int(o), int(n)) for c, o, n in rows])


def _cohorts(rows: list[tuple[int, int, int]]) -> Dataset:
    sizes = {int(c): int(n) for c, o, n in rows if int(o) == 0}
    out = [
        (_month_text(int(c)), int(o), int(n), int(n) / sizes[int(c)] if sizes.get(int(c)) else None)
        for c, o, n in rows
    ]
    return Dataset("cohorts", ("cohort", "months_since_first_order", "customers", "retained_share"), out)


def churn_rate(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    filters = filters.checked()
    before = filters.previous
    period = f"{before.start.isoformat()}..{(filters.start - timedelta(days=1)).isoformat()}"
    columns = ("previous_period", "previous_buyers", "churned", "churn_rate")
    until = filters.end + timedelta(days=1)
    view = rollup_view(db, viewer, filters, since=before.start, until=until, buyers_only=True)
    if view is not None:
        previous = rollup_charts.buyers_between(view, before.start, filters.start)
        current = rollup_charts.buyers_between(view, filters.start, until)
        gone = int(np.isin(previous, current, invert=True).sum())
        share = gone / len(previous) if len(previous) else None
        return Dataset("churn", columns, [(period, len(previous), gone, share)])
    earlier = scoped_events(
        select(Event.profile_id).distinct(), viewer, before, names=ORDER_EVENTS
    ).subquery()
    now = scoped_events(select(Event.profile_id), viewer, filters, names=ORDER_EVENTS)
    stmt = select(func.count(), func.coalesce(func.sum(case((earlier.c.profile_id.in_(now), 0), else_=1)), 0))
    with db.read() as session:
        buyers, churned = session.execute(stmt.select_from(earlier)).one()
    rate = int(churned) / int(buyers) if buyers else None
    return Dataset("churn", columns, [(period, int(buyers), int(churned), rate)])
