"""REST: the service desk's routing rules. Thin: parse, authorise, call threadline.service, map out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.api.deps import AdminUser, CurrentUser, DatabaseDep
from threadline.privacy import record
from threadline.service import ROUTING_KEY, routing_rules, set_routing_rules
from threadline.web.auditing import actor_of

router = APIRouter(prefix="/api/v1", tags=["service"])


class RoutingIn(BaseModel):
    # Items are checked by threadline.service, which names the field (`rules[2].team_id`).
    rules: list[Any] = Field(
        description='In the order they are tried: {"name", "channels", "languages", "tiers", '
        '"segment_ids", "keywords", "team_id", "strategy": "round_robin" | "least_loaded", "active"}; '
        "an empty or missing condition matches anything"
    )


@router.get("/service/routing", summary="The routing rules, in the order they are tried")
def get_routing(db: DatabaseDep, user: CurrentUser) -> dict[str, Any]:
    return {"rules": [r.as_dict() for r in routing_rules(db)]}


@router.put("/service/routing", summary="Replace the routing rules (admins)")
def put_routing(body: RoutingIn, request: Request, db: DatabaseDep, user: AdminUser) -> dict[str, Any]:
    at = request.app.state.clock()
    rules = set_routing_rules(db, body.rules, user_id=user.id, now=at)
    details = {"action": "routing", "rules": len(rules), "via": "api"}
    actor = actor_of(request, user.id)
    record(db, actor, "change", "workspace_settings", ROUTING_KEY, at=at, details=details)
    return {"rules": [r.as_dict() for r in rules]}
