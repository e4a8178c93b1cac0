"""Settings → Destinations: webhooks that receive events and segment changes (docs/destinations.md).

Admins only, like Sources: other roles get the readable 403 page. The list shows each destination's
delivery counts; a destination's page shows its recent deliveries with status codes and errors, its
settings, and the buttons to send a test event, retry dead letters, disable and delete. The signing
secret is shown once, on the page that answers the creation, and masked everywhere after.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from threadline.accounts import UserInfo
from threadline.destinations import (
    DELIVERY_STATUSES,
    EVENT_TYPES,
    SEGMENT_CHANGES,
    DestinationNotFound,
    DestinationView,
    create_destination,
    delete_destination,
    get_destination,
    list_destinations,
    recent_deliveries,
    resume_pending,
    retry_dead_letters,
    send_test_event,
    update_destination,
)
from threadline.errors import Conflict, Invalid
from threadline.privacy import record
from threadline.storage import Database
from threadline.storage.models import Segment
from threadline.web.auditing import actor_of
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PATH = "/settings/destinations"
RECENT = 25  # deliveries a destination's page lists; the REST API gives up to 200


def _refused(request: Request, user: UserInfo) -> Response | None:
    if user.role == "admin":
        return None
    return render(request, "account_forbidden.html", 403, user=user)


def _segments(db: Database) -> list[tuple[int, str]]:
    with db.read() as session:
        return [(i, n) for i, n in session.execute(select(Segment.id, Segment.name).order_by(Segment.name))]


def _audit(request: Request, user: UserInfo, action: str, destination_id: int, **details: Any) -> None:
    at = request.app.state.clock()
    details = {"via": "web", **details}
    record(
        request.app.state.db,
        actor_of(request, user.id),
        action,
        "destination",
        str(destination_id),
        at=at,
        details=details,
    )


def filters_from_form(form: FormData) -> dict[str, Any]:
    """The form's filter fields as the domain takes them; the domain names a field that is wrong."""
    events: Any = str(form.get("events_mode", "all"))
    if events == "names":
        text = str(form.get("event_names", ""))
        events = [n.strip() for line in text.splitlines() for n in line.split(",") if n.strip()]
    segments: Any = str(form.get("segments_mode", "all"))
    if segments == "chosen":
        segments = [int(str(s)) if str(s).isdigit() else str(s) for s in form.getlist("segment_ids")]
    return {
        "events": events,
        "event_types": [str(t) for t in form.getlist("event_types")],
        "segments": segments,
        "segment_changes": [str(c) for c in form.getlist("segment_changes")],
    }


def _asked(form: FormData) -> dict[str, Any]:
    """What the form said, to show it again after an error."""
    return {
        "name": str(form.get("name", "")),
        "url": str(form.get("url", "")),
        "enabled": form.get("enabled") == "on",
        **filters_from_form(form),
    }


def _form_values(view: DestinationView) -> dict[str, Any]:
    return {"name": view.name, "url": view.url, "enabled": view.enabled, **view.filters.as_dict()}


def _list_page(request: Request, user: UserInfo, status: int = 200, **extra: Any) -> Response:
    db: Database = request.app.state.db
    return render(
        request,
        "destinations.html",
        status,
        user=user,
        destinations=list_destinations(db),
        segments=_segments(db),
        event_types=EVENT_TYPES,
        segment_changes=SEGMENT_CHANGES,
        form=extra.pop("form", None)
        or {
            "enabled": True,
            "events": "all",
            "segments": "all",
            "segment_changes": list(SEGMENT_CHANGES),
            "event_types": [],
        },
        **extra,
    )


def _page(request: Request, user: UserInfo, destination_id: int, status: int = 200, **extra: Any) -> Response:
    db: Database = request.app.state.db
    view = get_destination(db, destination_id)
    return render(
        request,
        "destination.html",
        status,
        user=user,
        destination=view,
        deliveries=recent_deliveries(db, destination_id, limit=RECENT),
        statuses=DELIVERY_STATUSES,
        segments=_segments(db),
        event_types=EVENT_TYPES,
        segment_changes=SEGMENT_CHANGES,
        form=extra.pop("form", None) or _form_values(view),
        done=request.query_params.get("done", ""),
        **extra,
    )


