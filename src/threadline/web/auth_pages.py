"""Signing in and out of the workspace, with the lockout after repeated failures."""

from __future__ import annotations

import threading
from datetime import timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import LockoutPolicy, StrangerFailures, UserInfo, sign_in
from threadline.web.auditing import audit
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import SESSION_EPOCH, SESSION_USER, check_csrf

router = APIRouter(include_in_schema=False)
WRONG = N_("Wrong email or password.")
_strangers_lock = threading.Lock()


def _safe_next(target: str) -> str:
    # Only same-site paths: an open redirect after login is a phishing tool.
    return target if target.startswith("/") and not target.startswith("//") else "/customers"


def start_session(request: Request, user: UserInfo) -> None:
    """A fresh session for this user: on sign-in (no fixation) and after a password change (rotation).

    The CSRF token goes with the old session; the next page rendered makes a new one.
    """
    request.session.clear()
    request.session[SESSION_USER] = user.id
    request.session[SESSION_EPOCH] = user.session_epoch


def lockout_policy(request: Request) -> LockoutPolicy:
    settings = request.app.state.settings
    return LockoutPolicy(settings.login_max_failures, timedelta(minutes=settings.login_lockout_minutes))


def stranger_failures(request: Request) -> StrangerFailures:
    # One per app, made on first use so that create_app (app.py) needs no knowledge of it.
    state = request.app.state
    with _strangers_lock:
        if not hasattr(state, "stranger_failures"):
            state.stranger_failures = StrangerFailures()
    strangers: StrangerFailures = state.stranger_failures
    return strangers


@router.get("/login")
def login_page(request: Request, next: str = "/customers") -> Response:
    return render(request, "login.html", next=_safe_next(next), error=None, email="", locked_until=None)


@router.post("/login")
def login(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    next: str = Form("/customers"),
) -> Response:
    check_csrf(request, csrf)
    now = request.app.state.clock()
    outcome = sign_in(
        request.app.state.db,
        email,
        password,
        now=now,
        policy=lockout_policy(request),
        strangers=stranger_failures(request),
    )
    if outcome.user is None:
        # Which account was tried is not kept: a mistyped address may be anyone's personal data.
        audit(request, None, "sign_in_failed", "session", locked=outcome.locked_until is not None)
        # The same page, status and wording whether or not the email belongs to anyone.
        until = outcome.locked_until
        response = render(
            request,
            "login.html",
            401 if until is None else 429,
            next=_safe_next(next),
            error=WRONG if until is None else None,  # login.html words the lock itself, with its time
            email=email,
            locked_until=until,
        )
        if until is not None:
            response.headers["Retry-After"] = str(max(int((until - now).total_seconds()), 1))
        return response
    start_session(request, outcome.user)
    audit(request, outcome.user.id, "sign_in", "session")
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
