"""The inbox: queues of conversations, a conversation with the customer's 360 beside it, replying,
notes, triage, canned replies, and the warning that a colleague is typing on the same conversation.

Thin over threadline.service, which applies the scope (a conversation is visible to whoever may read
its customer, plus its assignee and team). The 360 side panel shows only when the agent may read the
customer: an assignee from another team sees the conversation, not the rest of the customer's data.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, Viewer, list_teams, list_users, viewer_for
from threadline.analytics import message_scores
from threadline.api.conversations import attachment_response
from threadline.errors import Forbidden, Invalid
from threadline.privacy import Actor, consent_state, disclosure_for, record
from threadline.profiles import ProfileNotFound, profile_view, timeline_page
from threadline.sales import sales_for_profile
from threadline.service import (
    PRIORITIES,
    QUEUES,
    SERVICE_CHANNELS,
    SLA_STATES,
    STATUSES,
    UNCHANGED,
    ConversationDetail,
    ConversationNotFound,
    TypingRegistry,
    add_note,
    away_agents,
    canned_replies,
    change_conversation,
    customer_conversations,
    fill_canned_reply,
    get_conversation,
    list_conversations,
    read_attachment,
    reply,
    set_canned_replies,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.consent_pages import PURPOSE_NAMES
from threadline.web.consent_pages import STATUS_NAMES as CONSENT_STATUS_NAMES
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
RECENT_EVENTS = 10
PAST_CONVERSATIONS = 10
QUEUE_NAMES = {"unassigned": N_("Unassigned"), "mine": N_("Mine"), "team": N_("My team"), "all": N_("All")}
STATUS_NAMES = {
    "open": N_("Open"),
    "pending": N_("Pending"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}
PRIORITY_NAMES = {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")}
SLA_NAMES = {"ok": N_("On time"), "warning": N_("Due soon"), "breached": N_("Breached")}
# Channels the workspace's channel names (web/i18n.py) do not have yet.
SERVICE_CHANNEL_NAMES = {"whatsapp": N_("WhatsApp"), "wechat": N_("WeChat"), "phone": N_("Phone")}
NAMES: dict[str, Any] = {
    "queue_names": QUEUE_NAMES,
    "status_names": STATUS_NAMES,
    "priority_names": PRIORITY_NAMES,
    "sla_names": SLA_NAMES,
    "service_channel_names": SERVICE_CHANNEL_NAMES,
}


def _scope(request: Request, user: UserInfo) -> tuple[Database, Viewer, Actor]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user.id, user.role), actor_of(request, user.id)


def typing_registry(request: Request) -> TypingRegistry:
    """The process's registry of who types where (threadline.service.collisions), made on first use."""
    registry: TypingRegistry | None = getattr(request.app.state, "service_typing", None)
    if registry is None:
        registry = request.app.state.service_typing = TypingRegistry(clock=request.app.state.clock)
    return registry


def _not_found(request: Request, user: UserInfo, actor: Actor, kind: str, object_id: str | int) -> Response:
    at = request.app.state.clock()
    record(request.app.state.db, actor, "denied", kind, str(object_id), at=at, details={"via": "web"})
    return render(request, "not_found.html", 404, user=user)


