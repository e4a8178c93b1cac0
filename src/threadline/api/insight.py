"""REST: the Insight pages' data as JSON, within the caller's data scope.

GET /api/v1/insight/{page} with the pages' query parameters (start, end, channel, team; steps and
by_channel for the funnel) answers every chart of that page: its columns, rows and note.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request

from threadline.analytics import PAGES, filters_from, page_datasets
from threadline.api.deps import CallerDep, DatabaseDep
from threadline.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["insight"])


@router.get(
    "/insight/{page}",
    summary="The charts of an Insight page (overview, funnel, cohorts, consistency, portrait) as tables",
)
def get_insight(
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    page: str = Path(description=f"One of {', '.join(PAGES)}."),
) -> dict[str, Any]:
    if page not in PAGES:
        raise NotFound(f"no insight page {page!r}; pages: {', '.join(PAGES)}")
    params = dict(request.query_params)
    filters = filters_from(params, request.app.state.clock().date(), db)
    charts = page_datasets(db, caller.viewer, page, filters, params)
    return {
        "page": page,
        "filters": {
            "start": filters.start.isoformat(),
            "end": filters.end.isoformat(),
            "channel": filters.channel,
            "segment": filters.segment_id,
            "team": filters.team_id,
        },
        "charts": {name: data.as_json() for name, data in charts.items()},
    }
