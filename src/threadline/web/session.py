"""Who is signed in to the workspace, and the CSRF token every form carries.

The signed cookie (Starlette's SessionMiddleware, app.py) holds the session's secret and the CSRF token,
nothing about the user: the session itself is a row in the database (accounts/sessions.py), so ending
it there ends it for every copy of the cookie.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from threadline.accounts import UserInfo, session_user, start_session

SESSION_SECRET = "sid"  # the session's secret; the database keeps only its digest
SESSION_CSRF = "csrf"


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return str(token)


def check_csrf(request: Request, submitted: str) -> None:
    expected = request.session.get(SESSION_CSRF)
    if not expected or not secrets.compare_digest(str(expected), submitted):
        raise HTTPException(
            403, "the form expired or did not come from this site; reload the page and try again"
        )


def session_secret(request: Request) -> str | None:
    secret = request.session.get(SESSION_SECRET)
    return str(secret) if secret else None


def start_browser_session(request: Request, user: UserInfo) -> None:
    """A fresh session for this browser: on sign-in (no fixation), on accepting an invitation and after a
    password change (rotation). The CSRF token goes with the old cookie; the next page makes a new one."""
    request.session.clear()
    made = start_session(
        request.app.state.db,
        user.id,
        now=request.app.state.clock(),
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    request.session[SESSION_SECRET] = made.secret


def signed_in_user(request: Request) -> UserInfo:
    secret = session_secret(request)
    user = session_user(request.app.state.db, secret, now=request.app.state.clock()) if secret else None
    # Unknown, signed out, ended from elsewhere, idle too long, or the user deactivated: all the same.
    if user is None:
        request.session.clear()
        raise LoginRequired(str(request.url.path))
    return user


WebUser = Annotated[UserInfo, Depends(signed_in_user)]