@router.get("/inbox")
def inbox(
    request: Request,
    user: WebUser,
    queue: str = "",
    channel: str = "",
    status: str = "",
    priority: str = "",
    tag: str = "",
    sla_state: str = "",
) -> Response:
    db, viewer, actor = _scope(request, user)
    filters = {"channel": channel, "status": status, "priority": priority, "tag": tag, "sla_state": sla_state}
    queue = queue or ("mine" if viewer.scope != "all" else "unassigned")
    error = None
    try:
        found = list_conversations(
            db,
            viewer,
            queue=queue,
            channel=channel or None,
            status=status or None,
            priority=priority or None,
            tag=tag or None,
            sla_state=sla_state or None,
        )
    except Invalid as problem:
        error, queue = problem.message, "all"
        filters = dict.fromkeys(filters, "")
        found = list_conversations(db, viewer, queue=queue)
    at = request.app.state.clock()
    record(db, actor, "view", "conversations", None, at=at, details={"via": "web", "queue": queue})
    kept = {k: v for k, v in filters.items() if v}
    return render(
        request,
        "inbox.html",
        400 if error else 200,
        user=user,
        inbox=found,
        queue=queue,
        queues=QUEUES,
        filters=filters,
        query=urlencode(kept),
        channels=SERVICE_CHANNELS,
        statuses=STATUSES,
        priorities=PRIORITIES,
        sla_states=SLA_STATES,
        reveal=viewer.can("pii"),
        error=error,
        away=user.id in away_agents(db),
        **NAMES,
    )


def _side_panel(request: Request, db: Database, viewer: Viewer, profile_id: str) -> dict[str, Any] | None:
    """The customer's 360 beside the conversation, or None outside the agent's customer scope."""
    try:
        view = profile_view(db, profile_id, viewer=viewer)
    except ProfileNotFound:
        return None
    disclosure = disclosure_for(request.app.state.settings, reveal=viewer.can("pii"))
    live = view["id"]
    events = disclosure.timeline(timeline_page(db, live, limit=RECENT_EVENTS, viewer=viewer))["events"]
    _, past = customer_conversations(db, viewer, live, limit=PAST_CONVERSATIONS)
    return {
        "p": disclosure.profile(view),
        "events": events,
        "past": past,
        "consent": consent_state(db, live, viewer=viewer),
        # Open deals only: what the customer may be weighing while they write; within the sales scope.
        "deals": [d for d in sales_for_profile(db, viewer, live)["deals"] if d["status"] == "open"],
    }


def _conversation_page(
    request: Request,
    user: UserInfo,
    db: Database,
    viewer: Viewer,
    detail: ConversationDetail,
    *,
    error: str | None = None,
    draft: str = "",
    note: str = "",
    status: int = 200,
) -> Response:
    conversation = detail.conversation
    side = _side_panel(request, db, viewer, conversation.profile_id)
    staff = [u for u in list_users(db) if u.is_active and u.role != "analyst"]
    typing = typing_registry(request).others(conversation.id, user.id)
    inbound = {e.id: e.message_id_header for e in detail.entries if e.direction == "in"}
    return render(
        request,
        "inbox_conversation.html",
        status,
        user=user,
        c=conversation,
        entries=detail.entries,
        sentiments=message_scores(db, conversation.channel, inbound),
        side=side,
        staff=staff,
        teams=list_teams(db),
        canned=canned_replies(db),
        can_handle=viewer.can("edit"),
        reveal=viewer.can("pii"),
        typing=typing,
        error=error,
        draft=draft,
        note=note,
        statuses=STATUSES,
        priorities=PRIORITIES,
        purpose_names=PURPOSE_NAMES,
        consent_status_names=CONSENT_STATUS_NAMES,
        **NAMES,
    )


@router.get("/inbox/canned-replies")
def canned_reply_list(request: Request, user: WebUser) -> Response:
    return render(
        request, "inbox_canned.html", user=user, replies=canned_replies(request.app.state.db), error=None
    )


@router.post("/inbox/canned-replies")
def canned_reply_change(
    request: Request,
    user: WebUser,
    csrf: str = Form(""),
    title: str = Form(""),
    body: str = Form(""),
    remove: str = Form(""),
) -> Response:
    """Admins add a canned reply, or remove one by its position."""
    check_csrf(request, csrf)
    if user.role != "admin":
        raise Forbidden("canned replies are kept by admins")
    db: Database = request.app.state.db
    replies = [r.as_dict() for r in canned_replies(db)]
    if remove.isdigit() and int(remove) < len(replies):
        del replies[int(remove)]
    else:
        replies.append({"title": title, "body": body})
    now = request.app.state.clock()
    try:
        set_canned_replies(db, replies, user_id=user.id, now=now)
    except Invalid as problem:
        return render(
            request, "inbox_canned.html", 400, user=user, replies=canned_replies(db), error=problem.message
        )
    record(
        db,
        actor_of(request, user.id),
        "update",
        "canned_replies",
        None,
        at=now,
        details={"count": len(replies)},
    )
    return RedirectResponse("/inbox/canned-replies", status_code=303)


