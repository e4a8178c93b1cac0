"""The Insight pages' charts, by page: what /insight/... shows and /api/v1/insight/... returns.

One place decides which datasets a page holds, so the page, its JSON twin and its exports agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

from threadline.accounts import Viewer
from threadline.analytics.cohorts import churn_rate, retention_cohorts
from threadline.analytics.consistency import ConsistencyReport, consistency_report
from threadline.analytics.dataset import Dataset
from threadline.analytics.funnels import funnel
from threadline.analytics.metrics import (
    cac_by_channel,
    customer_counts,
    customers_by_channel,
    customers_by_source,
    engagement_by_channel,
    revenue_by_channel,
    revenue_by_month,
    revenue_summary,
    service_times,
    survey_trends,
)
from threadline.analytics.portrait_snapshots import portrait_datasets, stored_portrait
from threadline.analytics.rollup_reads import one_page
from threadline.analytics.scope import InsightFilters
from threadline.errors import Invalid
from threadline.storage import Database
from threadline.storage.models import Segment

PAGES = ("overview", "funnel", "cohorts", "consistency", "portrait")
DEFAULT_DAYS = 90
DEFAULT_FUNNEL = ("Product Viewed", "Product Added", "Order Completed")
OVERVIEW: tuple[Callable[[Database, Viewer, InsightFilters], Dataset], ...] = (
    customer_counts,
    customers_by_channel,
    customers_by_source,
    engagement_by_channel,
    revenue_summary,
    revenue_by_month,
    revenue_by_channel,
    churn_rate,
    cac_by_channel,
    survey_trends,
    service_times,
)


def _day(params: Mapping[str, str], name: str) -> date | None:
    text = (params.get(name) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{name}: a date such as 2024-03-31", details={"field": name}) from None


def _id(params: Mapping[str, str], name: str, what: str) -> int | None:
    text = (params.get(name) or "").strip()
    if text and not text.isdigit():
        raise Invalid(f"{name}: {what}", details={"field": name})
    return int(text) if text else None


def filters_from(params: Mapping[str, str], today: date, db: Database | None = None) -> InsightFilters:
    """The filters of a page's or API call's query string: start, end (default: the last 90 days),
    channel, team (a team id), segment (a segment id; checked to exist when `db` is given)."""
    end = _day(params, "end") or today
    start = _day(params, "start") or InsightFilters.last_days(end, DEFAULT_DAYS).start
    team = _id(params, "team", "a team id")
    segment = _id(params, "segment", "a segment id")
    if segment is not None and db is not None:
        with db.read() as session:
            if session.get(Segment, segment) is None:
                raise Invalid(f"segment: no segment {segment}", details={"field": "segment"})
    channel = (params.get("channel") or "").strip() or None
    return InsightFilters(start, end, channel, team, segment).checked()


def funnel_steps(params: Mapping[str, str]) -> list[str]:
    text = params.get("steps") or ""
    return [s.strip() for s in text.split(",") if s.strip()] or list(DEFAULT_FUNNEL)


def page_datasets(
    db: Database, viewer: Viewer, page: str, filters: InsightFilters, params: Mapping[str, str]
) -> dict[str, Dataset]:
    """Every chart of `page` by name."""
    if page == "overview":
        with one_page():
            return {d.name: d for d in (chart(db, viewer, filters) for chart in OVERVIEW)}
    if page == "funnel":
        by_channel = params.get("by_channel") in ("1", "true", "on")
        return {"funnel": funnel(db, viewer, filters, funnel_steps(params), by_channel=by_channel)}
    if page == "cohorts":
        cohorts, churn = retention_cohorts(db, viewer, filters), churn_rate(db, viewer, filters)
        return {cohorts.name: cohorts, churn.name: churn}
    if page == "consistency":
        return report_datasets(consistency_report(db, viewer, filters))
    if page == "portrait":
        return stored_portrait(db, viewer, filters) or portrait_datasets(db, viewer, filters)
    raise Invalid(f"page: one of {', '.join(PAGES)}", details={"field": "page"})


def report_datasets(report: ConsistencyReport) -> dict[str, Dataset]:
    """The consistency report's tables: the summary (spread and weakest per view), then each view."""
    found = {b.groups.name: b.groups for b in report.breakdowns.values()}
    return {"consistency": report.summary(), **found}
