"""REST: conversations (threadline.service): the queues, one conversation, replying, notes, and changes
to status, priority, assignee, team and tags. Thin: parse, call the domain (which applies the scope),
audit (ids and changes, never a body), map out."""

from __future__ import annotations

from typing import Any, NoReturn
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep
from threadline.privacy import record
from threadline.profiles import ProfileNotFound
from threadline.service import (
    UNCHANGED,
    ConversationNotFound,
    add_note,
    change_conversation,
    customer_conversations,
    get_conversation,
    list_conversations,
    read_attachment,
    reply,
)
from threadline.storage import Database

router = APIRouter(prefix="/api/v1", tags=["conversations"])


class BodyIn(BaseModel):
    body_text: str = Field(description="The text: a reply is sent as written, on the conversation's channel.")


class ReplyIn(BodyIn):
    purpose: str = Field(
        "service",
        description="service (an answer), or marketing (it promotes: needs the customer's marketing consent)",
    )


class ChangeIn(BaseModel):
    status: str | None = Field(None, description="open, pending, resolved or closed")
    priority: str | None = Field(None, description="low, normal, high or urgent")
    assignee_id: int | None = Field(None, description="A user's id; null unassigns (leave it out to keep it)")
    team_id: int | None = Field(
        None, description="A team's id; null removes the team (leave it out to keep it)"
    )
    tags: list[str] | None = Field(None, description="The conversation's tags, replacing the ones it has")


def _denied(request: Request, db: Database, caller: CallerDep, conversation_id: int) -> NoReturn:
    """Outside the scope answers like an unknown conversation; the attempt is audited."""
    at = request.app.state.clock()
    record(db, caller.actor, "denied", "conversation", str(conversation_id), at=at, details={"via": "api"})
    raise ConversationNotFound(f"conversation {conversation_id} does not exist") from None


