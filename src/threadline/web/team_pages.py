"""The workspace's teams (admins): list, create, rename, nest, set the manager, delete an empty one.

Who is in which team is chosen per user on /users (account_pages.py). Every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, create_team, delete_team, list_teams, list_users, update_team
from threadline.errors import ThreadlineError
from threadline.web.auditing import audit
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
Csrf = Annotated[str, Form()]
Text = Annotated[str, Form()]


def _teams_page(request: Request, user: UserInfo, status: int = 200, **context: Any) -> Response:
    if user.role != "admin":
        # Before any lookup: a 403 says nothing about which teams there are.
        return render(request, "account_forbidden.html", 403, user=user)
    context.setdefault("done", request.query_params.get("done"))
    context.setdefault("error", None)
    context.setdefault("error_team", None)  # the team whose form the error belongs to; None: the new one
    db = request.app.state.db
    managers = [u.email for u in list_users(db) if u.is_active]
    return render(
        request, "teams.html", status, user=user, teams=list_teams(db), managers=managers, **context
    )


def _back(done: str) -> RedirectResponse:
    return RedirectResponse(f"/teams?done={done}", status_code=303)


@router.get("/teams")
def teams(request: Request, user: WebUser) -> Response:
    return _teams_page(request, user)


@router.post("/teams")
def teams_create(
    request: Request, user: WebUser, csrf: Csrf = "", name: Text = "", parent: Text = "", manager: Text = ""
) -> Response:
    check_csrf(request, csrf)
    if user.role != "admin":
        return _teams_page(request, user)
    try:
        team = create_team(
            request.app.state.db, name, parent=parent, manager_email=manager, now=request.app.state.clock()
        )
    except ThreadlineError as error:
        return _teams_page(request, user, 400, error=error.message)
    audit(request, user.id, "team_create", "team", team.id, name=team.name, parent=team.parent_id)
    return _back("team_created")


@router.post("/teams/{team_id}/edit")
def teams_edit(
    request: Request,
    user: WebUser,
    team_id: int,
    csrf: Csrf = "",
    name: Text = "",
    parent: Text = "",
    manager: Text = "",
) -> Response:
    check_csrf(request, csrf)
    if user.role != "admin":
        return _teams_page(request, user)
    try:
        team = update_team(request.app.state.db, team_id, name=name, parent=parent, manager_email=manager)
    except ThreadlineError as error:
        return _teams_page(request, user, 400, error=error.message, error_team=team_id)
    audit(
        request,
        user.id,
        "team_update",
        "team",
        team.id,
        name=team.name,
        parent=team.parent_id,
        manager=team.manager_id,
    )
    return _back("team_changed")


@router.post("/teams/{team_id}/delete")
def teams_delete(request: Request, user: WebUser, team_id: int, csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    if user.role != "admin":
        return _teams_page(request, user)
    try:
        name = delete_team(request.app.state.db, team_id)
    except ThreadlineError as error:
        return _teams_page(request, user, 400, error=error.message, error_team=team_id)
    audit(request, user.id, "team_delete", "team", team_id, name=name)
    return _back("team_deleted")