@router.get("/inbox/attachments/{attachment_id}")
def attachment_download(request: Request, attachment_id: int, user: WebUser) -> Response:
    """A customer's file, for agents who see personal data; audited as `download`."""
    db, viewer, actor = _scope(request, user)
    try:
        if not viewer.can("pii"):
            raise ConversationNotFound("attachment not shown without the pii permission")
        view, data, conversation_id = read_attachment(db, viewer, attachment_id)
    except ConversationNotFound:
        return _not_found(request, user, actor, "attachment", attachment_id)
    at = request.app.state.clock()
    details = {"via": "web", "conversation": conversation_id, "size": len(data)}
    record(db, actor, "download", "attachment", str(attachment_id), at=at, details=details)
    return attachment_response(view.filename, view.content_type, data)


@router.get("/inbox/{conversation_id}")
def conversation_page(request: Request, conversation_id: int, user: WebUser) -> Response:
    db, viewer, actor = _scope(request, user)
    try:
        detail = get_conversation(db, viewer, conversation_id)
    except ConversationNotFound:
        return _not_found(request, user, actor, "conversation", conversation_id)
    at = request.app.state.clock()
    record(db, actor, "view", "conversation", str(conversation_id), at=at, details={"via": "web"})
    return _conversation_page(request, user, db, viewer, detail)


def _after(
    request: Request, user: UserInfo, conversation_id: int, problem: Invalid, **typed: str
) -> Response:
    """The conversation again with the error naming the field and what was typed kept."""
    db, viewer, _ = _scope(request, user)
    detail = get_conversation(db, viewer, conversation_id)
    return _conversation_page(request, user, db, viewer, detail, error=problem.message, status=400, **typed)


@router.post("/inbox/{conversation_id}/reply")
def conversation_reply(
    request: Request, conversation_id: int, user: WebUser, csrf: str = Form(""), body_text: str = Form("")
) -> Response:
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user)
    now = request.app.state.clock()
    try:
        entry_id = reply(
            db,
            request.app.state.settings,
            viewer,
            conversation_id,
            body_text=body_text,
            author_user_id=user.id,
            now=now,
        )
    except ConversationNotFound:
        return _not_found(request, user, actor, "conversation", conversation_id)
    except Invalid as problem:
        return _after(request, user, conversation_id, problem, draft=body_text)
    typing_registry(request).stopped(conversation_id, user.id)
    record(
        db,
        actor,
        "reply",
        "conversation",
        str(conversation_id),
        at=now,
        details={"via": "web", "message": entry_id},
    )
    return RedirectResponse(f"/inbox/{conversation_id}#m{entry_id}", status_code=303)


@router.post("/inbox/{conversation_id}/note")
def conversation_note(
    request: Request, conversation_id: int, user: WebUser, csrf: str = Form(""), body_text: str = Form("")
) -> Response:
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user)
    now = request.app.state.clock()
    try:
        entry_id = add_note(db, viewer, conversation_id, body_text=body_text, author_user_id=user.id, now=now)
    except ConversationNotFound:
        return _not_found(request, user, actor, "conversation", conversation_id)
    except Invalid as problem:
        return _after(request, user, conversation_id, problem, note=body_text)
    record(
        db,
        actor,
        "note",
        "conversation",
        str(conversation_id),
        at=now,
        details={"via": "web", "message": entry_id},
    )
    return RedirectResponse(f"/inbox/{conversation_id}#m{entry_id}", status_code=303)


