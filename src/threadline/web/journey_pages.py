"""The Journeys page: every journey with how many customers wait at each step, how many did each step,
and the conversions (enrollments ended by the exit goal). Thin: threadline.journeys counts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from threadline.journeys import journey_stats, list_journeys
from threadline.storage import Database
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser

router = APIRouter(include_in_schema=False)
STATUS_NAMES = {"draft": N_("draft"), "active": N_("active"), "paused": N_("paused")}


@router.get("/journeys")
def journeys_page(request: Request, user: WebUser) -> Response:
    db: Database = request.app.state.db
    views = list_journeys(db)
    stats = journey_stats(db, [view.id for view in views])
    rows = [(view, stats[view.id]) for view in views]
    return render(request, "journeys.html", user=user, rows=rows, status_names=STATUS_NAMES)
