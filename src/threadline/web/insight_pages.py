"""Insight: the dashboard, funnels, cohorts, the consistency report and the customer portrait.

Every signed-in user sees them, counted within their own data scope (an agent's dashboard is about
their customers). Each chart is drawn in the browser by static/insight.js from the JSON in its
`data-chart` attribute (no inline script: the pages' CSP allows scripts from 'self' only), and each
chart's data downloads as CSV or XLSX from the same URL with ?format=csv|xlsx&chart=NAME. Aggregates
name no customer, so downloading needs no export permission.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from threadline.accounts import UserInfo, list_teams, viewer_for
from threadline.analytics import (
    SNAPSHOT_NOTE,
    Dataset,
    InsightFilters,
    consistency_report,
    filters_from,
    funnel_steps,
    page_datasets,
    report_datasets,
    sentiment_dataset,
)
from threadline.errors import Invalid
from threadline.segments import list_segments
from threadline.web.downloads import MEDIA, dataset_file
from threadline.web.i18n import CHANNEL_NAMES, N_, localization
from threadline.web.render import render
from threadline.web.session import WebUser

router = APIRouter(include_in_schema=False)
PAGE_PATHS = {
    "overview": "/insight",
    "funnel": "/insight/funnel",
    "cohorts": "/insight/cohorts",
    "consistency": "/insight/consistency",
    "portrait": "/insight/portrait",
}
TITLES = {
    "customers": N_("Customers"),
    "customers_by_channel": N_("Customers by channel"),
    "customers_by_source": N_("Customers by source"),
    "engagement_by_channel": N_("Engagement by channel"),
    "revenue": N_("Revenue"),
    "revenue_by_month": N_("Revenue by month"),
    "revenue_by_channel": N_("Revenue by channel"),
    "churn": N_("Churn"),
    "cac_by_channel": N_("Customer acquisition cost by channel"),
    "surveys": N_("CSAT, NPS and CES"),
    "service_times": N_("First response and resolution time"),
    "funnel": N_("Conversion funnel"),
    "cohorts": N_("Retention by first-purchase month"),
    "consistency": N_("Spread and weakest group per view"),
    "consistency_by_month": N_("Experience by month"),
    "consistency_by_channel": N_("Experience by channel"),
    "consistency_by_customer_age": N_("Experience of new and long-standing customers"),
    "consistency_by_tier": N_("Experience by tier"),
    "consistency_by_team": N_("Experience by team"),
    "sentiment_by_channel": N_("Sentiment of customers' words by channel"),
    "portrait_favourite_channel": N_("Favourite channel"),
    "portrait_price_sensitivity": N_("Price sensitivity"),
    "portrait_purchase_frequency": N_("Purchase frequency"),
    "portrait_value_tier": N_("Value tier"),
    "portrait_lifecycle_stage": N_("Lifecycle stage"),
    "portrait_by_industry": N_("By industry"),
    "portrait_by_region": N_("By region"),
    "portrait_by_city": N_("By city"),
    "portrait_by_tier": N_("By level"),
    "portrait_by_source": N_("By source"),
}
COLUMN_NAMES = {
    "customers": N_("Customers"),
    "conversations": N_("Conversations"),
    "first_response_minutes": N_("First response (median minutes)"),
    "resolution_hours": N_("Resolution (median hours)"),
    "first_contact_resolution": N_("First-contact resolution (%)"),
    "sessions": N_("Sessions"),
    "page_views": N_("Page views"),
    "app_opens": N_("App opens"),
    "emails_sent": N_("Emails sent"),
    "emails_opened": N_("Emails opened"),
    "emails_clicked": N_("Emails clicked"),
    "messages": N_("Messages"),
    "revenue": N_("Revenue"),
    "orders": N_("Orders"),
    "cac": N_("CAC"),
    "experience": N_("Experience (0-100)"),
    "retained_share": N_("Retained"),
    "negative_share": N_("Negative"),
    "neutral_share": N_("Neutral"),
    "positive_share": N_("Positive"),
}
MEASURE_NAMES = {
    "total": N_("Total"),
    "new": N_("New"),
    "active": N_("Active"),
    "revenue": N_("Revenue"),
    "orders": N_("Orders"),
    "buyers": N_("Buyers"),
    "average_order_value": N_("Average order value"),
    "arpu": N_("ARPU"),
    "multi_channel_buyer_share": N_("Buyers on more than one channel"),
}
# Tag values and group names as the charts label them (analytics/portrait.py, consistency.py).
VALUE_NAMES = {
    "new": N_("new"),
    "prospect": N_("prospect"),
    "active": N_("active"),
    "at risk": N_("at risk"),
    "lapsed": N_("lapsed"),
    "high": N_("high"),
    "medium": N_("medium"),
    "low": N_("low"),
    "unknown": N_("unknown"),
    "none": N_("none"),
    "one-off": N_("one-off"),
    "occasional": N_("occasional"),
    "frequent": N_("frequent"),
    "long-standing": N_("long-standing"),
    "no team": N_("no team"),
    "all": N_("all channels"),
}
VIEW_NAMES = {
    "month": N_("month"),
    "channel": N_("channel"),
    "customer_age": N_("customer age"),
    "tier": N_("tier"),
    "team": N_("team"),
}
NOTES = {
    "service_times": N_("No service conversations were opened in these dates."),
    "surveys": N_("No survey answers yet: they come from events named “Survey Answered”."),
    "cac_by_channel": N_("CLV not computed yet: CLV:CAC appears once the CLV model has run."),
}
EMPTY = N_("No data for these filters.")
# name -> (chart type, label column, value columns); "pivot" charts draw a series per value of a column.
CHARTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "customers_by_channel": ("bar", "channel", ("customers",)),
    "customers_by_source": ("bar", "source", ("customers",)),
    "engagement_by_channel": (
        "bar",
        "channel",
        ("sessions", "page_views", "app_opens", "emails_sent", "emails_opened", "emails_clicked", "messages"),
    ),
    "revenue_by_month": ("line", "month", ("revenue",)),
    "revenue_by_channel": ("bar", "channel", ("revenue",)),
    "cac_by_channel": ("bar", "channel", ("cac",)),
    "consistency_by_month": ("line", "group", ("experience",)),
    "consistency_by_channel": ("bar", "group", ("experience",)),
    "consistency_by_customer_age": ("bar", "group", ("experience",)),
    "consistency_by_tier": ("bar", "group", ("experience",)),
    "consistency_by_team": ("bar", "group", ("experience",)),
    "sentiment_by_channel": ("bar", "channel", ("negative_share", "neutral_share", "positive_share")),
}
PIVOTS = {"surveys": ("month", "survey", "value"), "funnel": ("event", "channel", "customers")}
KPIS = ("customers", "revenue", "churn")


def _spec(name: str, data: Dataset, label: Callable[[str], str]) -> str | None:
    """The chart's JSON for static/insight.js, or None when it is drawn as a table or has no rows."""
    if not data.rows:
        return None
    if name in PIVOTS:
        x, series, value = PIVOTS[name]
        labels = list(dict.fromkeys(data.column(x)))
        groups: dict[str, dict[Any, Any]] = {}
        for record in data.records():
            groups.setdefault(str(record[series]), {})[record[x]] = record[value]
        sets = [{"label": label(g), "data": [by.get(x_) for x_ in labels]} for g, by in groups.items()]
        return json.dumps(
            {"type": "line" if name == "surveys" else "bar", "labels": labels, "datasets": sets}
        )
    values: tuple[str, ...]
    if name.startswith("portrait_"):
        kind, x, values = "bar", data.columns[0], ("customers",)
    elif name in CHARTS:
        kind, x, values = CHARTS[name]
    else:
        return None
    sets = [{"label": label(v), "data": data.column(v)} for v in values]
    return json.dumps({"type": kind, "labels": [label(str(v)) for v in data.column(x)], "datasets": sets})


