"""Signing in and out of the workspace."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import verify_password
from threadline.web.render import render
from threadline.web.session import SESSION_USER, check_csrf

router = APIRouter(include_in_schema=False)


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
