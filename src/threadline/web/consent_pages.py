"""The 360 page's consent panel, and the public unsubscribe page every message links to.

The panel loads with htmx after the 360 page (customer_consent.html), so the page itself reads nothing
more; without JavaScript its link opens the same panel as a page of its own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, Viewer, viewer_for
from threadline.privacy import (
    ALL,
    CHANNELS,
    PURPOSES,
    STATUSES,
    Actor,
    CustomerNotFound,
    InvalidConsent,
    UnsubscribeLink,
    audit_details,
    consent_history,
    consent_state,
    read_unsubscribe_token,
    record,
    record_consent,
    statement,
    unsubscribe,
)
from threadline.profiles import may_change
from threadline.storage import Database
from threadline.web.auditing import actor_of, customer_not_found
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PANEL_HISTORY = 50  # statements the panel lists; the REST API gives the whole ledger
MAX_NOTE = 500
PURPOSE_NAMES = {
    "marketing": N_("marketing"),
    "analytics": N_("analytics"),
    "personalisation": N_("personalisation"),
    "service": N_("service"),
}
# Consent channels are ways of reaching the customer, not the source channels of CHANNEL_NAMES.
CONSENT_CHANNEL_NAMES = {
    ALL: N_("All channels"),
    "email": N_("email"),
    "sms": N_("SMS"),
    "phone": N_("phone"),
    "push": N_("push"),
    "whatsapp": N_("WhatsApp"),
    "wechat": N_("WeChat"),
    "post": N_("post"),
}
STATUS_NAMES = {
    "granted": N_("granted"),
    "denied": N_("denied"),
    "withdrawn": N_("withdrawn"),
    "unknown": N_("unknown"),
}
ONE_CLICK = "One-Click"  # RFC 8058: the body a mail client posts is List-Unsubscribe=One-Click


def _scope(request: Request, user_id: int, role: str) -> tuple[Database, Viewer, Actor]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user_id, role), actor_of(request, user_id)


def _names() -> dict[str, Any]:
    return {
        "purpose_names": PURPOSE_NAMES,
        "consent_channel_names": CONSENT_CHANNEL_NAMES,
        "status_names": STATUS_NAMES,
        "purposes": PURPOSES,
        "consent_channels": (ALL, *CHANNELS),
        "statuses": STATUSES,
    }


def _panel(
    request: Request, user: UserInfo, db: Database, viewer: Viewer, profile_id: str, status: int = 200
) -> Response:
    state = consent_state(db, profile_id, viewer=viewer)
    live = state["profile_id"]
    history = consent_history(db, live, viewer=viewer, limit=PANEL_HISTORY)
    # A browser without htmx asked for the panel as a page (the placeholder's link).
    page = request.headers.get("HX-Request") != "true"
    return render(
        request,
        "customer_consent_page.html" if page else "customer_consent_panel.html",
        status,
        user=user,
        profile_id=live,
        consent=state,
        history=history,
        can_record=viewer.can("edit") and may_change(db, viewer, live),
        **_names(),
    )


@router.get("/customers/{profile_id}/consent")
def customer_consent(request: Request, profile_id: str, user: WebUser) -> Response:
    db, viewer, actor = _scope(request, user.id, user.role)
    try:
        response = _panel(request, user, db, viewer, profile_id)
    except CustomerNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem)
    details = {"via": "web", "part": "consent"}
    record(db, actor, "view", "profile", profile_id, at=request.app.state.clock(), details=details)
    return response


@router.post("/customers/{profile_id}/consent")
def customer_consent_record(
    request: Request,
    profile_id: str,
    user: WebUser,
    csrf: str = Form(""),
    purpose: str = Form(""),
    channel: str = Form(ALL),
    status: str = Form(""),
    note: str = Form(""),
) -> Response:
    """A statement entered by staff (a call, a signed form), with their note as evidence; by the REST
    API's rules (the edit permission, the customer in the user's write scope)."""
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user.id, user.role)
    said = statement(purpose, channel, status)  # InvalidConsent (400) names the field
    now = request.app.state.clock()
    evidence = {"form": "360 page", "note": note.strip()[:MAX_NOTE]}
    try:
        live = record_consent(
            db, viewer, profile_id, [said], source="web", now=now, actor_user_id=user.id, evidence=evidence
        )
    except CustomerNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem)
    record(db, actor, "consent", "profile", live, at=now, details=audit_details([said], via="web"))
    if request.headers.get("HX-Request") == "true":
        return _panel(request, user, db, viewer, live)
    return RedirectResponse(f"/customers/{quote(live)}#consent", status_code=303)


def _link(request: Request, token: str) -> UnsubscribeLink:
    db: Database = request.app.state.db
    # A write transaction: privacy_key stores the salt the first time if it went missing.
    with db.write() as session:
        return read_unsubscribe_token(session.connection(), request.app.state.settings, token)


def _invalid(request: Request, reason: str) -> Response:
    return render(
        request, "unsubscribe_invalid.html", 400 if reason == "forged" else 404, user=None, reason=reason
    )


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, token: str) -> Response:
    """Asks before doing anything: link scanners in mail systems follow every link they see."""
    try:
        link = _link(request, token)
    except InvalidConsent:
        return _invalid(request, "forged")
    return render(request, "unsubscribe.html", user=None, link=link, token=token, **_names())


@router.post("/unsubscribe/{token}")
async def unsubscribe_confirmed(request: Request, token: str) -> Response:
    """The confirm button, or a mail client's RFC 8058 one-click POST (List-Unsubscribe=One-Click).
    No CSRF token: the signed link is the whole credential, and mail clients post without a session."""
    try:
        link = _link(request, token)
    except InvalidConsent:
        return _invalid(request, "forged")
    form = await request.form()
    one_click = form.get("List-Unsubscribe") == ONE_CLICK
    actor = actor_of(request, None)
    evidence = {
        "form": "one-click" if one_click else "unsubscribe page",
        "ip": actor.ip,
        "user_agent": actor.user_agent,
    }
    now = request.app.state.clock()
    try:
        live = unsubscribe(request.app.state.db, link, now=now, evidence=evidence)
    except CustomerNotFound:
        return _invalid(request, "gone")
    if live is not None:
        said = statement(link.purpose, link.channel, "withdrawn")
        details = audit_details([said], via="unsubscribe", one_click=one_click)
        record(request.app.state.db, actor, "consent", "profile", live, at=now, details=details)
    return render(request, "unsubscribe_done.html", user=None, link=link, **_names())
