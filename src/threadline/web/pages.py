"""Workspace pages: sign in, the customer list, the customer 360 page."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from threadline.accounts import verify_password
from threadline.errors import Invalid
from threadline.profiles import find_profiles, profile_view, recent_profiles, timeline_page
from threadline.web.session import SESSION_USER, WebUser, check_csrf, csrf_token

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
# Letters in coloured badges rather than emoji: a server or kiosk without an emoji font shows boxes.
CHANNEL_ICONS = {
    "web": "W",
    "app": "A",
    "store": "S",
    "call_center": "C",
    "email": "E",
    "sms": "M",
    "social": "So",
    "chat": "Ch",
    "other": "•",
}


def show_value(value: Any) -> str:
    """A trait or property as a person reads it: nested objects as `key: value` pairs."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {show_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(show_value(v) for v in value)
    return str(value)


templates.env.filters["show"] = show_value


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context |= {"csrf": csrf_token(request), "icons": CHANNEL_ICONS}
    return templates.TemplateResponse(request, name, context, status_code=status)


def _safe_next(target: str) -> str:
    # Only same-site paths: an open redirect after login is a phishing tool.
    return target if target.startswith("/") and not target.startswith("//") else "/customers"


@router.get("/login")
def login_page(request: Request, next: str = "/customers") -> Response:
    return render(request, "login.html", next=_safe_next(next), error=None, email="")


@router.post("/login")
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    next: str = Form("/customers"),
) -> Response:
    check_csrf(request, csrf)
    user = verify_password(request.app.state.db, email, password)
    if user is None:
        error = "Wrong email or password."
        return render(request, "login.html", 401, next=_safe_next(next), error=error, email=email)
    request.session.clear()  # a fresh session on sign-in: no fixation
    request.session[SESSION_USER] = user.id
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


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
