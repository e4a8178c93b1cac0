"""The dashboard's KPIs: customers, engagement by channel, revenue, CAC and CLV:CAC, CSAT/CES/NPS.

Each function answers one chart with one SQL query that aggregates in the database (the page never
loops over events in Python) and returns a `Dataset`. Definitions are in docs/analytics.md
(Dashboards); a change here changes them there. Funnels and cohorts live in funnels.py and cohorts.py.

Indexes: event charts filter on `events.timestamp` and, with an agent's or team's scope, join profiles
through their primary key; customer counts read `profiles` through ix_profiles_live_last_seen (live
profiles, with the owner an agent's scope tests). Order and survey charts filter on `events.name`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, distinct, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from threadline.accounts import Viewer
from threadline.analytics import first_seen, rollup_charts
from threadline.analytics.dataset import Dataset
from threadline.analytics.expressions import day_of, month_of
from threadline.analytics.measures import (
    APP_OPENED,
    EMAIL_CLICKED,
    EMAIL_OPENED,
    EMAIL_SENT,
    MESSAGES,
    ORDER_EVENTS,
    revenue_of,
)
from threadline.analytics.rollup_reads import RollupView, rollup_view, survey_sums
from threadline.analytics.scope import InsightFilters, customer_scope, scoped_events
from threadline.analytics.surveys import SURVEY_EVENT, answer_counts, on_scale, survey_kind, survey_value
from threadline.service import MetricsQuery, service_metrics
from threadline.storage import Database
from threadline.storage.models import Event, MarketingSpend, Profile, Source

SERVICE_NOTE = "no service conversations in these dates"


def _view(db: Database, viewer: Viewer, filters: InsightFilters) -> RollupView | None:
    """The range's daily rollups, or None when the chart must read the events (rollup_reads.py)."""
    return rollup_view(db, viewer, filters, since=filters.start, until=_day_after(filters.end))


def _day_after(day: date) -> date:
    return day + timedelta(days=1)


