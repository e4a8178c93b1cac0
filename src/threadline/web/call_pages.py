"""Logging a phone call by hand (`/calls/new`): the agent types the number and what happened, and the
call goes where a call-center record would (threadline.service.log_call): the customer's phone
conversation, found by the number, and "Call Logged" on their timeline. Linked from the inbox."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import viewer_for
from threadline.errors import Forbidden, Invalid
from threadline.privacy import record
from threadline.service import DIRECTIONS, DISPOSITIONS, log_call, parse_call_record
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
DIRECTION_NAMES = {"inbound": N_("Inbound"), "outbound": N_("Outbound")}
DISPOSITION_NAMES = {
    "answered": N_("Answered"),
    "missed": N_("Missed"),
    "voicemail": N_("Voicemail"),
    "busy": N_("Busy"),
    "failed": N_("Failed"),
}


def _form(
    request: Request, user: WebUser, status: int = 200, error: str | None = None, **typed: str
) -> Response:
    return render(
        request,
        "call_log.html",
        status,
        user=user,
        error=error,
        typed=typed,
        directions=DIRECTIONS,
        dispositions=DISPOSITIONS,
        direction_names=DIRECTION_NAMES,
        disposition_names=DISPOSITION_NAMES,
    )


@router.get("/calls/new")
def call_form(request: Request, user: WebUser, number: str = "") -> Response:
    return _form(request, user, number=number)


@router.post("/calls")
def call_logged(
    request: Request,
    user: WebUser,
    csrf: str = Form(""),
    number: str = Form(""),
    direction: str = Form("inbound"),
    disposition: str = Form("answered"),
    minutes: str = Form("0"),
    notes: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    typed = {
        "number": number,
        "direction": direction,
        "disposition": disposition,
        "minutes": minutes,
        "notes": notes,
    }
    settings, db, now = request.app.state.settings, request.app.state.db, request.app.state.clock()
    if not viewer_for(db, user.id, user.role).can("edit"):
        raise Forbidden("logging a call needs the edit permission")
    payload = {
        "number": number,
        "direction": direction,
        "disposition": disposition,
        "duration_seconds": round(float(minutes) * 60) if minutes.replace(".", "", 1).isdigit() else -1,
        "notes": notes,
        "agent": user.email,
    }
    try:
        received = log_call(
            db, settings, parse_call_record(settings, payload, now=now), now=now, logged_by=user.id
        )
    except Invalid as problem:
        return _form(request, user, 400, problem.message, **typed)
    if received is None:  # an erased person's number: nothing is kept
        return RedirectResponse("/inbox", status_code=303)
    record(
        db,
        actor_of(request, user.id),
        "log_call",
        "conversation",
        str(received.conversation_id),
        at=now,
        details={"via": "web"},
    )
    return RedirectResponse(f"/inbox/{received.conversation_id}", status_code=303)
