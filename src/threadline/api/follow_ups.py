"""REST: follow-ups, tasks, the schedule, the customer pool and the calendar feed (threadline.sales), within
the caller's data scope. Changes are audited with ids and field names only (notes can quote customers)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from threadline.api.conversations import attachment_response
from threadline.api.deps import AdminUser, CallerDep, DatabaseDep, SettingsDep
from threadline.errors import Invalid, NotFound
from threadline.privacy import record
from threadline.sales import (
    assign_account,
    attach_file,
    calendar_feed,
    claim_account,
    create_task,
    day_bounds,
    delete_follow_up,
    delete_task,
    follow_up_files,
    get_follow_up,
    get_pool_rules,
    get_task,
    issue_calendar_token,
    list_follow_ups,
    list_pool,
    list_tasks,
    read_file,
    record_follow_up,
    revoke_calendar_token,
    schedule_items,
    set_pool_rules,
    to_do,
    update_follow_up,
    update_task,
    user_for_calendar_token,
    zone,
)

router = APIRouter(tags=["sales schedule"])


def _time(value: Any, name: str) -> datetime | None:
    """An ISO time from JSON as naive UTC; 400 naming the field otherwise."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"{name}: not a date and time (ISO 8601, e.g. 2026-12-01T09:00:00Z)", details={"field": name}
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(zone("UTC")).replace(tzinfo=None)
    return parsed


def _audit(request: Request, caller: CallerDep, verb: str, kind: str, key: Any, **details: Any) -> None:
    record(
        request.app.state.db,
        caller.actor,
        verb,
        kind,
        str(key),
        at=request.app.state.clock(),
        details={"via": "api", **details},
    )


class FollowUpCreate(BaseModel):
    subject_type: str = Field(description="lead, account, contact, deal or profile")
    subject_id: str = Field(description="The record's id (a profile's id for a customer)")
    method: str = Field(description="phone, email, visit, sms, wechat, chat, meeting, other (configurable)")
    content: str
    outcome: str | None = None
    next_contact_at: str | None = Field(None, description="ISO 8601; puts a reminder in the owner's schedule")
    related: dict[str, list[int]] | None = Field(
        None, description='{"contact_ids": [...], "deal_ids": [...]}'
    )


@router.post(
    "/api/v1/follow-ups", status_code=201, summary="Record a follow-up; it lands on the customer's timeline"
)
def create_follow_up(
    body: FollowUpCreate, request: Request, db: DatabaseDep, settings: SettingsDep, caller: CallerDep
) -> dict[str, Any]:
    now = request.app.state.clock()
    view = record_follow_up(
        db,
        settings,
        caller.viewer,
        subject_type=body.subject_type,
        subject_id=body.subject_id,
        method=body.method,
        content=body.content,
        outcome=body.outcome,
        next_contact_at=_time(body.next_contact_at, "next_contact_at"),
        related=body.related,
        now=now,
    )
    _audit(
        request,
        caller,
        "change",
        "follow_up",
        view.id,
        action="follow_up_create",
        subject=f"{view.subject_type}:{view.subject_id}",
    )
    return view.as_json()


@router.get(
    "/api/v1/follow-ups", summary="A record's follow-ups, with calls, emails and messages from its timeline"
)
def follow_ups(
    request: Request, db: DatabaseDep, caller: CallerDep, subject_type: str, subject_id: str, limit: int = 50
) -> dict[str, Any]:
    found = list_follow_ups(db, caller.viewer, subject_type=subject_type, subject_id=subject_id, limit=limit)
    _audit(request, caller, "view", subject_type, subject_id, part="follow_ups")
    return {"follow_ups": [f.as_json() for f in found]}