def customer_counts(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """Total (first seen by the end of the range), new (first seen within it) and active (with an event
    within it) customers."""
    filters = filters.checked()
    as_of: datetime | None = None
    if filters.channel:  # customers seen on the channel: their channels, per day of first sight
        total, new, as_of = first_seen.seen_on(db, viewer, filters, filters.channel)
    else:
        counted = select(func.count()).select_from(Profile).where(customer_scope(viewer, filters))
        in_total = counted.where(Profile.first_seen < filters.until).scalar_subquery()
        in_range = counted.where(
            Profile.first_seen >= filters.since, Profile.first_seen < filters.until
        ).scalar_subquery()
        with db.read() as session:
            total, new = session.execute(select(in_total, in_range)).one()
    view = _view(db, viewer, filters)
    if view is not None:
        active = rollup_charts.active(view)
    else:
        stmt = scoped_events(select(func.count(distinct(Event.profile_id))), viewer, filters)
        with db.read() as session:
            active = int(session.scalar(stmt) or 0)
    rows = [("total", total), ("new", new), ("active", active)]
    return Dataset("customers", ("measure", "customers"), rows, as_of=as_of)


def customers_by_channel(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """Customers with at least one event on each channel within the range (one customer may count on
    several channels)."""
    filters = filters.checked()
    if (view := _view(db, viewer, filters)) is not None:
        ranked = sorted(rollup_charts.customers_by(view, "channel"), key=lambda r: (-r[1], str(r[0])))
        return Dataset("customers_by_channel", ("channel", "customers"), list(ranked))
    customers = func.count(distinct(Event.profile_id))
    stmt = scoped_events(select(Event.channel, customers), viewer, filters).group_by(Event.channel)
    with db.read() as session:
        rows = session.execute(stmt.order_by(customers.desc(), Event.channel)).all()
    return Dataset("customers_by_channel", ("channel", "customers"), [tuple(r) for r in rows])


def customers_by_source(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """Customers with at least one event from each source (a website, a store's POS export...)."""
    filters = filters.checked()
    if (view := _view(db, viewer, filters)) is not None:
        with db.read() as session:
            names = {int(i): str(n) for i, n in session.execute(select(Source.id, Source.name))}
        named = [
            (names.get(int(str(s)), str(s)), n) for s, n in rollup_charts.customers_by(view, "source_id")
        ]
        return Dataset(
            "customers_by_source", ("source", "customers"), sorted(named, key=lambda r: (-r[1], r[0]))
        )
    customers = func.count(distinct(Event.profile_id))
    stmt = select(Source.name, customers).select_from(Event).join(Source, Source.id == Event.source_id)
    stmt = scoped_events(stmt, viewer, filters).group_by(Source.name)
    with db.read() as session:
        rows = session.execute(stmt.order_by(customers.desc(), Source.name)).all()
    return Dataset("customers_by_source", ("source", "customers"), [tuple(r) for r in rows])


def _count_of(names: tuple[str, ...]) -> ColumnElement[int]:
    return func.sum(case((Event.name.in_(names), 1), else_=0))


def engagement_by_channel(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """Per channel: sessions (a customer active on a channel on a day), page views, screen views, app
    opens, emails sent/opened/clicked, messages, and all events."""
    filters = filters.checked()
    columns = (
        "channel", "sessions", "page_views", "screen_views", "app_opens",
        "emails_sent", "emails_opened", "emails_clicked", "messages", "events",
    )  # fmt: skip
    if (view := _view(db, viewer, filters)) is not None:
        return Dataset("engagement_by_channel", columns, rollup_charts.engagement(view))
    dialect = db.dialect
    sessions = func.count(
        distinct(Event.profile_id.concat(literal("|")).concat(day_of(dialect, Event.timestamp)))
    )
    stmt = select(
        Event.channel,
        sessions,
        func.sum(case((Event.type == "page", 1), else_=0)),
        func.sum(case((Event.type == "screen", 1), else_=0)),
        _count_of(APP_OPENED),
        _count_of(EMAIL_SENT),
        _count_of(EMAIL_OPENED),
        _count_of(EMAIL_CLICKED),
        _count_of(MESSAGES),
        func.count(),
    )
    stmt = scoped_events(stmt, viewer, filters).group_by(Event.channel).order_by(Event.channel)
    with db.read() as session:
        rows = session.execute(stmt).all()
    return Dataset(
        "engagement_by_channel", columns, [tuple(int(v) if i else v for i, v in enumerate(r)) for r in rows]
    )


def revenue_summary(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """Revenue, orders, buyers, average order value (revenue / orders), ARPU (revenue / active
    customers) and the share of buyers who ordered on more than one channel, within the range."""
    filters = filters.checked()
    if (view := _view(db, viewer, filters)) is not None:
        orders, revenue = rollup_charts.orders_revenue(view.days)
        buyers, multi = rollup_charts.buyer_summary(view)
        return _revenue_summary(revenue, orders, buyers, multi, rollup_charts.active(view))
    per_buyer = (
        scoped_events(
            select(
                Event.profile_id,
                func.count().label("orders"),
                func.sum(revenue_of(db.dialect)).label("revenue"),
                func.count(distinct(Event.channel)).label("channels"),
            ),
            viewer,
            filters,
            names=ORDER_EVENTS,
        )
        .group_by(Event.profile_id)
        .subquery()
    )
    active = scoped_events(select(func.count(distinct(Event.profile_id))), viewer, filters).scalar_subquery()
    stmt = select(
        func.coalesce(func.sum(per_buyer.c.revenue), 0.0),
        func.coalesce(func.sum(per_buyer.c.orders), 0),
        func.count(),
        func.coalesce(func.sum(case((per_buyer.c.channels > 1, 1), else_=0)), 0),
        active,
    ).select_from(per_buyer)
    with db.read() as session:
        revenue, orders, buyers, multi, active_count = session.execute(stmt).one()
    return _revenue_summary(float(revenue), int(orders), int(buyers), int(multi), int(active_count))


def _revenue_summary(revenue: float, orders: int, buyers: int, multi: int, active_count: int) -> Dataset:
    rows = [
        ("revenue", revenue),
        ("orders", orders),
        ("buyers", buyers),
        ("average_order_value", revenue / orders if orders else None),
        ("arpu", revenue / active_count if active_count else None),
        ("multi_channel_buyer_share", multi / buyers if buyers else None),
    ]
    return Dataset("revenue", ("measure", "value"), rows)


def revenue_by_month(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    filters = filters.checked()
    columns = ("month", "orders", "revenue", "average_order_value")
    if (view := _view(db, viewer, filters)) is not None:
        totals = rollup_charts.revenue_by(view.days, "month")
        months = sorted(totals.items(), key=lambda t: str(t[0]))
        return Dataset("revenue_by_month", columns, [(m, n, r, r / n) for m, (n, r) in months])
    month = month_of(db.dialect, Event.timestamp)
    revenue = func.sum(revenue_of(db.dialect))
    stmt = scoped_events(select(month, func.count(), revenue), viewer, filters, names=ORDER_EVENTS)
    with db.read() as session:
        rows = session.execute(stmt.group_by(month).order_by(month)).all()
    return Dataset("revenue_by_month", columns, [(m, int(n), float(r), float(r) / n) for m, n, r in rows])


def revenue_by_channel(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    filters = filters.checked()
    columns = ("channel", "orders", "revenue", "average_order_value")
    if (view := _view(db, viewer, filters)) is not None:
        totals = rollup_charts.revenue_by(view.days, "channel")
        by_revenue = sorted(totals.items(), key=lambda t: (-t[1][1], str(t[0])))
        return Dataset("revenue_by_channel", columns, [(c, n, r, r / n) for c, (n, r) in by_revenue])
    revenue = func.sum(revenue_of(db.dialect))
    stmt = scoped_events(select(Event.channel, func.count(), revenue), viewer, filters, names=ORDER_EVENTS)
    with db.read() as session:
        rows = session.execute(stmt.group_by(Event.channel).order_by(revenue.desc())).all()
    return Dataset("revenue_by_channel", columns, [(c, int(n), float(r), float(r) / n) for c, n, r in rows])


def cac_by_channel(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """Per channel: marketing spend within the range, customers acquired on it, CAC (spend / acquired),
    their average 12-month CLV where clv_12m scores exist, and CLV:CAC."""
    filters = filters.checked()
    customers, as_of = first_seen.acquired_by_channel(db, viewer, filters)
    spent = (
        select(MarketingSpend.channel, MarketingSpend.currency, func.sum(MarketingSpend.amount))
        .where(
            MarketingSpend.day >= filters.start,
            MarketingSpend.day <= filters.end,
        )
        .group_by(MarketingSpend.channel, MarketingSpend.currency)
    )
    if filters.channel:
        spent = spent.where(MarketingSpend.channel == filters.channel)
    with db.read() as session:
        spend = {c: (cur, float(amount)) for c, cur, amount in session.execute(spent)}
    rows = []
    for channel in sorted(set(customers) | set(spend)):
        got = customers.get(channel, first_seen.Acquired())
        currency, amount = spend.get(channel, ("", 0.0))
        cac = amount / got.customers if got.customers and channel in spend else None
        average_clv = got.average_clv
        ratio = average_clv / cac if average_clv is not None and cac else None
        rows.append((channel, currency, amount, got.customers, cac, average_clv, ratio))
    note = None if any(r[5] is not None for r in rows) else "CLV not computed yet (clv_12m scores)"
    columns = ("channel", "currency", "spend", "new_customers", "cac", "average_clv_12m", "clv_to_cac")
    return Dataset("cac_by_channel", columns, rows, note, as_of=as_of)


def survey_trends(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """CSAT, NPS and CES per month (surveys.py defines each)."""
    filters = filters.checked()
    sums = survey_sums(db, viewer, filters)
    if sums is not None:
        found = [
            (m, k, int(n), survey_value(k, int(n), float(s), int(sat), int(p), int(d)))
            for (m, k), (n, s, sat, p, d) in sorted(sums.items())
            if n
        ]
        return Dataset("surveys", ("month", "survey", "responses", "value"), found, _no_surveys(found))
    dialect = db.dialect
    month, kind = month_of(dialect, Event.timestamp), survey_kind(dialect)
    stmt = scoped_events(select(month, kind, *answer_counts(dialect)), viewer, filters, names=(SURVEY_EVENT,))
    stmt = stmt.where(on_scale(dialect)).group_by(month, kind).order_by(month, kind)
    with db.read() as session:
        rows = session.execute(stmt).all()
    out = [
        (m, k, int(n), survey_value(k, int(n), float(s), int(sat), int(p), int(d)))
        for m, k, n, s, sat, p, d in rows
    ]
    return Dataset("surveys", ("month", "survey", "responses", "value"), out, _no_surveys(out))


def _no_surveys(rows: list[Any]) -> str | None:
    return None if rows else 'no survey answers yet ("Survey Answered" events)'


def service_times(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """First response time (median minutes), resolution time (median hours) and first-contact resolution
    (%) of the conversations opened in the range, per channel with an "all" row; with a team filter, that
    team's row; with a segment filter, its members' conversations. Computed by threadline.service's
    metrics, within the viewer's data scope, so the Insight chart and the Service metrics page agree."""
    filters = filters.checked()
    start = datetime.combine(filters.start, time())
    end = datetime.combine(filters.end + timedelta(days=1), time())
    by = "team" if filters.team_id is not None else "channel"
    query = MetricsQuery(start, end, by=by, interval="month", segment_id=filters.segment_id)
    report = service_metrics(db, viewer, query, now=end)

    def row(key: str, summary: dict[str, Any]) -> tuple[Any, ...]:
        resolution = summary["resolution_median_minutes"]
        return (
            key,
            summary["conversations"],
            summary["first_response_median_minutes"],
            None if resolution is None else round(resolution / 60, 1),
            summary["first_contact_resolution"],
        )

    if filters.team_id is not None:
        rows = [row(g["label"], g) for g in report.groups if g["key"] == str(filters.team_id)]
    elif filters.channel:
        rows = [row(g["key"], g) for g in report.groups if g["key"] == filters.channel]
    else:
        rows = [row(g["key"], g) for g in report.groups]
        if rows:
            rows.insert(0, row("all", report.overall))
    return Dataset(
        "service_times",
        (by, "conversations", "first_response_minutes", "resolution_hours", "first_contact_resolution"),
        rows,
        None if rows else SERVICE_NOTE,
    )