def _optional_id(value: str) -> Any:
    """A select's value: "" keeps, "none" clears, a number sets."""
    if value == "":
        return UNCHANGED
    if value == "none":
        return None
    if not value.isdigit():
        raise Invalid("must be a number", details={"field": "id"})
    return int(value)


@router.post("/inbox/{conversation_id}/change")
def conversation_change(
    request: Request,
    conversation_id: int,
    user: WebUser,
    csrf: str = Form(""),
    status: str = Form(""),
    priority: str = Form(""),
    assignee_id: str = Form(""),
    team_id: str = Form(""),
    tags: str | None = Form(None),
) -> Response:
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user)
    now = request.app.state.clock()
    try:
        detail, changed = change_conversation(
            db,
            viewer,
            conversation_id,
            status=status or None,
            priority=priority or None,
            assignee_id=_optional_id(assignee_id),
            team_id=_optional_id(team_id),
            tags=None if tags is None else [t.strip() for t in tags.split(",") if t.strip()],
            now=now,
        )
    except ConversationNotFound:
        return _not_found(request, user, actor, "conversation", conversation_id)
    except Invalid as problem:
        return _after(request, user, conversation_id, problem)
    if changed:
        details = {"via": "web", "changed": changed}
        record(db, actor, "update", "conversation", str(conversation_id), at=now, details=details)
    return RedirectResponse("/inbox" if detail is None else f"/inbox/{conversation_id}", status_code=303)


@router.get("/inbox/{conversation_id}/canned")
def canned_reply_fill(request: Request, conversation_id: int, user: WebUser, canned: str = "") -> Response:
    """The reply box with the chosen canned reply written for this customer (htmx swaps it in)."""
    db, viewer, actor = _scope(request, user)
    try:
        detail = get_conversation(db, viewer, conversation_id)
    except ConversationNotFound:
        return _not_found(request, user, actor, "conversation", conversation_id)
    replies = canned_replies(db)
    text, error = "", None
    if canned.isdigit() and int(canned) < len(replies):
        try:
            text = fill_canned_reply(
                db, request.app.state.settings, replies[int(canned)], detail.conversation.profile_id
            )
        except Invalid as problem:
            error, text = problem.message, replies[int(canned)].body
    return render(
        request, "inbox_reply_box.html", user=user, c=detail.conversation, draft=text, box_error=error
    )


@router.post("/inbox/{conversation_id}/typing")
def conversation_typing(
    request: Request, conversation_id: int, user: WebUser, csrf: str = Form(""), typing: str = Form("0")
) -> Response:
    """The reply box's poll: notes that this agent types (typing=1) and answers who else does."""
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user)
    try:
        get_conversation(db, viewer, conversation_id)
    except ConversationNotFound:
        return _not_found(request, user, actor, "conversation", conversation_id)
    registry = typing_registry(request)
    if typing == "1":
        others = registry.typing(conversation_id, user.id, user.name or user.email)
    else:
        others = registry.others(conversation_id, user.id)
    return render(request, "inbox_typing.html", user=user, typing=others)


@router.get("/customers/{profile_id}/conversations")
def customer_conversation_panel(request: Request, profile_id: str, user: WebUser) -> Response:
    """The 360 page's conversations panel (htmx), or a page of its own without JavaScript."""
    db, viewer, actor = _scope(request, user)
    try:
        live, rows = customer_conversations(db, viewer, profile_id, limit=PAST_CONVERSATIONS * 2)
    except ProfileNotFound:
        return _not_found(request, user, actor, "profile", profile_id)
    at = request.app.state.clock()
    record(db, actor, "view", "profile", live, at=at, details={"via": "web", "part": "conversations"})
    page = request.headers.get("HX-Request") != "true"
    return render(
        request,
        "customer_conversations_page.html" if page else "customer_conversations_panel.html",
        user=user,
        profile_id=live,
        conversations=rows,
        reveal=viewer.can("pii"),
        **NAMES,
    )
