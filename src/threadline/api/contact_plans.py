"""REST: contact plans and their contact cards (threadline.sales), within the caller's scope. Audited with
ids and counts only: goals, content and feedback can quote customers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep
from threadline.errors import Invalid
from threadline.privacy import record
from threadline.sales import (
    create_plan,
    get_plan,
    list_plans,
    plan_message_counts,
    record_card,
    send_plan_messages,
    update_lessons,
)

router = APIRouter(tags=["contact plans"])


def _time(value: Any, name: str) -> datetime | None:
    """An ISO time from JSON as naive UTC; 400 naming the field otherwise."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{name}: not a date and time (ISO 8601, e.g. 2026-12-01T09:00:00Z)", details={"field": name}
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _audit(request: Request, caller: CallerDep, kind: str, key: Any, **details: Any) -> None:
    record(
        request.app.state.db,
        caller.actor,
        "change",
        kind,
        str(key),
        at=request.app.state.clock(),
        details={"via": "api", **details},
    )


class PlanCreate(BaseModel):
    name: str
    goal: str
    audience: dict[str, Any] = Field(
        description='{"type": "list", "profile_ids": [...], "account_ids": [...]} or '
        '{"type": "segment", "segment_id": 3}'
    )
    channel: str = Field(description="phone, email, visit, sms, wechat, chat, meeting, other")
    method: str | None = None
    starts_at: str | None = None
    ends_at: str | None = None
    content: str | None = None
    incentive: str | None = None
    owner_id: int | None = None
    team_id: int | None = None


class CardCreate(BaseModel):
    profile_id: str
    reached: Any = None
    effective: Any = None
    rating: Any = None
    feedback: str | None = None
    contacted_at: str | None = None


class LessonsUpdate(BaseModel):
    lessons: str | None


@router.post(
    "/api/v1/contact-plans", status_code=201, summary="Make a contact plan; its audience's owners get tasks"
)
def create(body: PlanCreate, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    view = create_plan(
        db,
        caller.viewer,
        name=body.name,
        goal=body.goal,
        audience=body.audience,
        channel=body.channel,
        method=body.method,
        starts_at=_time(body.starts_at, "starts_at"),
        ends_at=_time(body.ends_at, "ends_at"),
        content=body.content,
        incentive=body.incentive,
        owner_id=body.owner_id,
        team_id=body.team_id,
        now=request.app.state.clock(),
    )
    _audit(request, caller, "contact_plan", view.id, action="contact_plan_create", members=len(view.members))
    return view.as_json()


@router.get("/api/v1/contact-plans", summary="Contact plans in your scope, with their effectiveness")
def plans(db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    return {"plans": [plan.as_json() for plan in list_plans(db, caller.viewer)]}


@router.get("/api/v1/contact-plans/{plan_id}", summary="A plan: audience, cards, effectiveness, lessons")
def plan(plan_id: int, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    return get_plan(db, caller.viewer, plan_id).as_json() | {"messages": plan_message_counts(db, plan_id)}


@router.post(
    "/api/v1/contact-plans/{plan_id}/cards", status_code=201, summary="Record a contact and its evaluation"
)
def create_card(
    plan_id: int, body: CardCreate, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    card = record_card(
        db,
        caller.viewer,
        plan_id,
        profile_id=body.profile_id,
        reached=body.reached,
        effective=body.effective,
        rating=body.rating,
        feedback=body.feedback,
        contacted_at=_time(body.contacted_at, "contacted_at"),
        now=request.app.state.clock(),
    )
    _audit(request, caller, "contact_plan", plan_id, action="contact_card_create", card=card.id)
    return card.as_json()


@router.post(
    "/api/v1/contact-plans/{plan_id}/messages",
    summary="Send an email, SMS or WeChat plan's content to its audience (consent decides; once each)",
)
def send_messages(plan_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    settings, now = request.app.state.settings, request.app.state.clock()
    counts = send_plan_messages(db, settings, caller.viewer, plan_id, now=now)
    _audit(request, caller, "contact_plan", plan_id, action="contact_plan_messages", **counts)
    return {"counts": counts, "messages": plan_message_counts(db, plan_id)}


@router.put("/api/v1/contact-plans/{plan_id}/lessons", summary="Write down what the plan taught")
def lessons(
    plan_id: int, body: LessonsUpdate, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    view = update_lessons(db, caller.viewer, plan_id, body.lessons, now=request.app.state.clock())
    _audit(request, caller, "contact_plan", plan_id, action="contact_plan_lessons")
    return view.as_json()
