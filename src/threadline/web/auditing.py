"""Writing the audit log from a request: who (the signed-in user), when (the app's clock), from where."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from threadline.accounts import UserInfo
from threadline.errors import NotFound
from threadline.privacy import Actor, record
from threadline.web.render import render


def actor_of(request: Request, user_id: int | None) -> Actor:
    client = request.client.host if request.client else None
    return Actor(user_id, client, request.headers.get("user-agent"))


def audit(
    request: Request,
    user_id: int | None,
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    **details: Any,
) -> None:
    record(
        request.app.state.db,
        actor_of(request, user_id),
        action,
        object_type,
        None if object_id is None else str(object_id),
        at=request.app.state.clock(),
        details=details,
    )


def customer_not_found(
    request: Request, user: UserInfo, actor: Actor, profile_id: str, error: NotFound, **details: Any
) -> Response:
    """The 404 of a customer's page or panel: it says nothing about whether the customer exists, and the
    attempt goes in the audit log (whether it was outside the viewer's scope, which panel asked)."""
    scoped = isinstance(error.details, dict) and bool(error.details.get("out_of_scope"))
    record(
        request.app.state.db,
        actor,
        "denied",
        "profile",
        profile_id,
        at=request.app.state.clock(),
        details={"out_of_scope": scoped, "via": "web", **details},
    )
    return render(request, "not_found.html", 404, user=user)