def _query(request: Request, **changes: str) -> str:
    kept = {k: v for k, v in request.query_params.items() if k not in ("format", "chart") and v}
    return urlencode({**kept, **changes})


def _page(request: Request, user: UserInfo, page: str) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    params = dict(request.query_params)
    today = request.app.state.clock().date()
    l10n = localization(request, user)

    def label(key: str) -> str:
        english = COLUMN_NAMES.get(key) or CHANNEL_NAMES.get(key) or VALUE_NAMES.get(key) or key
        return l10n.gettext(english)

    error, report = None, None
    try:
        filters = filters_from(params, today, db)
        if page == "consistency":
            report = consistency_report(db, viewer, filters)
            sentiment = sentiment_dataset(db, viewer, filters)
            datasets = {**report_datasets(report), sentiment.name: sentiment}
        else:
            datasets = page_datasets(db, viewer, page, filters, params)
    except Invalid as problem:
        error, filters, datasets = problem.message, InsightFilters.last_days(today), {}
    fmt, chart = params.get("format"), params.get("chart", "")
    if fmt in MEDIA and error is None:
        if chart not in datasets:
            return render(request, "not_found.html", 404, user=user)
        return dataset_file(datasets[chart], fmt)
    charts = [
        {
            "name": name,
            "title": TITLES.get(name, name),
            "data": data,
            "spec": _spec(name, data, label),
            "note": NOTES.get(name) if (not data.rows or data.note) else None,
            "csv": f"?{_query(request, format='csv', chart=name)}",
            "xlsx": f"?{_query(request, format='xlsx', chart=name)}",
        }
        for name, data in datasets.items()
    ]
    return render(
        request,
        f"insight_{page}.html",
        400 if error else 200,
        user=user,
        page=page,
        paths=PAGE_PATHS,
        charts={c["name"]: c for c in charts},
        filters=filters,
        teams=list_teams(db),
        channels=CHANNEL_NAMES,
        titles=TITLES,
        measures=MEASURE_NAMES,
        views=VIEW_NAMES,
        kpis=KPIS,
        empty=EMPTY,
        segments=[(view.id, view.name) for view, _ in list_segments(db, viewer)],
        steps=", ".join(funnel_steps(params)),
        by_channel=params.get("by_channel") in ("1", "true", "on"),
        report=report,
        error=error,
        snapshot=_snapshot(datasets) if page == "portrait" else None,
    )


def _snapshot(datasets: dict[str, Dataset]) -> str | None:
    """When the portrait page came from the daily snapshot: its "as of ..." moment."""
    notes = {d.note for d in datasets.values()}
    note = notes.pop() if len(notes) == 1 else None
    if not note or not note.startswith(SNAPSHOT_NOTE):
        return None
    return note.removeprefix(SNAPSHOT_NOTE).split(" (")[0].strip()


@router.get("/insight")
def insight_overview(request: Request, user: WebUser) -> Response:
    return _page(request, user, "overview")


@router.get("/insight/funnel")
def insight_funnel(request: Request, user: WebUser) -> Response:
    return _page(request, user, "funnel")


@router.get("/insight/cohorts")
def insight_cohorts(request: Request, user: WebUser) -> Response:
    return _page(request, user, "cohorts")


@router.get("/insight/consistency")
def insight_consistency(request: Request, user: WebUser) -> Response:
    return _page(request, user, "consistency")


@router.get("/insight/portrait")
def insight_portrait(request: Request, user: WebUser) -> Response:
    return _page(request, user, "portrait")
