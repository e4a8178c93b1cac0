"""REST: the contact analysis reports (threadline.sales.reports) as JSON, within the caller's data scope.
Aggregates name no customer, so reading one needs no export permission; a file export (the page's
?format=csv|xlsx) does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from threadline.analytics import filters_from
from threadline.api.deps import CallerDep, DatabaseDep
from threadline.sales import sales_report

router = APIRouter(tags=["sales"])


@router.get(
    "/api/v1/sales/reports/{name}",
    summary="A contact analysis report: ?start=&end=&team=&period=week|month (docs/sales.md)",
)
def get_report(name: str, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    params = dict(request.query_params)
    now = request.app.state.clock()
    filters = filters_from(params, now.date())
    data = sales_report(db, caller.viewer, name, filters, period=params.get("period") or "month", now=now)
    return {
        "report": data.as_json(),
        "filters": {"start": filters.start, "end": filters.end, "team": filters.team_id},
    }
