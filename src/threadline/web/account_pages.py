"""Your account (password, sessions, personal API tokens) and, for admins, the workspace's users and
invitations.

Every form posts a CSRF token. Secrets (a new API token, an invitation link) are shown once, in the
response to the POST that made them, and are never stored in a readable form.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import (
    MIN_PASSWORD_LENGTH,
    ROLES,
    Invitation,
    UserInfo,
    accept_invitation,
    change_password,
    change_role,
    invite_user,
    issue_token,
    list_sessions,
    list_teams,
    list_tokens,
    list_users,
    move_user,
    read_invitation,
    reissue_invitation,
    revoke_other_sessions,
    revoke_session,
    revoke_token,
    set_active,
)
from threadline.errors import Invalid, ThreadlineError
from threadline.web.auditing import audit
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf, session_secret, start_browser_session

router = APIRouter(include_in_schema=False)
Csrf = Annotated[str, Form()]
# Used to sign invitation links when THREADLINE_SECRET_KEY is empty: links then last until a restart,
# like the sessions do (see app.py).
_PROCESS_SECRET = secrets.token_urlsafe(32)


def _secret(request: Request) -> str:
    state, settings = request.app.state, request.app.state.settings
    return str(getattr(state, "secret_key", None) or settings.secret_key or _PROCESS_SECRET)


def _invite_validity(request: Request) -> timedelta:
    return timedelta(days=request.app.state.settings.invite_valid_days)


def _back(path: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={done}", status_code=303)


# --- your account -------------------------------------------------------------------------------------


def _account_page(request: Request, user: UserInfo, status: int = 200, **context: Any) -> Response:
    context.setdefault("done", request.query_params.get("done"))  # account_notice.html picks the text
    context.setdefault("password_error", None)
    context.setdefault("token_error", None)
    context.setdefault("session_error", None)
    context.setdefault("new_token", None)
    db, now = request.app.state.db, request.app.state.clock()
    return render(
        request,
        "account.html",
        status,
        user=user,
        tokens=list_tokens(db, user.id),
        sessions=list_sessions(db, user.id, now=now, current_secret=session_secret(request)),
        min_length=MIN_PASSWORD_LENGTH,
        **context,
    )


@router.get("/account")
def account(request: Request, user: WebUser) -> Response:
    return _account_page(request, user)


@router.post("/account/password")
def account_password(
    request: Request,
    user: WebUser,
    csrf: Csrf = "",
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    new_password_again: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    if new_password != new_password_again:
        return _account_page(request, user, 400, password_error=N_("The two new passwords differ."))
    try:
        changed = change_password(
            request.app.state.db, user.id, current_password, new_password, now=request.app.state.clock()
        )
    except ThreadlineError as error:
        return _account_page(request, user, 400, password_error=error.message)
    # Every session ended with the change (change_password): this browser carries on in a new one.
    start_browser_session(request, changed)
    audit(request, user.id, "password_change", "user", user.id)
    return _back("/account", "password")


@router.post("/account/tokens")
def account_token_create(
    request: Request, user: WebUser, csrf: Csrf = "", name: Annotated[str, Form()] = ""
) -> Response:
    check_csrf(request, csrf)
    try:
        made = issue_token(request.app.state.db, user.id, name, now=request.app.state.clock())
    except ThreadlineError as error:
        return _account_page(request, user, 400, token_error=error.message)
    audit(request, user.id, "token_create", "api_token", made.info.id)
    return _account_page(request, user, 201, new_token=made)


@router.post("/account/tokens/{token_id}/revoke")
def account_token_revoke(request: Request, user: WebUser, token_id: int, csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    try:
        revoke_token(request.app.state.db, token_id, now=request.app.state.clock(), user_id=user.id)
    except ThreadlineError as error:
        return _account_page(request, user, 404, token_error=error.message)
    audit(request, user.id, "token_revoke", "api_token", token_id)
    return _back("/account", "revoked")


@router.post("/account/sessions/revoke-others")
def account_sessions_revoke_others(request: Request, user: WebUser, csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    secret = session_secret(request) or ""  # WebUser found it, so it is there
    ended = revoke_other_sessions(
        request.app.state.db, user.id, keep_secret=secret, now=request.app.state.clock()
    )
    audit(request, user.id, "sessions_revoke_others", "user", user.id, count=ended)
    return _back("/account", "sessions")


@router.post("/account/sessions/{session_id}/revoke")
def account_session_revoke(request: Request, user: WebUser, session_id: str, csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    try:
        revoke_session(request.app.state.db, session_id, user_id=user.id, now=request.app.state.clock())
    except ThreadlineError as error:
        return _account_page(request, user, 404, session_error=error.message)
    audit(request, user.id, "session_revoke", "session", session_id)
    # Ending this very session is a sign-out: the redirect then lands on the login page.
    return _back("/account", "session")


# --- the workspace's users (admins) ------------------------------------------------------------------


def _users_page(
    request: Request, user: UserInfo, status: int = 200, invitation: Invitation | None = None, **context: Any
) -> Response:
    if user.role != "admin":
        # Before any lookup: a 403 says nothing about who the users are.
        return render(request, "account_forbidden.html", 403, user=user)
    context.setdefault("done", request.query_params.get("done"))
    context.setdefault("error", None)
    link = f"{str(request.base_url).rstrip('/')}/invite/{invitation.token}" if invitation else None
    return render(
        request,
        "users.html",
        status,
        user=user,
        rows=list_users(request.app.state.db),
        teams=list_teams(request.app.state.db),
        roles=ROLES,
        invitation=invitation,
        invite_link=link,
        now=request.app.state.clock(),
        **context,
    )


@router.get("/users")
def users(request: Request, user: WebUser) -> Response:
    return _users_page(request, user)


@router.post("/users/invite")
def users_invite(
    request: Request,
    user: WebUser,
    csrf: Csrf = "",
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "agent",
    name: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    if user.role != "admin":
        return _users_page(request, user)
    try:
        invitation = invite_user(
            request.app.state.db,
            email,
            role,
            name=name,
            now=request.app.state.clock(),
            secret=_secret(request),
            valid_for=_invite_validity(request),
        )
    except ThreadlineError as error:
        return _users_page(request, user, 400, error=error.message)
    audit(request, user.id, "invite", "user", invitation.user.id, role=role)
    return _users_page(request, user, 201, invitation=invitation)


@router.post("/users/{user_id}/{action}")
def users_change(
    request: Request,
    user: WebUser,
    user_id: int,
    action: str,
    csrf: Csrf = "",
    role: Annotated[str, Form()] = "",
    team: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    if user.role != "admin":
        return _users_page(request, user)
    db, now = request.app.state.db, request.app.state.clock()
    try:
        if action == "invite":
            invitation = reissue_invitation(
                db, user_id, now=now, secret=_secret(request), valid_for=_invite_validity(request)
            )
            return _users_page(request, user, 201, invitation=invitation)
        if action in ("deactivate", "reactivate"):
            set_active(db, user_id, action == "reactivate", by=user.id, now=now)
            audit(request, user.id, action, "user", user_id)
            return _back("/users", f"{action}d")
        if action == "role":
            change_role(db, user_id, role, by=user.id)
            audit(request, user.id, "role_change", "user", user_id, role=role)
            return _back("/users", "role")
        if action == "team":  # the team select of /users; teams themselves are at /teams
            if team and not team.isdigit():
                raise Invalid("team: choose a team from the list", details={"field": "team"})
            moved = move_user(db, user_id, int(team) if team else None)
            audit(request, user.id, "team_move", "user", user_id, team_id=moved.team_id)
            return _back("/users", "team")
    except ThreadlineError as error:
        return _users_page(request, user, 400, error=error.message)
    return _users_page(request, user, 404, error=f"no such action: {action}")


# --- accepting an invitation (no sign-in: the link is the credential) ---------------------------------


@router.get("/invite/{token}")
def invite(request: Request, token: str) -> Response:
    try:
        invitee = read_invitation(
            request.app.state.db,
            token,
            now=request.app.state.clock(),
            secret=_secret(request),
            valid_for=_invite_validity(request),
        )
    except ThreadlineError as error:
        return render(request, "invite.html", 410, invitee=None, error=error.message, user=None)
    return render(
        request, "invite.html", invitee=invitee, error=None, user=None, min_length=MIN_PASSWORD_LENGTH
    )


@router.post("/invite/{token}")
def invite_accept(
    request: Request,
    token: str,
    csrf: Csrf = "",
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    db, now, secret, valid_for = (
        request.app.state.db,
        request.app.state.clock(),
        _secret(request),
        _invite_validity(request),
    )
    try:
        invitee = read_invitation(db, token, now=now, secret=secret, valid_for=valid_for)
    except ThreadlineError as error:
        return render(request, "invite.html", 410, invitee=None, error=error.message, user=None)
    form_error = None if password == password_again else N_("The two passwords differ.")
    if form_error is None:
        try:
            user = accept_invitation(db, token, password, now=now, secret=secret, valid_for=valid_for)
        except ThreadlineError as error:
            form_error = error.message
        else:
            start_browser_session(request, user)
            audit(request, user.id, "invite_accept", "user", user.id)
            return RedirectResponse("/customers", status_code=303)
    return render(
        request,
        "invite.html",
        400,
        invitee=invitee,
        error=form_error,
        user=None,
        min_length=MIN_PASSWORD_LENGTH,
    )
