"""Signing in and out of the workspace, with the lockout after repeated failures."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import LockoutPolicy, end_session, sign_in
from threadline.api.rate_limits import retry_after
from threadline.web.auditing import audit
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import check_csrf, session_secret, start_browser_session

router = APIRouter(include_in_schema=False)
WRONG = N_("Wrong email or password.")
TOO_MANY = N_("Too many sign-in attempts from your network. Wait a minute and try again.")


def _safe_next(target: str) -> str:
    # Only same-site paths: an open redirect after login is a phishing tool.
    return target if target.startswith("/") and not target.startswith("//") else "/customers"


def lockout_policy(request: Request) -> LockoutPolicy:
    settings = request.app.state.settings
    return LockoutPolicy(settings.login_max_failures, timedelta(minutes=settings.login_lockout_minutes))


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
    # Per client IP, before any password is checked: a script trying many accounts from one address
    # meets this, one trying one account meets the lockout (THREADLINE_LOGIN_RATE_LIMIT).
    client = request.client.host if request.client else "unknown"
    wait = request.app.state.sign_in_limits.take(client, now=now.timestamp())
    if wait:
        audit(request, None, "sign_in_limited", "session")
        response = render(
            request,
            "login.html",
            429,
            next=_safe_next(next),
            error=TOO_MANY,
            email=email,
            locked_until=None,
        )
        response.headers["Retry-After"] = retry_after(wait)
        return response
    outcome = sign_in(
        request.app.state.db,
        email,
        password,
        now=now,
        policy=lockout_policy(request),
        # Every process of one workspace shares it (THREADLINE_SECRET_KEY), so they count unknown
        # emails together (app.py sets it).
        secret=request.app.state.secret_key,
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
    start_browser_session(request, outcome.user)
    audit(request, outcome.user.id, "sign_in", "session")
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    secret = session_secret(request)
    # Ended in the database, not only forgotten by this browser: a copy of the cookie stops working too.
    user_id = end_session(request.app.state.db, secret, now=request.app.state.clock()) if secret else None
    if user_id is not None:
        audit(request, user_id, "sign_out", "session")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
