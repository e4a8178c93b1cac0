"""The Journeys pages: the list (each journey's figures, "start from template"), a journey's page (how many
wait at each step and did it, conversions, activate / pause) and its editor: trigger fields, the ordered
steps with add, remove and move (htmx swaps the form; without JavaScript the same buttons post the whole
page), and the definition as JSON for power users. Thin: threadline.journeys checks, counts and decides;
an error names its field (`steps[1].subject`) and is shown next to that field.

Reading needs a login; creating and changing need the admin or manager role (journeys.may_manage).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from threadline.accounts import UserInfo, Viewer, viewer_for
from threadline.errors import Conflict, Forbidden, Invalid
from threadline.journeys import (
    PURPOSES,
    SEGMENT_CHANGES,
    STEP_TYPES,
    TEMPLATES,
    TRIGGERS,
    JourneyNotFound,
    JourneyView,
    create_from_template,
    create_journey,
    get_journey,
    journey_stats,
    list_journeys,
    may_manage,
    set_status,
    update_journey,
)
from threadline.messaging import CHANNELS
from threadline.privacy import record
from threadline.storage import Database
from threadline.storage.models import Segment
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.journey_form import (
    STEP_FIELDS,
    TRIGGER_FIELDS,
    JourneyForm,
    definition_of_form,
    edit_steps,
    form_of_definition,
    form_of_post,
)
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
STATUS_NAMES = {"draft": N_("draft"), "active": N_("active"), "paused": N_("paused")}
TRIGGER_NAMES = {
    "event": N_("An event"),
    "segment": N_("Entering or leaving a segment"),
    "schedule": N_("Every day at an hour (UTC)"),
    "trait": N_("A trait changes"),
    "date": N_("A date trait's anniversary (e.g. birthday)"),
}
STEP_NAMES = {
    "wait": N_("Wait"),
    "wait_for_event": N_("Wait for an event"),
    "branch": N_("Branch on a condition"),
    "split": N_("A/B split"),
    "send_email": N_("Send an email"),
    "send_message": N_("Send a message (SMS, WhatsApp, WeChat, social)"),
    "record_event": N_("Record an event"),
    "set_trait": N_("Set a trait"),
    "add_tag": N_("Add a tag"),
    "remove_tag": N_("Remove a tag"),
    "create_task": N_("Create a task for the owner"),
    "add_loyalty_points": N_("Add loyalty points"),
    "webhook": N_("Send to a webhook (a destination)"),
}
TEMPLATE_NAMES = {
    "abandoned_cart": N_("Abandoned cart"),
    "whitepaper_follow_up": N_("Whitepaper follow-up after 7 days"),
    "welcome_series": N_("Welcome series"),
    "win_back": N_("Win-back after 90 days without a purchase"),
    "birthday_offer": N_("Birthday offer"),
    "review_request": N_("Post-purchase review request"),
}
FIELD_NAMES = {
    "event": N_("Event"),
    "where": N_("Event properties to match (JSON)"),
    "segment_id": N_("Segment"),
    "on": N_("When the customer"),
    "at_hour": N_("Hour of the day"),
    "trait": N_("Trait"),
    "from": N_("From value (optional)"),
    "to": N_("To value (optional)"),
    "offset_days": N_("Days after the date (negative: before)"),
    "minutes": N_("Minutes"),
    "hours": N_("Hours"),
    "days": N_("Days"),
    "timeout_hours": N_("Give up after hours"),
    "timeout_days": N_("Give up after days"),
    "on_timeout": N_("On giving up, go to step"),
    "condition": N_("Condition (JSON)"),
    "else": N_("Otherwise go to step"),
    "paths": N_("Paths (JSON)"),
    "subject": N_("Subject"),
    "body_text": N_("Text"),
    "body_html": N_("HTML (optional)"),
    "channel": N_("Channel"),
    "properties": N_("Properties (JSON)"),
    "value": N_("Value"),
    "tag": N_("Tag"),
    "title": N_("Title"),
    "due_days": N_("Due in days"),
    "points": N_("Points"),
    "reason": N_("Reason"),
    "destination": N_("Destination id"),
    "next": N_("Then go to step (optional)"),
}


def _scope(request: Request, user: UserInfo) -> tuple[Database, Viewer]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user.id, user.role)


def _audit(request: Request, user: UserInfo, action: str, view: JourneyView) -> None:
    record(
        request.app.state.db,
        actor_of(request, user.id),
        action,
        "journey",
        str(view.id),
        at=request.app.state.clock(),
        details={"name": view.name, "via": "web"},
    )


def _segments(db: Database) -> list[tuple[int, str]]:
    with db.read() as session:
        return [(i, n) for i, n in session.execute(select(Segment.id, Segment.name).order_by(Segment.name))]


def _error_places(form: JourneyForm, field: str | None) -> dict[str, str]:
    """Where the page shows an error: the input it names, else its step or the trigger, else the top."""
    if not field:
        return {}
    shown = {f"trigger.{name}" for name in form.trigger} | {"name", "purpose", "reentry", "reentry_days"}
    shown |= {"trigger.type", "exit_goal.event"}
    for index, step in enumerate(form.steps):
        shown |= {f"steps[{index}].{name}" for name in (*step.texts, "key", "type")}
    if field in shown:
        return {"field": field}
    if field.startswith("steps[") and "]" in field:
        return {"step": field[: field.index("]") + 1]}
    return {"top": field}


def _editor(
    request: Request,
    user: UserInfo,
    form: JourneyForm,
    *,
    journey: JourneyView | None,
    status: int = 200,
    error: str | None = None,
    field: str | None = None,
    definition_text: str | None = None,
) -> Response:
    """The editor: the whole page, or (for htmx) only the form it swaps."""
    db, viewer = _scope(request, user)
    partial = request.headers.get("HX-Request") == "true"
    if journey is None:
        stats = None
        action = "/journeys/new"
    else:
        stats = journey_stats(db, [journey.id])[journey.id]
        action = f"/journeys/{journey.id}"
    editable = may_manage(viewer) and (journey is None or journey.status != "active")
    if definition_text is None:
        try:
            definition_text = json.dumps(definition_of_form(form), ensure_ascii=False, indent=2)
        except Invalid:
            definition_text = ""
    return render(
        request,
        "journey_editor_form.html" if partial else "journey.html",
        200 if partial else status,  # htmx swaps only 2xx answers: the error is in the form it swaps in
        user=user,
        journey=journey,
        stats=stats,
        form=form,
        action=action,
        editable=editable,
        can_manage=may_manage(viewer),
        error=error,
        place=_error_places(form, field),
        definition_text=definition_text,
        triggers=TRIGGERS,
        trigger_names=TRIGGER_NAMES,
        trigger_fields=TRIGGER_FIELDS,
        step_types=STEP_TYPES,
        step_names=STEP_NAMES,
        step_fields=STEP_FIELDS,
        field_names=FIELD_NAMES,
        status_names=STATUS_NAMES,
        segment_changes=SEGMENT_CHANGES,
        segments=_segments(db),
        channels=CHANNELS,
        purposes=PURPOSES,
    )


FORBIDDEN = N_("Creating and changing journeys needs the admin or manager role.")
MISSING = N_("There is no such journey.")


def _list(request: Request, user: UserInfo, status: int = 200, error: str | None = None) -> Response:
    db, viewer = _scope(request, user)
    views = list_journeys(db)
    stats = journey_stats(db, [view.id for view in views])
    return render(
        request,
        "journeys.html",
        status,
        user=user,
        rows=[(view, stats[view.id]) for view in views],
        status_names=STATUS_NAMES,
        can_manage=may_manage(viewer),
        templates=[(key, TEMPLATE_NAMES.get(key, key)) for key in TEMPLATES],
        error=error,
    )


def _forbidden(request: Request, user: UserInfo) -> Response:
    return _list(request, user, 403, FORBIDDEN)


def _missing(request: Request, user: UserInfo) -> Response:
    return _list(request, user, 404, MISSING)


@router.get("/journeys")
def journeys_page(request: Request, user: WebUser) -> Response:
    return _list(request, user)


@router.post("/journeys/from-template")
async def from_template(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    db, viewer = _scope(request, user)
    name = str(form.get("name", "")).strip() or None
    try:
        view = create_from_template(
            db, viewer, str(form.get("template", "")), name=name, now=request.app.state.clock()
        )
    except Forbidden:
        return _forbidden(request, user)
    except (Invalid, Conflict) as problem:
        return _list(request, user, 400, problem.message)
    _audit(request, user, "create", view)
    return RedirectResponse(f"/journeys/{view.id}", status_code=303)


BLANK = {
    "name": "",
    "trigger": {"type": "event", "event": ""},
    "steps": [{"key": "wait-1", "type": "wait", "hours": 1}],
    "reentry": "once",
    "purpose": "marketing",
}


@router.get("/journeys/new")
def new_journey(request: Request, user: WebUser) -> Response:
    _, viewer = _scope(request, user)
    if not may_manage(viewer):
        return _forbidden(request, user)
    return _editor(request, user, form_of_definition(BLANK), journey=None)


@router.get("/journeys/{journey_id}")
def journey_page(request: Request, journey_id: int, user: WebUser) -> Response:
    try:
        view = get_journey(request.app.state.db, journey_id)
    except JourneyNotFound:
        return _missing(request, user)
    return _editor(request, user, form_of_definition(view.as_dict()), journey=view)


@router.post("/journeys/new")
async def create_page(request: Request, user: WebUser) -> Response:
    return await _post(request, user, None)


@router.post("/journeys/{journey_id}")
async def save_page(request: Request, journey_id: int, user: WebUser) -> Response:
    return await _post(request, user, journey_id)


async def _post(request: Request, user: UserInfo, journey_id: int | None) -> Response:
    """Every editor button posts the whole form here: `op` says which (save, save_json, refresh, add,
    remove-N, up-N, down-N). Only the saves store anything."""
    posted = await request.form()
    check_csrf(request, str(posted.get("csrf", "")))
    db, viewer = _scope(request, user)
    if not may_manage(viewer):
        return _forbidden(request, user)
    try:
        journey = None if journey_id is None else get_journey(db, journey_id)
    except JourneyNotFound:
        return _missing(request, user)
    op = str(posted.get("op", "save"))
    json_text: str | None = None
    if op == "save_json":
        json_text = str(posted.get("definition", ""))
        try:
            definition = json.loads(json_text)
            if not isinstance(definition, dict):
                raise ValueError
        except ValueError:
            form = form_of_definition(journey.as_dict() if journey else BLANK)
            return _editor(
                request,
                user,
                form,
                journey=journey,
                status=400,
                error="definition: not a JSON object",
                field="definition",
                definition_text=json_text,
            )
        form = form_of_definition(definition)
    else:
        form = form_of_post(posted)
    if op not in ("save", "save_json"):
        edit_steps(form, op, str(posted.get("new_step_type", "")))
        return _editor(request, user, form, journey=journey)
    now = request.app.state.clock()
    try:
        if op == "save":
            definition = definition_of_form(form)
        fields = {
            "name": definition.get("name"),
            "trigger": definition.get("trigger"),
            "steps": definition.get("steps"),
            "exit_goal": definition.get("exit_goal"),
            "reentry": definition.get("reentry", "once"),
            "reentry_days": definition.get("reentry_days"),
            "purpose": definition.get("purpose", "marketing"),
        }
        if journey is None:
            view = create_journey(db, viewer, now=now, **fields)
            _audit(request, user, "create", view)
        else:
            view = update_journey(db, viewer, journey.id, now=now, **fields)
            _audit(request, user, "update", view)
    except (Invalid, Conflict) as problem:
        field = (problem.details or {}).get("field")
        return _editor(
            request,
            user,
            form,
            journey=journey,
            status=400,
            error=problem.message,
            field=str(field) if field else None,
            definition_text=json_text,
        )
    target = f"/journeys/{view.id}?saved=1"
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _set(request: Request, user: UserInfo, journey_id: int, status: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    db, viewer = _scope(request, user)
    try:
        view = set_status(db, viewer, journey_id, status, now=request.app.state.clock())
    except Forbidden:
        return _forbidden(request, user)
    except JourneyNotFound:
        return _missing(request, user)
    _audit(request, user, "activate" if status == "active" else "pause", view)
    return RedirectResponse(f"/journeys/{journey_id}", status_code=303)


@router.post("/journeys/{journey_id}/activate")
async def activate(request: Request, journey_id: int, user: WebUser) -> Response:
    return await _set(request, user, journey_id, "active")


@router.post("/journeys/{journey_id}/pause")
async def pause(request: Request, journey_id: int, user: WebUser) -> Response:
    return await _set(request, user, journey_id, "paused")
