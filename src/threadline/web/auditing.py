"""Writing the audit log from a request: who (the signed-in user), when (the app's clock), from where."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from threadline.privacy import Actor, record


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
