"""Contact analysis reports: customers over time, follow-ups by method, employee and team, conversion
lead -> customer -> won deal, the sales funnel, the deal cycle, the customer portrait and "forgotten"
customers. Each report is one SQL statement within the viewer's sales scope (`owner_filter`), narrowed
to a team's members by the team filter, and comes back as an analytics `Dataset` so the page, the API
and the CSV/XLSX writers share one shape.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal_column, select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.analytics import Dataset, InsightFilters
from threadline.errors import Invalid
from threadline.sales.scope import owner_filter
from threadline.storage import Database
from threadline.storage.models import Deal, FollowUp, Lead, Pipeline, SalesAccount, Team, User

PERIODS = ("week", "month")
FORGOTTEN_DAYS = (7, 15, 30, 90)
PORTRAIT_FIELDS = ("industry", "region", "source", "level")


def _quoted(text: str) -> Any:
    # Written as a literal, not bound: PostgreSQL would see GROUP BY to_char(t, $2) as a different
    # expression from the selected to_char(t, $1) (as threadline.analytics.expressions explains).
    return literal_column("'" + text.replace("'", "''") + "'")


def _period_of(dialect: str, period: str, column: Any) -> ColumnElement[str]:
    """'2026-03' for a month, the Monday '2026-03-02' for a (ISO) week, as text on both databases."""
    if dialect == "postgresql":
        if period == "week":
            return func.to_char(func.date_trunc(_quoted("week"), column), _quoted("YYYY-MM-DD"))
        return func.to_char(column, _quoted("YYYY-MM"))
    if period == "week":
        # The Monday on or before: back six days, then forward to the next Monday.
        return func.date(column, _quoted("-6 days"), _quoted("weekday 1"))
    return func.strftime(_quoted("%Y-%m"), column)


def _days_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.date_part(_quoted("epoch"), later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _in_scope(viewer: Viewer, filters: InsightFilters, owner_column: Any) -> ColumnElement[bool]:
    """The viewer's data scope, then the team filter: owners who are members of that team."""
    condition = owner_filter(viewer, owner_column)
    if filters.team_id is not None:
        members = select(User.id).where(User.team_id == filters.team_id)
        condition = and_(condition, owner_column.in_(members))
    return condition


def _count(column: Any) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((column, 1), else_=0)), 0)