@router.get("/conversations", summary="A queue of conversations with the count of each queue")
def get_conversations(
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    queue: str = Query("all", description="unassigned, mine, team or all"),
    channel: str | None = Query(None),
    status: str | None = Query(None, description="a status, or any; open and pending when left out"),
    priority: str | None = Query(None),
    tag: str | None = Query(None),
    sla_state: str | None = Query(None, description="ok, warning or breached"),
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    inbox = list_conversations(
        db,
        caller.viewer,
        queue=queue,
        channel=channel,
        status=status,
        priority=priority,
        tag=tag,
        sla_state=sla_state,
        limit=limit,
    )
    at = request.app.state.clock()
    record(db, caller.actor, "view", "conversations", None, at=at, details={"via": "api", "queue": queue})
    reveal = caller.viewer.can("pii")
    return {"conversations": [c.as_dict(reveal=reveal) for c in inbox.conversations], "counts": inbox.counts}


@router.get("/conversations/{conversation_id}", summary="A conversation with its messages, oldest first")
def get_one(conversation_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    try:
        detail = get_conversation(db, caller.viewer, conversation_id)
    except ConversationNotFound:
        _denied(request, db, caller, conversation_id)
    at = request.app.state.clock()
    record(db, caller.actor, "view", "conversation", str(conversation_id), at=at, details={"via": "api"})
    return detail.as_dict(reveal=caller.viewer.can("pii"))


@router.post(
    "/conversations/{conversation_id}/replies",
    status_code=201,
    summary="Answer the customer on the conversation's channel (a service message: consent decides)",
)
def post_reply(
    conversation_id: int, body: ReplyIn, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    """201 with the conversation; the reply's `delivery_status` is `queued` or `refused` (the
    customer refused service messages, or their processing is restricted)."""
    now = request.app.state.clock()
    try:
        entry_id = reply(
            db,
            request.app.state.settings,
            caller.viewer,
            conversation_id,
            body_text=body.body_text,
            author_user_id=caller.user.id,
            now=now,
            purpose=body.purpose,
        )
    except ConversationNotFound:
        _denied(request, db, caller, conversation_id)
    detail = get_conversation(db, caller.viewer, conversation_id)
    entry = next(e for e in detail.entries if e.id == entry_id)
    details = {"via": "api", "message": entry_id, "outbound": entry.outbound_message_id}
    details["status"] = entry.delivery_status
    record(db, caller.actor, "reply", "conversation", str(conversation_id), at=now, details=details)
    return {**detail.as_dict(reveal=caller.viewer.can("pii")), "reply_id": entry_id}


@router.post("/conversations/{conversation_id}/notes", status_code=201, summary="An internal note")
def post_note(
    conversation_id: int, body: BodyIn, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    now = request.app.state.clock()
    try:
        entry_id = add_note(
            db,
            caller.viewer,
            conversation_id,
            body_text=body.body_text,
            author_user_id=caller.user.id,
            now=now,
        )
    except ConversationNotFound:
        _denied(request, db, caller, conversation_id)
    details = {"via": "api", "message": entry_id}
    record(db, caller.actor, "note", "conversation", str(conversation_id), at=now, details=details)
    detail = get_conversation(db, caller.viewer, conversation_id)
    return {**detail.as_dict(reveal=caller.viewer.can("pii")), "note_id": entry_id}


@router.patch("/conversations/{conversation_id}", summary="Change status, priority, assignee, team or tags")
def patch_conversation(
    conversation_id: int, body: ChangeIn, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    """Fields left out stay as they are; `assignee_id: null` unassigns. 400 names the field. A change
    that hands the conversation out of your scope answers `{"id", "changed"}` only."""
    now = request.app.state.clock()
    given = body.model_fields_set
    try:
        detail, changed = change_conversation(
            db,
            caller.viewer,
            conversation_id,
            status=body.status,
            priority=body.priority,
            assignee_id=body.assignee_id if "assignee_id" in given else UNCHANGED,
            team_id=body.team_id if "team_id" in given else UNCHANGED,
            tags=body.tags,
            now=now,
        )
    except ConversationNotFound:
        _denied(request, db, caller, conversation_id)
    if changed:
        details = {"via": "api", "changed": changed}
        record(db, caller.actor, "update", "conversation", str(conversation_id), at=now, details=details)
    if detail is None:
        return {"id": conversation_id, "changed": changed}
    return {**detail.as_dict(reveal=caller.viewer.can("pii")), "changed": changed}


@router.get("/profiles/{profile_id}/conversations", summary="The customer's conversations, newest first")
def get_customer_conversations(
    profile_id: str,
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    limit: int = Query(20, ge=1, le=200),
) -> dict[str, Any]:
    try:
        live, rows = customer_conversations(db, caller.viewer, profile_id, limit=limit)
    except ProfileNotFound as error:
        scoped = bool(isinstance(error.details, dict) and error.details.get("out_of_scope"))
        at = request.app.state.clock()
        record(db, caller.actor, "denied", "profile", profile_id, at=at, details={"out_of_scope": scoped})
        raise ProfileNotFound(f"profile {profile_id} does not exist") from None
    at = request.app.state.clock()
    record(db, caller.actor, "view", "profile", live, at=at, details={"via": "api", "part": "conversations"})
    reveal = caller.viewer.can("pii")
    return {"profile_id": live, "conversations": [c.as_dict(reveal=reveal) for c in rows]}


@router.get("/attachments/{attachment_id}", summary="Download an attachment of a conversation message")
def get_attachment(attachment_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    """Needs the pii permission (a customer's file is their personal data); audited as `download`."""
    at = request.app.state.clock()
    try:
        if not caller.viewer.can("pii"):
            raise ConversationNotFound(f"attachment {attachment_id} does not exist")
        view, data, conversation_id = read_attachment(db, caller.viewer, attachment_id)
    except ConversationNotFound:
        record(db, caller.actor, "denied", "attachment", str(attachment_id), at=at, details={"via": "api"})
        raise
    details = {"via": "api", "conversation": conversation_id, "size": len(data)}
    record(db, caller.actor, "download", "attachment", str(attachment_id), at=at, details=details)
    return attachment_response(view.filename, view.content_type, data)


def attachment_response(filename: str, content_type: str, data: bytes) -> Response:
    """A download: always as an attachment with nosniff, so a customer's HTML or SVG file never runs
    in the workspace's origin."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
    return Response(
        data,
        media_type=content_type or "application/octet-stream",
        headers={"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"},
    )
