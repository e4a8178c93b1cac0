"""The contact analysis reports page (/sales/reports): every report of threadline.sales.reports as a
chart and a table, with date range, team and period filters. Charts are drawn by static/insight.js from
each canvas's data-chart JSON (no inline script). ?report=NAME&format=csv|xlsx downloads one report: it
needs the export permission, like the sales lists' exports, and is audited with the report's name and
row count.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from threadline.accounts import list_teams, viewer_for
from threadline.analytics import Dataset, InsightFilters, filters_from
from threadline.errors import Invalid
from threadline.privacy import record
from threadline.sales import PERIODS, REPORTS, sales_reports
from threadline.web.auditing import actor_of
from threadline.web.downloads import MEDIA, dataset_file
from threadline.web.i18n import N_, localization
from threadline.web.render import render
from threadline.web.session import WebUser

router = APIRouter(include_in_schema=False)
TITLES = {
    "new_customers": N_("New customers and total customers"),
    "follow_ups_by_method": N_("Follow-ups by method"),
    "follow_ups_by_employee": N_("Follow-ups by employee"),
    "follow_ups_by_team": N_("Follow-ups by team"),
    "conversion": N_("Conversion: lead, customer, won deal"),
    "funnel": N_("Sales funnel by stage"),
    "deal_cycle": N_("Deal cycle (days from created to won)"),
    "portrait_by_industry": N_("Customers by industry"),
    "portrait_by_region": N_("Customers by region"),
    "portrait_by_source": N_("Customers by source"),
    "portrait_by_level": N_("Customers by level"),
    "forgotten": N_("Customers without a follow-up"),
}
# The reports' columns (threadline.sales' reports.py) as table headers and chart legends read them.
COLUMN_NAMES = {
    "week": N_("Week"),
    "month": N_("Month"),
    "new_customers": N_("New customers"),
    "total_customers": N_("Total customers"),
    "method": N_("Method"),
    "employee": N_("Employee"),
    "team": N_("Team"),
    "follow_ups": N_("Follow-ups"),
    "step": N_("Step"),
    "count": N_("Count"),
    "rate": N_("Rate"),
    "rate_of_leads": N_("Rate of leads"),
    "pipeline": N_("Pipeline"),
    "stage": N_("Stage"),
    "probability": N_("Win probability"),
    "deals": N_("Deals"),
    "amount": N_("Amount"),
    "weighted_amount": N_("Weighted amount"),
    "measure": N_("Measure"),
    "value": N_("Value"),
    "won_deals": N_("Won deals"),
    "mean_days": N_("Mean days"),
    "median_days": N_("Median days"),
    "industry": N_("Industry"),
    "region": N_("Region"),
    "source": N_("Source"),
    "level": N_("Level"),
    "days_without_follow_up": N_("Days without a follow-up"),
    "customers": N_("Customers"),
}
# name -> (chart type, label column, value columns); deal_cycle is a table only.
CHARTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "new_customers": ("bar", "", ("new_customers", "total_customers")),
    "follow_ups_by_method": ("bar", "method", ("follow_ups",)),
    "follow_ups_by_employee": ("bar", "employee", ("follow_ups",)),
    "follow_ups_by_team": ("bar", "team", ("follow_ups",)),
    "conversion": ("bar", "step", ("count",)),
    "funnel": ("bar", "stage", ("amount", "weighted_amount")),
    "portrait_by_industry": ("bar", "industry", ("customers",)),
    "portrait_by_region": ("bar", "region", ("customers",)),
    "portrait_by_source": ("bar", "source", ("customers",)),
    "portrait_by_level": ("bar", "level", ("customers",)),
    "forgotten": ("bar", "days_without_follow_up", ("customers",)),
}
NOT_SET = N_("Not set")
EMPTY = N_("No data for these filters.")


def _spec(name: str, data: Dataset, gettext: Any) -> str | None:
    if name not in CHARTS or not data.rows:
        return None
    kind, x, values = CHARTS[name]
    labels = [str(v) if v not in ("", None) else gettext(NOT_SET) for v in data.column(x or data.columns[0])]
    sets = [{"label": gettext(COLUMN_NAMES.get(v, v)), "data": data.column(v)} for v in values]
    return json.dumps({"type": kind, "labels": labels, "datasets": sets})


@router.get("/sales/reports")
def sales_reports_page(request: Request, user: WebUser) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    params = dict(request.query_params)
    now = request.app.state.clock()
    period = params.get("period") or "month"
    error = None
    try:
        if period not in PERIODS:
            raise Invalid("period: week or month", details={"field": "period"})
        filters = filters_from(params, now.date())
        reports = sales_reports(db, viewer, filters, period=period, now=now)
    except Invalid as problem:
        error, filters, period = problem.message, InsightFilters.last_days(now.date()), "month"
        reports = {}
    fmt, name = params.get("format"), params.get("report", "")
    if fmt in MEDIA and error is None:
        if name not in reports:
            return render(request, "not_found.html", 404, user=user)
        if not viewer.can("export"):
            return render(request, "account_forbidden.html", 403, user=user)
        data = reports[name]
        record(
            db,
            actor_of(request, user.id),
            "export",
            "sales_report",
            name,
            at=now,
            details={"via": "web", "count": len(data.rows), "format": fmt, "team": filters.team_id},
        )
        return dataset_file(data, fmt)
    kept = {k: v for k, v in params.items() if k not in ("format", "report") and v}

    gettext = localization(request, user).gettext
    cards = [
        {
            "name": n,
            "title": TITLES[n],
            "data": data,
            "spec": _spec(n, data, gettext),
            "csv": "?" + urlencode({**kept, "report": n, "format": "csv"}),
            "xlsx": "?" + urlencode({**kept, "report": n, "format": "xlsx"}),
        }
        for n, data in reports.items()
    ]
    return render(
        request,
        "sales_reports.html",
        400 if error else 200,
        user=user,
        cards=cards,
        filters=filters,
        period=period,
        teams=list_teams(db),
        can_export=viewer.can("export"),
        empty=EMPTY,
        not_set=NOT_SET,
        error=error,
        names=list(REPORTS),
        column_names=COLUMN_NAMES,
    )