def new_customers(session: Session, viewer: Viewer, filters: InsightFilters, period: str) -> Dataset:
    """Accounts created per week or month of the range, and the running total of accounts (those created
    before the range count in the first period's total). Deleted accounts are not counted."""
    dialect = session.get_bind().dialect.name
    bucket = case(
        (SalesAccount.created_at < filters.since, _quoted("")),
        else_=_period_of(dialect, period, SalesAccount.created_at),
    )
    rows = session.execute(
        select(bucket, func.count())
        .where(SalesAccount.created_at < filters.until, _in_scope(viewer, filters, SalesAccount.owner_id))
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    total, out = 0, []
    for key, count in rows:
        total += int(count)
        if key:
            out.append((str(key), int(count), total))
    return Dataset("new_customers", (period, "new_customers", "total_customers"), out)


def _follow_ups(
    session: Session, viewer: Viewer, filters: InsightFilters, label: Any, name: str, column: str
) -> Dataset:
    stmt = select(label, func.count()).select_from(FollowUp)
    if name != "follow_ups_by_method":
        stmt = stmt.outerjoin(User, User.id == FollowUp.owner_id)
    if name == "follow_ups_by_team":
        stmt = stmt.outerjoin(Team, Team.id == User.team_id)
    rows = session.execute(
        stmt.where(
            FollowUp.created_at >= filters.since,
            FollowUp.created_at < filters.until,
            _in_scope(viewer, filters, FollowUp.owner_id),
        )
        .group_by(label)
        .order_by(func.count().desc(), label)
    ).all()
    return Dataset(name, (column, "follow_ups"), [(key, int(count)) for key, count in rows])


def follow_ups_by_method(session: Session, viewer: Viewer, filters: InsightFilters, period: str) -> Dataset:
    """Follow-ups logged in the range (not the automatic ones read from the timeline), per method."""
    return _follow_ups(session, viewer, filters, FollowUp.method, "follow_ups_by_method", "method")


def follow_ups_by_employee(session: Session, viewer: Viewer, filters: InsightFilters, period: str) -> Dataset:
    """Per employee: the follow-up's owner (the record's owner when it was logged)."""
    label = func.coalesce(User.email, _quoted(""))
    return _follow_ups(session, viewer, filters, label, "follow_ups_by_employee", "employee")


def follow_ups_by_team(session: Session, viewer: Viewer, filters: InsightFilters, period: str) -> Dataset:
    """Per team of the follow-up's owner; '' for owners in no team."""
    label = func.coalesce(Team.name, _quoted(""))
    return _follow_ups(session, viewer, filters, label, "follow_ups_by_team", "team")


def conversion(session: Session, viewer: Viewer, filters: InsightFilters, period: str) -> Dataset:
    """Of the leads created in the range: how many became customers (converted), and how many of those
    customers have a won deal (at any time since). Rates are of the step before and of all leads."""
    won = exists().where(Deal.account_id == Lead.converted_account_id, Deal.status == "won")
    converted = Lead.converted_at.is_not(None)
    leads, customers, winners = session.execute(
        select(func.count(), _count(converted), _count(and_(converted, won))).where(
            Lead.created_at >= filters.since,
            Lead.created_at < filters.until,
            _in_scope(viewer, filters, Lead.owner_id),
        )
    ).one()
    steps = [("leads", int(leads)), ("customers", int(customers)), ("won_deals", int(winners))]
    rows = []
    for at, (step, count) in enumerate(steps):
        before = steps[at - 1][1] if at else count
        rows.append((step, count, _rate(count, before), _rate(count, steps[0][1])))
    return Dataset("conversion", ("step", "count", "rate", "rate_of_leads"), rows)


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part * 100 / whole, 1)


def funnel(session: Session, viewer: Viewer, filters: InsightFilters, period: str) -> Dataset:
    """Deals created in the range and open now, per pipeline stage (every stage of each pipeline that has
    one), with the amount and the weighted amount (amount × the stage's win probability). Amounts of
    different currencies are added as they are, like the board does."""
    rows = session.execute(
        select(Deal.pipeline_id, Deal.stage, func.count(), func.coalesce(func.sum(Deal.amount), 0))
        .where(
            Deal.status == "open",
            Deal.created_at >= filters.since,
            Deal.created_at < filters.until,
            _in_scope(viewer, filters, Deal.owner_id),
        )
        .group_by(Deal.pipeline_id, Deal.stage)
    ).all()
    found = {(p, s): (int(n), Decimal(str(total))) for p, s, n, total in rows}
    pipelines = session.scalars(
        select(Pipeline).where(Pipeline.id.in_(sorted({p for p, _ in found}))).order_by(Pipeline.id)
    ).all()
    out = []
    for pipeline in pipelines:
        for stage in pipeline.stages:
            count, amount = found.get((pipeline.id, stage["key"]), (0, Decimal(0)))
            weighted = amount * Decimal(stage["probability"]) / 100
            out.append(
                (
                    pipeline.name,
                    stage["name"],
                    int(stage["probability"]),
                    count,
                    float(amount),
                    float(weighted),
                )
            )
    return Dataset("funnel", ("pipeline", "stage", "probability", "deals", "amount", "weighted_amount"), out)


