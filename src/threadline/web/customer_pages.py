"""The customer list and the customer 360 page."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.errors import Invalid
from threadline.profiles import find_profiles, profile_view, recent_profiles, timeline_page
from threadline.web.render import render
from threadline.web.session import WebUser

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@router.get("/")
def home(_: WebUser) -> Response:
    return RedirectResponse("/customers", status_code=303)


@router.get("/customers")
def customers(request: Request, user: WebUser, q: str = "", page: int = 1) -> Response:
    settings = request.app.state.settings
    db = request.app.state.db
    page = max(page, 1)
    if q.strip():
        rows, total = find_profiles(db, q, region=settings.default_region, limit=PAGE_SIZE), None
    else:
        rows, total = recent_profiles(db, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(
        request, "customers.html", user=user, q=q, rows=rows, total=total, page=page, size=PAGE_SIZE
    )


@router.get("/customers/{profile_id}")
def customer(
    request: Request, profile_id: str, user: WebUser, channel: str = "", cursor: str = ""
) -> Response:
    db = request.app.state.db
    view = profile_view(db, profile_id)
    if view["id"] != profile_id:
        return RedirectResponse(f"/customers/{quote(view['id'])}", status_code=308)
    try:
        timeline = timeline_page(db, profile_id, limit=50, cursor=cursor or None, channel=channel or None)
    except Invalid:
        timeline = timeline_page(db, profile_id, limit=50, channel=channel or None)
    return render(request, "customer.html", user=user, p=view, timeline=timeline, channel=channel)
