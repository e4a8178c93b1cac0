"""Who is signed in to the workspace, and the CSRF token every form carries."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from threadline.accounts import UserInfo, get_user

SESSION_USER = "uid"
SESSION_CSRF = "csrf"
SESSION_EPOCH = "epoch"  # the user's session_epoch at sign-in; auth_pages.start_session writes it


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


def signed_in_user(request: Request) -> UserInfo:
    user_id = request.session.get(SESSION_USER)
    user = get_user(request.app.state.db, int(user_id)) if user_id is not None else None
    # A deactivated user has no UserInfo; a changed password has a new epoch: either ends the session.
    if user is None or request.session.get(SESSION_EPOCH) != user.session_epoch:
        request.session.clear()
        raise LoginRequired(str(request.url.path))
    return user


WebUser = Annotated[UserInfo, Depends(signed_in_user)]