@router.get("/api/v1/follow-ups/{follow_up_id}", summary="One follow-up")
def follow_up(follow_up_id: int, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    return get_follow_up(db, caller.viewer, follow_up_id).as_json()


@router.post(
    "/api/v1/follow-ups/{follow_up_id}/files", status_code=201, summary="Attach a file to a follow-up"
)
async def attach_follow_up_file(
    follow_up_id: int, file: UploadFile, request: Request, db: DatabaseDep, settings: SettingsDep,
    caller: CallerDep,
) -> dict[str, Any]:  # fmt: skip
    # One byte over the limit is enough to refuse: the rest of an oversize upload is not read.
    data = await file.read(settings.max_follow_up_file_bytes + 1)
    view = attach_file(
        db, settings, caller.viewer, follow_up_id, filename=file.filename or "",
        content_type=file.content_type, data=data, now=request.app.state.clock(),
    )  # fmt: skip
    _audit(request, caller, "change", "follow_up", follow_up_id, action="follow_up_file_attach", file=view.id)
    return view.as_json()


@router.get("/api/v1/follow-ups/{follow_up_id}/files", summary="A follow-up's files (names and sizes)")
def list_follow_up_files(follow_up_id: int, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    get_follow_up(db, caller.viewer, follow_up_id)  # 404 outside the scope, as for a missing one
    files = follow_up_files(db, caller.viewer, [follow_up_id]).get(follow_up_id, [])
    return {"files": [f.as_json() for f in files]}


@router.get("/api/v1/follow-ups/{follow_up_id}/files/{file_id}", summary="Download a follow-up's file")
def download_follow_up_file(
    follow_up_id: int, file_id: int, request: Request, db: DatabaseDep, caller: CallerDep
) -> Response:
    """Needs the pii permission, as a conversation's attachments do; audited as `download`."""
    if not caller.viewer.can("pii"):
        raise NotFound(f"file {file_id} does not exist")
    view, data = read_file(db, caller.viewer, follow_up_id, file_id)
    _audit(request, caller, "download", "follow_up", follow_up_id, file=file_id, size=len(data))
    return attachment_response(view.filename, view.content_type, data)


@router.patch("/api/v1/follow-ups/{follow_up_id}", summary="Correct a follow-up")
def change_follow_up(
    follow_up_id: int, body: dict[str, Any], request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    if "next_contact_at" in body:
        body["next_contact_at"] = _time(body["next_contact_at"], "next_contact_at")
    view = update_follow_up(db, caller.viewer, follow_up_id, body, now=request.app.state.clock())
    _audit(
        request, caller, "change", "follow_up", follow_up_id, action="follow_up_update", fields=sorted(body)
    )
    return view.as_json()


@router.delete(
    "/api/v1/follow-ups/{follow_up_id}", status_code=204, summary="Remove a follow-up logged by mistake"
)
def remove_follow_up(follow_up_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    delete_follow_up(db, caller.viewer, follow_up_id)
    _audit(request, caller, "change", "follow_up", follow_up_id, action="follow_up_delete")
    return Response(status_code=204)


class TaskCreate(BaseModel):
    title: str
    description: str | None = None
    due_at: str | None = None
    priority: str = "normal"
    assignee_id: int | None = None
    related_type: str | None = None
    related_id: str | None = None
    remind_at: str | None = None


@router.post("/api/v1/tasks", status_code=201, summary="Create a task")
def new_task(body: TaskCreate, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    task = create_task(
        db,
        caller.viewer,
        title=body.title,
        description=body.description,
        due_at=_time(body.due_at, "due_at"),
        priority=body.priority,
        assignee_id=body.assignee_id,
        related_type=body.related_type,
        related_id=body.related_id,
        remind_at=_time(body.remind_at, "remind_at"),
        now=request.app.state.clock(),
    )
    _audit(request, caller, "change", "task", task.id, action="task_create")
    return task.as_json()


@router.get("/api/v1/tasks", summary="Tasks in your scope")
def tasks(
    db: DatabaseDep,
    caller: CallerDep,
    assignee_id: int | None = None,
    status: str | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    return {
        "tasks": [
            t.as_json()
            for t in list_tasks(db, caller.viewer, assignee_id=assignee_id, status=status, limit=limit)
        ]
    }


@router.get("/api/v1/tasks/{task_id}", summary="One task")
def task(task_id: int, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    return get_task(db, caller.viewer, task_id).as_json()


@router.patch("/api/v1/tasks/{task_id}", summary="Change a task (status done stamps done_at)")
def change_task(
    task_id: int, body: dict[str, Any], request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    for name in ("due_at", "remind_at"):
        if name in body:
            body[name] = _time(body[name], name)
    changed = update_task(db, caller.viewer, task_id, body, now=request.app.state.clock())
    _audit(request, caller, "change", "task", task_id, action="task_update", fields=sorted(body))
    return changed.as_json()


@router.delete("/api/v1/tasks/{task_id}", status_code=204, summary="Delete a task")
def remove_task(task_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    delete_task(db, caller.viewer, task_id)
    _audit(request, caller, "change", "task", task_id, action="task_delete")
    return Response(status_code=204)


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name}: not a date (YYYY-MM-DD)", details={"field": name}) from None


@router.get(
    "/api/v1/schedule",
    summary="Your reminders, tasks and logged follow-ups from one day to another (UTC days)",
)
def schedule(request: Request, db: DatabaseDep, caller: CallerDep, start: str, end: str) -> dict[str, Any]:
    first, last = _day(start, "start"), _day(end, "end")
    if last < first:
        raise Invalid("end: must not be before start", details={"field": "end"})
    if (last - first).days > 92:
        raise Invalid("end: at most 92 days after start", details={"field": "end"})
    begin, finish = day_bounds(first, zone("UTC"), (last - first).days + 1)
    assert caller.user.id is not None
    items = schedule_items(db, caller.user.id, begin, finish)
    return {"items": [i.as_json() for i in items]}


@router.get(
    "/api/v1/todo", summary="Follow up today, overdue, and your customers about to return to the pool"
)
def todo(request: Request, db: DatabaseDep, caller: CallerDep, settings: SettingsDep) -> dict[str, Any]:
    return to_do(db, caller.user.id, now=request.app.state.clock(), tz=zone(settings.timezone)).as_json()


@router.get("/api/v1/pool", summary="Accounts in the customer pool")
def pool(db: DatabaseDep, caller: CallerDep, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    return {"accounts": [a.as_json() for a in list_pool(db, caller.viewer, limit=limit, offset=offset)]}


@router.post("/api/v1/pool/{account_id}/claim", summary="Claim an account from the pool")
def claim(account_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    claim_account(db, caller.viewer, account_id, actor=caller.actor, now=request.app.state.clock())
    return {"account_id": account_id, "owner_id": caller.user.id}


class Assignment(BaseModel):
    user_id: int


@router.post("/api/v1/pool/{account_id}/assign", summary="Assign a pool account (managers and admins)")
def assign(
    account_id: int, body: Assignment, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    assign_account(
        db, caller.viewer, account_id, body.user_id, actor=caller.actor, now=request.app.state.clock()
    )
    return {"account_id": account_id, "owner_id": body.user_id}


@router.get("/api/v1/pool/rules", summary="The pool's rules (admins)")
def pool_rules(db: DatabaseDep, admin: AdminUser) -> dict[str, Any]:
    return get_pool_rules(db).as_json()


@router.put("/api/v1/pool/rules", summary="Change the pool's rules (admins)")
def change_pool_rules(
    body: dict[str, Any], request: Request, db: DatabaseDep, admin: AdminUser, caller: CallerDep
) -> dict[str, Any]:
    rules = set_pool_rules(db, body, by=admin.id, now=request.app.state.clock())
    _audit(request, caller, "change", "setting", "sales.pool", action="pool_rules_update")
    return rules.as_json()


@router.post(
    "/api/v1/calendar-token", status_code=201, summary="A new link for your calendar feed (replaces the old)"
)
def new_calendar_token(
    request: Request, db: DatabaseDep, caller: CallerDep, settings: SettingsDep
) -> dict[str, Any]:
    token = issue_calendar_token(db, caller.user.id, now=request.app.state.clock())
    _audit(request, caller, "change", "user", caller.user.id, action="calendar_token_issue")
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return {"token": token, "url": f"{base}/calendar/{token}.ics"}


@router.delete("/api/v1/calendar-token", status_code=204, summary="Revoke your calendar feed link")
def revoke_token(request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    revoke_calendar_token(db, caller.user.id)
    _audit(request, caller, "change", "user", caller.user.id, action="calendar_token_revoke")
    return Response(status_code=204)


@router.get("/calendar/{token}.ics", summary="Your schedule as iCalendar; the link is the credential")
def calendar(token: str, request: Request, db: DatabaseDep) -> Response:
    user_id = user_for_calendar_token(db, token)
    if user_id is None:
        raise NotFound("no such calendar")
    body = calendar_feed(
        db, user_id, now=request.app.state.clock(), host=request.url.hostname or "threadline"
    )
    return Response(
        body, media_type="text/calendar; charset=utf-8", headers={"Cache-Control": "private, max-age=300"}
    )
