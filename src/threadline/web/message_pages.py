"""The 360 page's messages panel: send the customer an email, and the delivery log.

Like the consent panel, it loads with htmx after the page (customer_messages.html); without JavaScript
its link opens the panel as a page of its own. The form shows what the consent check answers for each
purpose before anything is sent; sending goes through threadline.messaging like every other sender.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, Viewer, viewer_for
from threadline.errors import Invalid
from threadline.messaging import MessageView, delivery_log, send_decisions, send_message
from threadline.privacy import PURPOSES, Actor, mask_email, record
from threadline.profiles import ProfileNotFound, may_change
from threadline.storage import Database
from threadline.web.auditing import actor_of, customer_not_found
from threadline.web.consent_pages import PURPOSE_NAMES
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PANEL_MESSAGES = 20  # the REST API gives up to 200
MESSAGE_STATUS_NAMES = {
    "queued": N_("queued"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "failed": N_("failed"),
    "refused": N_("refused"),
}
# check_send's reason codes (threadline.privacy), as the form shows them before sending.
DECISION_NAMES = {
    "granted": N_("may be sent: the customer granted it"),
    "service": N_("may be sent: a service message the customer has not refused"),
    "restricted": N_("refused: the customer's processing is restricted"),
    "no_consent": N_("refused: the customer never granted it"),
    "denied": N_("refused: the customer denied it"),
    "withdrawn": N_("refused: the customer withdrew it"),
}


def _scope(request: Request, user_id: int, role: str) -> tuple[Database, Viewer, Actor]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user_id, role), actor_of(request, user_id)


def _shown(message: MessageView, reveal: bool) -> dict[str, Any]:
    """A log line: without the pii permission, the address masked and the subject left out."""
    address = message.to_address or ""
    return {
        "id": message.id,
        "purpose": message.purpose,
        "status": message.status,
        "reason": message.reason,
        "to": address if reveal else mask_email(address),
        "subject": message.subject if reveal else None,
        "created_at": message.created_at,
        "sent_at": message.sent_at,
        "opened_at": message.first_opened_at,
        "clicked_at": message.first_clicked_at,
    }


def _panel(
    request: Request,
    user: UserInfo,
    db: Database,
    viewer: Viewer,
    profile_id: str,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    just_sent: MessageView | None = None,
    status: int = 200,
) -> Response:
    live, messages = delivery_log(db, profile_id, viewer=viewer, limit=PANEL_MESSAGES)
    _, decisions = send_decisions(db, live, viewer=viewer)
    reveal = viewer.can("pii")
    page = request.headers.get("HX-Request") != "true"  # a browser without htmx asked for a page
    return render(
        request,
        "customer_messages_page.html" if page else "customer_messages_panel.html",
        status,
        user=user,
        profile_id=live,
        messages=[_shown(m, reveal) for m in messages],
        decisions=decisions,
        can_send=viewer.can("edit") and may_change(db, viewer, live),
        purposes=PURPOSES,
        purpose_names=PURPOSE_NAMES,
        status_names=MESSAGE_STATUS_NAMES,
        decision_names=DECISION_NAMES,
        error=error,
        form=form or {"purpose": "service", "subject": "", "body_text": ""},
        just_sent=just_sent,
    )


@router.get("/customers/{profile_id}/messages")
def customer_messages(request: Request, profile_id: str, user: WebUser) -> Response:
    db, viewer, actor = _scope(request, user.id, user.role)
    try:
        response = _panel(request, user, db, viewer, profile_id)
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem)
    at = request.app.state.clock()
    record(db, actor, "view", "profile", profile_id, at=at, details={"via": "web", "part": "messages"})
    return response


@router.post("/customers/{profile_id}/messages")
def customer_message_send(
    request: Request,
    profile_id: str,
    user: WebUser,
    csrf: str = Form(""),
    purpose: str = Form(""),
    subject: str = Form(""),
    body_text: str = Form(""),
) -> Response:
    """Send the customer an email by the REST API's rules (edit permission, write scope, consent)."""
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user.id, user.role)
    now = request.app.state.clock()
    htmx = request.headers.get("HX-Request") == "true"
    try:
        message = send_message(
            db,
            request.app.state.settings,
            viewer,
            profile_id,
            purpose=purpose,
            subject=subject,
            body_text=body_text,
            origin="manual",
            created_by=user.id,
            now=now,
        )
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem)
    except Invalid as problem:
        # The form comes back with what was typed and the error naming the field. htmx swaps only a
        # 2xx answer, so the panel answers 200 to it and 400 to a plain form post.
        form = {"purpose": purpose, "subject": subject, "body_text": body_text}
        return _panel(
            request,
            user,
            db,
            viewer,
            profile_id,
            error=problem.message,
            form=form,
            status=200 if htmx else 400,
        )
    details = {
        "via": "web",
        "message": message.id,
        "channel": message.channel,
        "purpose": message.purpose,
        "status": message.status,
    }
    record(db, actor, "message", "profile", message.profile_id, at=now, details=details)
    if htmx:
        return _panel(request, user, db, viewer, message.profile_id, just_sent=message)
    return RedirectResponse(f"/customers/{quote(message.profile_id)}#messages", status_code=303)