def _missing(request: Request, user: UserInfo) -> Response:
    return _list_page(request, user, 404, error="destination: there is no such destination")


@router.get(PATH)
def destinations(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _list_page(request, user, done=request.query_params.get("done", ""))


@router.post(PATH)
async def create(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    try:
        view, secret = create_destination(
            request.app.state.db,
            name=str(form.get("name", "")),
            url=str(form.get("url", "")),
            enabled=form.get("enabled") == "on",
            filters=filters_from_form(form),
            created_by=user.id,
            now=request.app.state.clock(),
        )
    except (Invalid, Conflict) as problem:
        return _list_page(request, user, 400, form=_asked(form), error=problem.message)
    _audit(request, user, "create", view.id, name=view.name, enabled=view.enabled)
    # The one time the secret is shown: this answer is not a redirect, so a reload cannot show it again
    # from a URL, and the page says to copy it now.
    return _page(request, user, view.id, 201, new_secret=secret)


@router.get(PATH + "/{destination_id}")
def destination(request: Request, destination_id: int, user: WebUser) -> Response:
    if refused := _refused(request, user):
        return refused
    try:
        return _page(request, user, destination_id)
    except DestinationNotFound:
        return _missing(request, user)


def _back(destination_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"{PATH}/{destination_id}?{urlencode({'done': done})}", status_code=303)


@router.post(PATH + "/{destination_id}")
async def save(request: Request, destination_id: int, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    now = request.app.state.clock()
    try:
        was_enabled = get_destination(db, destination_id).enabled
        view = update_destination(
            db,
            destination_id,
            now=now,
            name=str(form.get("name", "")),
            url=str(form.get("url", "")),
            enabled=form.get("enabled") == "on",
            filters=filters_from_form(form),
        )
    except DestinationNotFound:
        return _missing(request, user)
    except (Invalid, Conflict) as problem:
        return _page(request, user, destination_id, 400, form=_asked(form), error=problem.message)
    if view.enabled and not was_enabled:
        resume_pending(db, destination_id, now=now)
    _audit(request, user, "update", destination_id, name=view.name, enabled=view.enabled)
    return _back(destination_id, "saved")


async def _action(request: Request, user: UserInfo, destination_id: int, action: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    now = request.app.state.clock()
    try:
        if action == "delete":
            name = delete_destination(db, destination_id)
            _audit(request, user, "delete", destination_id, name=name)
            return RedirectResponse(f"{PATH}?{urlencode({'done': 'deleted'})}", status_code=303)
        if action == "test":
            delivery_id = send_test_event(db, destination_id, now=now)
            _audit(request, user, "test", destination_id, delivery=delivery_id)
        elif action == "retry":
            count = retry_dead_letters(db, destination_id, now=now)
            _audit(request, user, "retry", destination_id, deliveries=count)
        else:  # enable or disable
            enable = action == "enable"
            update_destination(db, destination_id, now=now, enabled=enable)
            if enable:
                resume_pending(db, destination_id, now=now)
            _audit(request, user, "update", destination_id, fields=["enabled"], enabled=enable)
    except DestinationNotFound:
        return _missing(request, user)
    return _back(destination_id, action)


@router.post(PATH + "/{destination_id}/test")
async def test_event(request: Request, destination_id: int, user: WebUser) -> Response:
    return await _action(request, user, destination_id, "test")


@router.post(PATH + "/{destination_id}/retry")
async def retry(request: Request, destination_id: int, user: WebUser) -> Response:
    return await _action(request, user, destination_id, "retry")


@router.post(PATH + "/{destination_id}/enable")
async def enable(request: Request, destination_id: int, user: WebUser) -> Response:
    return await _action(request, user, destination_id, "enable")


@router.post(PATH + "/{destination_id}/disable")
async def disable(request: Request, destination_id: int, user: WebUser) -> Response:
    return await _action(request, user, destination_id, "disable")


@router.post(PATH + "/{destination_id}/delete")
async def delete(request: Request, destination_id: int, user: WebUser) -> Response:
    return await _action(request, user, destination_id, "delete")
