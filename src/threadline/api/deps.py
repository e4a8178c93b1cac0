"""Typed dependencies shared by the routers (full-stack-fastapi-template habit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from threadline.accounts import UserInfo, Viewer, authenticate_token, viewer_for
from threadline.config import Settings
from threadline.privacy import Actor
from threadline.storage import Database
from threadline.web.auditing import actor_of  # the request -> Actor mapping the pages use too

_bearer = HTTPBearer(auto_error=False, description="A personal API token from `threadline tokens create`.")


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DatabaseDep = Annotated[Database, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def current_user(
    request: Request,
    db: DatabaseDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> UserInfo:
    if credentials is None:
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    user = authenticate_token(db, credentials.credentials, now=request.app.state.clock())
    if user is None:
        raise HTTPException(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return user


CurrentUser = Annotated[UserInfo, Depends(current_user)]


def require_admin(user: CurrentUser) -> UserInfo:
    if user.role != "admin":
        raise HTTPException(403, "this needs the admin role")
    return user


AdminUser = Annotated[UserInfo, Depends(require_admin)]


@dataclass(frozen=True, slots=True)
class Caller:
    """The signed-in user, their data scope, and where the request came from (for the audit log)."""

    user: UserInfo
    viewer: Viewer
    actor: Actor


def current_caller(request: Request, db: DatabaseDep, user: CurrentUser) -> Caller:
    return Caller(user, viewer_for(db, user.id, user.role), actor_of(request, user.id))


CallerDep = Annotated[Caller, Depends(current_caller)]
