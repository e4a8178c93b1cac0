"""REST: journeys (create from a ready-made template or a definition, edit, list, activate, pause) with the
figures per step and the conversions. Reading needs a signed-in user; changing needs the admin or
manager role (threadline.journeys.catalog). Changes are audited with the journey's id and name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep
from threadline.errors import Invalid
from threadline.journeys import (
    TEMPLATES,
    JourneyView,
    create_from_template,
    create_journey,
    get_journey,
    journey_stats,
    list_journeys,
    set_status,
    update_journey,
)
from threadline.privacy import record

router = APIRouter(prefix="/api/v1", tags=["journeys"])


class JourneyIn(BaseModel):
    template: str | None = Field(None, description="A ready-made journey (GET /api/v1/journeys/templates).")
    name: str | None = Field(None, description="Unique; a template's own name when left out.")
    trigger: dict[str, Any] | None = Field(
        None, description="Without a template: the trigger (docs/journeys.md)."
    )
    steps: list[dict[str, Any]] | None = Field(None, description="Without a template: the steps.")
    exit_goal: dict[str, Any] | None = None
    reentry: str = Field("once", description="once, or every (with reentry_days).")
    reentry_days: int | None = None
    purpose: str = Field("marketing", description="The consent purpose of the journey's messages.")


def _with_stats(db: DatabaseDep, views: list[JourneyView]) -> list[dict[str, Any]]:
    stats = journey_stats(db, [view.id for view in views])
    return [{**view.as_dict(), "stats": stats[view.id]} for view in views]


def _audit(request: Request, caller: CallerDep, action: str, view: JourneyView) -> None:
    at = request.app.state.clock()
    record(
        request.app.state.db,
        caller.actor,
        action,
        "journey",
        str(view.id),
        at=at,
        details={"name": view.name},
    )


@router.get("/journeys/templates", summary="The ready-made journeys")
def templates(caller: CallerDep) -> dict[str, Any]:
    return {"templates": TEMPLATES}


@router.get("/journeys", summary="Every journey, with how many are at each step and the conversions")
def journeys(db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    return {"journeys": _with_stats(db, list_journeys(db))}


@router.post("/journeys", status_code=201, summary="Create a journey, as a draft (admins and managers)")
def create(body: JourneyIn, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    now = request.app.state.clock()
    if body.template is not None:
        view = create_from_template(db, caller.viewer, body.template, name=body.name, now=now)
    elif body.name is None:
        raise Invalid("name: is required without a template", details={"field": "name"})
    else:
        view = create_journey(
            db,
            caller.viewer,
            name=body.name,
            trigger=body.trigger,
            steps=body.steps,
            exit_goal=body.exit_goal,
            reentry=body.reentry,
            reentry_days=body.reentry_days,
            purpose=body.purpose,
            now=now,
        )
    _audit(request, caller, "create", view)
    return _with_stats(db, [view])[0]


@router.get("/journeys/{journey_id}", summary="One journey with its figures")
def journey(journey_id: int, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    return _with_stats(db, [get_journey(db, journey_id)])[0]


@router.put("/journeys/{journey_id}", summary="Change a draft or paused journey's definition")
def update(
    journey_id: int, body: JourneyIn, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    view = update_journey(
        db,
        caller.viewer,
        journey_id,
        name=body.name,
        trigger=body.trigger,
        steps=body.steps,
        exit_goal=body.exit_goal,
        reentry=body.reentry,
        reentry_days=body.reentry_days,
        purpose=body.purpose,
        now=request.app.state.clock(),
    )
    _audit(request, caller, "update", view)
    return _with_stats(db, [view])[0]


@router.post("/journeys/{journey_id}/activate", summary="Start enrolling and running steps")
def activate(journey_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    view = set_status(db, caller.viewer, journey_id, "active", now=request.app.state.clock())
    _audit(request, caller, "activate", view)
    return _with_stats(db, [view])[0]


@router.post("/journeys/{journey_id}/pause", summary="Stop enrolling; customers wait where they are")
def pause(journey_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    view = set_status(db, caller.viewer, journey_id, "paused", now=request.app.state.clock())
    _audit(request, caller, "pause", view)
    return _with_stats(db, [view])[0]