def deal_cycle(session: Session, viewer: Viewer, filters: InsightFilters, period: str) -> Dataset:
    """Days from a deal's creation to its win, for deals won in the range: count, mean and median. The
    median is not portable SQL, so the one statement returns each won deal's days (numbers only)."""
    dialect = session.get_bind().dialect.name
    days = [
        float(d)
        for d in session.scalars(
            select(_days_between(dialect, Deal.closed_at, Deal.created_at)).where(
                Deal.status == "won",
                Deal.closed_at >= filters.since,
                Deal.closed_at < filters.until,
                _in_scope(viewer, filters, Deal.owner_id),
            )
        )
    ]
    mean = round(statistics.fmean(days), 1) if days else None
    median = round(statistics.median(days), 1) if days else None
    return Dataset(
        "deal_cycle",
        ("measure", "value"),
        [("won_deals", len(days)), ("mean_days", mean), ("median_days", median)],
    )


def _portrait(field: str) -> Callable[[Session, Viewer, InsightFilters, str], Dataset]:
    def report(session: Session, viewer: Viewer, filters: InsightFilters, period: str) -> Dataset:
        column = getattr(SalesAccount, field)
        label = func.coalesce(column, _quoted(""))
        rows = session.execute(
            select(label, func.count())
            .where(SalesAccount.created_at < filters.until, _in_scope(viewer, filters, SalesAccount.owner_id))
            .group_by(label)
            .order_by(func.count().desc(), label)
        ).all()
        return Dataset(f"portrait_by_{field}", (field, "customers"), [(k, int(n)) for k, n in rows])

    report.__doc__ = f"Accounts created by the end of the range, by {field} ('' when not set)."
    return report


def forgotten(
    session: Session, viewer: Viewer, filters: InsightFilters, period: str, now: datetime | None = None
) -> Dataset:
    """Owned accounts without a follow-up in the last 7, 15, 30 and 90 days, as of the end of the range
    (or now, when the range ends later). An account never followed up counts from its creation, so a new
    account is not forgotten on its first day; the pool's unowned accounts are nobody's to forget."""
    as_of = min(filters.until, now) if now is not None else filters.until
    since = func.coalesce(SalesAccount.last_follow_up_at, SalesAccount.created_at)
    counts = session.execute(
        select(*(_count(since < as_of - timedelta(days=d)) for d in FORGOTTEN_DAYS)).where(
            SalesAccount.owner_id.is_not(None),
            SalesAccount.created_at < as_of,
            _in_scope(viewer, filters, SalesAccount.owner_id),
        )
    ).one()
    return Dataset(
        "forgotten",
        ("days_without_follow_up", "customers"),
        [(d, int(n)) for d, n in zip(FORGOTTEN_DAYS, counts, strict=True)],
    )


REPORTS: dict[str, Callable[..., Dataset]] = {
    "new_customers": new_customers,
    "follow_ups_by_method": follow_ups_by_method,
    "follow_ups_by_employee": follow_ups_by_employee,
    "follow_ups_by_team": follow_ups_by_team,
    "conversion": conversion,
    "funnel": funnel,
    "deal_cycle": deal_cycle,
    **{f"portrait_by_{f}": _portrait(f) for f in PORTRAIT_FIELDS},
    "forgotten": forgotten,
}


def sales_report(
    db: Database,
    viewer: Viewer,
    name: str,
    filters: InsightFilters,
    *,
    period: str = "month",
    now: datetime | None = None,
) -> Dataset:
    """One report by name within the viewer's sales scope."""
    if name not in REPORTS:
        raise Invalid(f"report: one of {', '.join(REPORTS)}", details={"field": "report"})
    if period not in PERIODS:
        raise Invalid("period: week or month", details={"field": "period"})
    with db.read() as session:
        if name == "forgotten":
            return forgotten(session, viewer, filters, period, now)
        return REPORTS[name](session, viewer, filters, period)


def sales_reports(
    db: Database,
    viewer: Viewer,
    filters: InsightFilters,
    *,
    period: str = "month",
    now: datetime | None = None,
) -> dict[str, Dataset]:
    """Every report by name."""
    return {name: sales_report(db, viewer, name, filters, period=period, now=now) for name in REPORTS}
