"""Journeys as the team manages them: create (from a ready-made template or a definition), edit, list,
activate, pause, and the figures the journey page shows (how many are at each step, conversions)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from threadline.accounts import Viewer
from threadline.errors import Conflict, Forbidden, Invalid, NotFound
from threadline.journeys.definitions import (
    ACTIVE,
    DRAFT,
    PURPOSES,
    STATUSES,
    JourneyView,
    check_goal,
    check_reentry,
    check_steps,
    check_trigger,
)
from threadline.journeys.templates import TEMPLATES
from threadline.storage import Database
from threadline.storage.models import Journey, JourneyEnrollment, JourneyStepLog

EDITOR_ROLES = ("admin", "manager", "system")
MAX_NAME = 200


class JourneyNotFound(NotFound):
    def __init__(self, journey_id: int) -> None:
        super().__init__(f"no journey {journey_id}", details={"journey_id": journey_id})


def may_manage(viewer: Viewer) -> bool:
    return viewer.can("edit") and viewer.role in EDITOR_ROLES


def _require_manager(viewer: Viewer) -> None:
    if not may_manage(viewer):
        raise Forbidden("managing journeys needs the admin or manager role")


def _checked(
    name: Any, trigger: Any, steps: Any, exit_goal: Any, reentry: Any, reentry_days: Any, purpose: Any
) -> dict[str, Any]:
    """The definition's columns, checked in the order the editor shows the fields."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise Invalid(f"name: 1 to {MAX_NAME} characters", details={"field": "name"})
    checked_trigger = check_trigger(trigger)
    checked_steps = check_steps(steps)
    goal = check_goal(exit_goal)
    rule, days = check_reentry(reentry, reentry_days)
    if purpose not in PURPOSES:
        raise Invalid(f"purpose: must be one of {', '.join(PURPOSES)}", details={"field": "purpose"})
    return {
        "name": name.strip(),
        "trigger": checked_trigger,
        "steps": checked_steps,
        "exit_goal": goal,
        "reentry": rule,
        "reentry_days": days,
        "purpose": purpose,
    }


def _name_taken(name: Any) -> Conflict:
    return Conflict(f"name: a journey named {name!r} exists", details={"field": "name"})


def create_journey(
    db: Database,
    viewer: Viewer,
    *,
    name: str,
    trigger: Any,
    steps: Any,
    exit_goal: Any = None,
    reentry: Any = "once",
    reentry_days: Any = None,
    purpose: Any = "marketing",
    template: str | None = None,
    now: datetime,
) -> JourneyView:
    """A draft journey; nothing is enrolled until it is activated."""
    _require_manager(viewer)
    columns = _checked(name, trigger, steps, exit_goal, reentry, reentry_days, purpose)
    row = Journey(**columns, template=template, status=DRAFT, created_at=now, updated_at=now)
    try:
        with db.write() as session:
            session.add(row)
            session.flush()
            return JourneyView.of(row)
    except IntegrityError:
        raise _name_taken(name) from None


def update_journey(
    db: Database,
    viewer: Viewer,
    journey_id: int,
    *,
    name: Any,
    trigger: Any,
    steps: Any,
    exit_goal: Any = None,
    reentry: Any = "once",
    reentry_days: Any = None,
    purpose: Any = "marketing",
    now: datetime,
) -> JourneyView:
    """A new definition for a draft or paused journey. Not while active: a customer mid-way would run a
    half-edited journey. Customers waiting at a step carry on from the step of the same key wherever it
    now is; those at a step that is gone leave the journey (outcome `step removed`)."""
    _require_manager(viewer)
    columns = _checked(name, trigger, steps, exit_goal, reentry, reentry_days, purpose)
    index_of = {step["key"]: index for index, step in enumerate(columns["steps"])}
    try:
        with db.write() as session:
            row = session.get(Journey, journey_id)
            if row is None:
                raise JourneyNotFound(journey_id)
            if row.status == ACTIVE:
                raise Conflict("status: pause the journey before changing it", details={"field": "status"})
            for column, value in columns.items():
                setattr(row, column, value)
            row.updated_at = now
            session.flush()
            waiting = session.execute(
                select(JourneyEnrollment.id, JourneyEnrollment.step_key).where(
                    JourneyEnrollment.journey_id == journey_id, JourneyEnrollment.status == ACTIVE
                )
            ).all()
            for enrollment_id, step_key in waiting:
                values: dict[str, Any] = {"updated_at": now}
                if step_key in index_of:
                    values["step_index"] = index_of[step_key]
                else:
                    values.update(status="exited", outcome="step removed", next_run_at=None)
                session.execute(
                    update(JourneyEnrollment).where(JourneyEnrollment.id == enrollment_id).values(**values)
                )
            return JourneyView.of(row)
    except IntegrityError:
        raise _name_taken(name) from None


