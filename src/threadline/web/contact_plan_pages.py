"""Pages for contact plans (threadline.sales): the list, the form that makes one, and the plan's page with
its effectiveness, lessons, audience, cards and the form that records a card. Plain forms, no scripts."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import viewer_for
from threadline.errors import Invalid
from threadline.privacy import record
from threadline.sales import (
    DEFAULT_METHODS,
    MESSAGE_CHANNELS,
    create_plan,
    get_plan,
    list_plans,
    plan_message_counts,
    record_card,
    send_plan_messages,
    update_lessons,
)
from threadline.segments import list_segments
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.schedule_pages import METHOD_NAMES, _local_time, _tz_name
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
AUDIENCE_NAMES = {"list": N_("A list of customers or accounts"), "segment": N_("A segment")}
YES_NO = {"": None, "yes": True, "no": False}


def _ids(text: str) -> list[str]:
    """Ids typed one per line or separated by commas or spaces."""
    return [part for part in re.split(r"[\s,;]+", text) if part]


def _audit(request: Request, user: WebUser, plan_id: int, action: str, **details: Any) -> None:
    record(
        request.app.state.db,
        actor_of(request, user.id),
        "change",
        "contact_plan",
        str(plan_id),
        at=request.app.state.clock(),
        details={"via": "web", "action": action, **details},
    )


@router.get("/contact-plans")
def plans_page(request: Request, user: WebUser) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    return render(
        request,
        "contact_plans.html",
        user=user,
        plans=list_plans(db, viewer),
        can_create=viewer.can("edit"),
        channels=METHOD_NAMES,
    )


def _form(request: Request, user: WebUser, status: int = 200, **context: Any) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    return render(
        request,
        "contact_plan_new.html",
        status,
        user=user,
        segments=[view for view, _ in list_segments(db, viewer)],
        channels={key: METHOD_NAMES.get(key, key) for key in DEFAULT_METHODS},
        audiences=AUDIENCE_NAMES,
        form=context.pop("form", {}),
        **context,
    )


@router.get("/contact-plans/new")
def plan_new(request: Request, user: WebUser) -> Response:
    return _form(request, user, form={"audience_type": "list", "channel": "phone"})


@router.post("/contact-plans")
async def plan_create(request: Request, user: WebUser) -> Response:
    form = {key: str(value) for key, value in (await request.form()).items()}
    check_csrf(request, form.get("csrf", ""))
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    tz_name = _tz_name(request, user)
    try:
        if form.get("audience_type") == "segment":
            segment = form.get("segment_id", "")
            audience: dict[str, Any] = {
                "type": "segment",
                "segment_id": int(segment) if segment.isdigit() else segment,
            }
        else:
            accounts = _ids(form.get("account_ids", ""))
            audience = {
                "type": "list",
                "profile_ids": _ids(form.get("profile_ids", "")),
                "account_ids": [int(a) if a.isdigit() else a for a in accounts],
            }
        view = create_plan(
            db,
            viewer,
            name=form.get("name"),
            goal=form.get("goal"),
            audience=audience,
            channel=form.get("channel"),
            method=form.get("method"),
            starts_at=_local_time(form.get("starts_at", ""), tz_name, "starts_at"),
            ends_at=_local_time(form.get("ends_at", ""), tz_name, "ends_at"),
            content=form.get("content"),
            incentive=form.get("incentive"),
            now=request.app.state.clock(),
        )
    except Invalid as problem:
        return _form(request, user, 400, form=form, error=str(problem))
    _audit(request, user, view.id, "contact_plan_create", members=len(view.members))
    return RedirectResponse(f"/contact-plans/{view.id}", status_code=303)


def _plan_page(request: Request, user: WebUser, plan_id: int, status: int = 200, **context: Any) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    return render(
        request,
        "contact_plan.html",
        status,
        user=user,
        plan=get_plan(db, viewer, plan_id),
        channels=METHOD_NAMES,
        can_edit=viewer.can("edit"),
        messages=plan_message_counts(db, plan_id),
        message_channels=MESSAGE_CHANNELS,
        sent=_sent_counts(request),
        **context,
    )


@router.get("/contact-plans/{plan_id}")
def plan_page(request: Request, plan_id: int, user: WebUser) -> Response:
    return _plan_page(request, user, plan_id)


@router.post("/contact-plans/{plan_id}/cards")
def card_create(
    request: Request,
    plan_id: int,
    user: WebUser,
    csrf: str = Form(""),
    profile_id: str = Form(""),
    reached: str = Form(""),
    effective: str = Form(""),
    rating: str = Form(""),
    feedback: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    try:
        card = record_card(
            db,
            viewer,
            plan_id,
            profile_id=profile_id,
            reached=YES_NO.get(reached, reached),
            effective=YES_NO.get(effective, effective),
            rating=int(rating) if rating.strip().isdigit() else (rating.strip() or None),
            feedback=feedback,
            now=request.app.state.clock(),
        )
    except Invalid as problem:
        return _plan_page(request, user, plan_id, 400, error=str(problem))
    _audit(request, user, plan_id, "contact_card_create", card=card.id)
    return RedirectResponse(f"/contact-plans/{plan_id}", status_code=303)


def _sent_counts(request: Request) -> dict[str, int] | None:
    """The counts of the last "send" (in the redirect's query), shown once."""
    if "queued" not in request.query_params:
        return None
    return {k: int(v) for k, v in request.query_params.items() if v.isdigit()}


@router.post("/contact-plans/{plan_id}/messages")
def messages_send(request: Request, plan_id: int, user: WebUser, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    try:
        counts = send_plan_messages(
            db, request.app.state.settings, viewer, plan_id, now=request.app.state.clock()
        )
    except Invalid as problem:
        return _plan_page(request, user, plan_id, 400, error=str(problem))
    _audit(request, user, plan_id, "contact_plan_messages", **counts)
    query = "&".join(f"{k}={v}" for k, v in counts.items())
    return RedirectResponse(f"/contact-plans/{plan_id}?{query}", status_code=303)


@router.post("/contact-plans/{plan_id}/lessons")
def lessons_save(
    request: Request, plan_id: int, user: WebUser, csrf: str = Form(""), lessons: str = Form("")
) -> Response:
    check_csrf(request, csrf)
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    try:
        update_lessons(db, viewer, plan_id, lessons, now=request.app.state.clock())
    except Invalid as problem:
        return _plan_page(request, user, plan_id, 400, error=str(problem))
    _audit(request, user, plan_id, "contact_plan_lessons")
    return RedirectResponse(f"/contact-plans/{plan_id}", status_code=303)