def create_from_template(
    db: Database, viewer: Viewer, template: str, *, name: str | None = None, now: datetime
) -> JourneyView:
    if template not in TEMPLATES:
        raise Invalid(f"template: must be one of {', '.join(TEMPLATES)}", details={"field": "template"})
    definition = copy.deepcopy(TEMPLATES[template])
    return create_journey(
        db,
        viewer,
        name=name or definition.pop("name"),
        trigger=definition["trigger"],
        steps=definition["steps"],
        exit_goal=definition.get("exit_goal"),
        reentry=definition["reentry"],
        reentry_days=definition.get("reentry_days"),
        purpose=definition["purpose"],
        template=template,
        now=now,
    )


def list_journeys(db: Database) -> list[JourneyView]:
    with db.read() as session:
        return [JourneyView.of(row) for row in session.scalars(select(Journey).order_by(Journey.name))]


def get_journey(db: Database, journey_id: int) -> JourneyView:
    with db.read() as session:
        row = session.get(Journey, journey_id)
        if row is None:
            raise JourneyNotFound(journey_id)
        return JourneyView.of(row)


def set_status(db: Database, viewer: Viewer, journey_id: int, status: str, *, now: datetime) -> JourneyView:
    """Activate or pause. A paused journey enrols no one and runs no step; its customers wait where they
    are and carry on when it is activated again."""
    _require_manager(viewer)
    if status not in STATUSES:
        raise Invalid(f"status: must be one of {', '.join(STATUSES)}", details={"field": "status"})
    with db.write() as session:
        row = session.get(Journey, journey_id)
        if row is None:
            raise JourneyNotFound(journey_id)
        if status == ACTIVE and row.activated_at is None:
            # Events from before the first activation enrol no one: turning a journey on must not mail
            # every customer who ever started a checkout.
            row.activated_at = now
        row.status, row.updated_at = status, now
        session.flush()
        return JourneyView.of(row)


def journey_stats(db: Database, journey_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Per journey: enrolled, active, completed, converted (ended by the exit goal), how many wait at
    each step now (`at_step`) and how many have done each step (`done_step`)."""
    stats: dict[int, dict[str, Any]] = {
        journey_id: {
            "enrolled": 0,
            "active": 0,
            "completed": 0,
            "converted": 0,
            "at_step": {},
            "done_step": {},
        }
        for journey_id in journey_ids
    }
    if not journey_ids:
        return stats
    enrolled = JourneyEnrollment
    with db.read() as session:
        for journey_id, status, outcome, count in session.execute(
            select(enrolled.journey_id, enrolled.status, enrolled.outcome, func.count())
            .where(enrolled.journey_id.in_(journey_ids))
            .group_by(enrolled.journey_id, enrolled.status, enrolled.outcome)
        ):
            figures = stats[journey_id]
            figures["enrolled"] += count
            if status in ("active", "completed"):
                figures[status] += count
            if outcome == "converted":
                figures["converted"] += count
        for journey_id, key, count in session.execute(
            select(enrolled.journey_id, enrolled.step_key, func.count())
            .where(enrolled.journey_id.in_(journey_ids), enrolled.status == "active")
            .group_by(enrolled.journey_id, enrolled.step_key)
        ):
            stats[journey_id]["at_step"][key or ""] = count
        for journey_id, key, count in session.execute(
            select(enrolled.journey_id, JourneyStepLog.step_key, func.count())
            .join(JourneyStepLog, JourneyStepLog.enrollment_id == enrolled.id)
            .where(enrolled.journey_id.in_(journey_ids))
            .group_by(enrolled.journey_id, JourneyStepLog.step_key)
        ):
            stats[journey_id]["done_step"][key] = count
    return stats
