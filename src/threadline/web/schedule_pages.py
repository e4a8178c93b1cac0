"""Pages for follow-ups, tasks, the calendar, the to-do list and the customer pool (threadline.sales).

The 360 page's follow-up panel loads with htmx (customer_follow_ups.html, like the consent panel); the
header's badge is a fragment htmx loads on every page (schedule_badge.html). The calendar is a
server-rendered grid, one column per day on a wide screen and one day per row on a phone. No scripts of
our own: htmx attributes only (CSP script-src 'self').
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, get_preferences, viewer_for
from threadline.api.conversations import attachment_response
from threadline.errors import Invalid, NotFound, ThreadlineError
from threadline.privacy import record
from threadline.sales import (
    PRIORITIES,
    VIEWS,
    attach_file,
    calendar_token_issued,
    claim_account,
    create_task,
    day_bounds,
    follow_up_files,
    follow_up_methods,
    issue_calendar_token,
    list_follow_ups,
    list_pool,
    list_tasks,
    local_date,
    read_file,
    record_follow_up,
    reminder_count,
    revoke_calendar_token,
    schedule_items,
    to_do,
    update_task,
    view_range,
    zone,
)
from threadline.web.auditing import actor_of, customer_not_found
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
METHOD_NAMES = {
    "phone": N_("phone"),
    "email": N_("email"),
    "visit": N_("visit"),
    "sms": N_("SMS"),
    "wechat": N_("WeChat"),
    "chat": N_("chat"),
    "meeting": N_("meeting"),
    "other": N_("other"),
}
KIND_NAMES = {"reminder": N_("Follow up"), "task": N_("Task"), "follow_up": N_("Logged")}
PRIORITY_NAMES = {"low": N_("low"), "normal": N_("normal"), "high": N_("high")}
VIEW_NAMES = {"day": N_("Day"), "week": N_("Week"), "month": N_("Month")}


def _tz_name(request: Request, user: UserInfo) -> str:
    prefs = get_preferences(request.app.state.db, user.id)
    return (prefs.timezone if prefs else None) or request.app.state.settings.timezone or "UTC"


def _local_time(value: str, tz_name: str, name: str) -> datetime | None:
    """A datetime-local form value in the user's zone, as naive UTC."""
    if not value.strip():
        return None
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"{name}: not a date and time", details={"field": name}) from None
    return local.replace(tzinfo=zone(tz_name)).astimezone(zone("UTC")).replace(tzinfo=None)


def _follow_up_panel(request: Request, user: UserInfo, profile_id: str, error: str | None = None) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    found = list_follow_ups(db, viewer, subject_type="profile", subject_id=profile_id)
    files = follow_up_files(db, viewer, [f.id for f in found if f.id is not None])
    page = request.headers.get("HX-Request") != "true"
    return render(
        request,
        "follow_up_page.html" if page else "follow_up_panel.html",
        400 if error else 200,
        user=user,
        profile_id=profile_id,
        follow_ups=found,
        files=files,
        can_download=viewer.can("pii"),
        methods=follow_up_methods(db),
        method_names=METHOD_NAMES,
        can_record=viewer.can("edit"),
        error=error,
    )


@router.get("/customers/{profile_id}/follow-ups")
def follow_up_panel(request: Request, profile_id: str, user: WebUser) -> Response:
    actor = actor_of(request, user.id)
    try:
        response = _follow_up_panel(request, user, profile_id)
    except NotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem, part="follow_ups")
    details = {"via": "web", "part": "follow_ups"}
    record(
        request.app.state.db,
        actor,
        "view",
        "profile",
        profile_id,
        at=request.app.state.clock(),
        details=details,
    )
    return response


@router.post("/customers/{profile_id}/follow-ups")
def follow_up_record(
    request: Request,
    profile_id: str,
    user: WebUser,
    csrf: str = Form(""),
    method: str = Form(""),
    content: str = Form(""),
    outcome: str = Form(""),
    next_contact_at: str = Form(""),
    file: UploadFile | None = File(None),
) -> Response:
    check_csrf(request, csrf)
    db = request.app.state.db
    settings = request.app.state.settings
    viewer = viewer_for(db, user.id, user.role)
    now = request.app.state.clock()
    # Read (at most one byte over the limit) before recording, so a refused file records nothing.
    upload = file.file.read(settings.max_follow_up_file_bytes + 1) if file and file.filename else b""
    if len(upload) > settings.max_follow_up_file_bytes:
        limit = settings.max_follow_up_file_bytes
        return _follow_up_panel(request, user, profile_id, error=f"file: over the limit of {limit:,} bytes")
    try:
        view = record_follow_up(
            db,
            request.app.state.settings,
            viewer,
            subject_type="profile",
            subject_id=profile_id,
            method=method,
            content=content,
            outcome=outcome or None,
            next_contact_at=_local_time(next_contact_at, _tz_name(request, user), "next_contact_at"),
            now=now,
        )
    except Invalid as problem:
        return _follow_up_panel(request, user, profile_id, error=problem.message)
    except NotFound:
        return render(request, "not_found.html", 404, user=user)
    details: dict[str, Any] = {"via": "web", "action": "follow_up_create", "subject": f"profile:{profile_id}"}
    actor = actor_of(request, user.id)
    if upload and file is not None and view.id is not None:
        try:
            attached = attach_file(
                db, settings, viewer, view.id, filename=file.filename or "",
                content_type=file.content_type, data=upload, now=now,
            )  # fmt: skip
        except Invalid as problem:  # the follow-up is kept; the panel says why the file is not
            record(
                db, actor_of(request, user.id), "change", "follow_up", str(view.id), at=now, details=details
            )
            return _follow_up_panel(request, user, profile_id, error=problem.message)
        details["file"] = attached.id
    record(db, actor, "change", "follow_up", str(view.id), at=now, details=details)
    if request.headers.get("HX-Request") == "true":
        return _follow_up_panel(request, user, profile_id)
    return RedirectResponse(f"/customers/{quote(profile_id)}#follow-ups", status_code=303)


@router.get("/follow-ups/{follow_up_id}/files/{file_id}")
def follow_up_file_download(request: Request, follow_up_id: int, file_id: int, user: WebUser) -> Response:
    """A follow-up's file, for users who see personal data, within the follow-up's scope; audited."""
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    try:
        if not viewer.can("pii"):
            raise NotFound(f"file {file_id} does not exist")
        view, data = read_file(db, viewer, follow_up_id, file_id)
    except NotFound:
        return render(request, "not_found.html", 404, user=user)
    details = {"via": "web", "file": file_id, "size": len(data)}
    at = request.app.state.clock()
    record(db, actor_of(request, user.id), "download", "follow_up", str(follow_up_id), at=at, details=details)
    return attachment_response(view.filename, view.content_type, data)


def _day_param(value: str | None, today: date) -> date:
    try:
        return date.fromisoformat(value) if value else today
    except ValueError:
        return today


@router.get("/schedule")
def schedule_page(request: Request, user: WebUser, view: str = "week", day: str | None = None) -> Response:
    db = request.app.state.db
    tz_name = _tz_name(request, user)
    tz = zone(tz_name)
    now = request.app.state.clock()
    chosen = _day_param(day, local_date(now, tz))
    view = view if view in VIEWS else "week"
    first, after = view_range(view, chosen)
    start, end = day_bounds(first, tz, (after - first).days)
    items = schedule_items(db, user.id, start, end)
    by_day: dict[date, list[Any]] = {}
    for item in items:
        by_day.setdefault(local_date(item.starts_at, tz), []).append(item)
    days = [first + timedelta(days=n) for n in range((after - first).days)]
    weeks = [days[i : i + 7] for i in range(0, len(days), 7)] if view != "day" else [days]
    step = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=31)}[view]
    previous = (
        chosen - step if view != "month" else (chosen.replace(day=1) - timedelta(days=1)).replace(day=1)
    )
    following = (
        chosen + step if view != "month" else (chosen.replace(day=28) + timedelta(days=4)).replace(day=1)
    )
    return render(
        request,
        "schedule.html",
        user=user,
        view=view,
        views=VIEWS,
        view_names=VIEW_NAMES,
        day=chosen,
        today=local_date(now, tz),
        weeks=weeks,
        by_day=by_day,
        kind_names=KIND_NAMES,
        method_names=METHOD_NAMES,
        previous=previous.isoformat(),
        following=following.isoformat(),
        tz=tz,
        tz_name=tz_name,
        feed_issued=calendar_token_issued(db, user.id),
        feed_url=None,
    )


@router.post("/schedule/feed")
def schedule_feed(
    request: Request, user: WebUser, csrf: str = Form(""), action: str = Form("issue")
) -> Response:
    """Issue (or replace) or revoke the user's calendar feed link; a new link is shown once."""
    check_csrf(request, csrf)
    db = request.app.state.db
    now = request.app.state.clock()
    actor = actor_of(request, user.id)
    if action == "revoke":
        revoke_calendar_token(db, user.id)
        record(
            db,
            actor,
            "change",
            "user",
            str(user.id),
            at=now,
            details={"via": "web", "action": "calendar_token_revoke"},
        )
        return RedirectResponse("/schedule", status_code=303)
    token = issue_calendar_token(db, user.id, now=now)
    record(
        db,
        actor,
        "change",
        "user",
        str(user.id),
        at=now,
        details={"via": "web", "action": "calendar_token_issue"},
    )
    base = (request.app.state.settings.public_url or str(request.base_url)).rstrip("/")
    return render(request, "schedule_feed.html", user=user, feed_url=f"{base}/calendar/{token}.ics")


@router.get("/schedule/badge")
def schedule_badge(request: Request, user: WebUser) -> Response:
    count = reminder_count(
        request.app.state.db, user.id, now=request.app.state.clock(), tz=zone(_tz_name(request, user))
    )
    return render(request, "schedule_badge.html", user=user, count=count)


@router.get("/todo")
def todo_page(request: Request, user: WebUser) -> Response:
    tz_name = _tz_name(request, user)
    todo = to_do(request.app.state.db, user.id, now=request.app.state.clock(), tz=zone(tz_name))
    return render(request, "schedule_todo.html", user=user, todo=todo, kind_names=KIND_NAMES, tz=tz_name)


@router.get("/tasks")
def tasks_page(request: Request, user: WebUser, status: str = "open", error: str | None = None) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    shown = status if status in ("open", "done", "cancelled") else "open"
    found = list_tasks(db, viewer, status=shown)
    return render(
        request,
        "tasks.html",
        400 if error else 200,
        user=user,
        tasks=found,
        shown_status=shown,
        priorities=PRIORITIES,
        priority_names=PRIORITY_NAMES,
        now=request.app.state.clock(),
        error=error,
    )


@router.post("/tasks")
def tasks_create(
    request: Request,
    user: WebUser,
    csrf: str = Form(""),
    title: str = Form(""),
    due_at: str = Form(""),
    priority: str = Form("normal"),
    description: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    now = request.app.state.clock()
    try:
        task = create_task(
            db,
            viewer,
            title=title,
            description=description or None,
            due_at=_local_time(due_at, _tz_name(request, user), "due_at"),
            priority=priority,
            now=now,
        )
    except Invalid as problem:
        return tasks_page(request, user, error=problem.message)
    record(
        db,
        actor_of(request, user.id),
        "change",
        "task",
        str(task.id),
        at=now,
        details={"via": "web", "action": "task_create"},
    )
    return RedirectResponse("/tasks", status_code=303)


@router.post("/tasks/{task_id}/status")
def tasks_status(
    request: Request, task_id: int, user: WebUser, csrf: str = Form(""), status: str = Form("done")
) -> Response:
    check_csrf(request, csrf)
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    now = request.app.state.clock()
    try:
        update_task(db, viewer, task_id, {"status": status}, now=now)
    except NotFound:
        return render(request, "not_found.html", 404, user=user)
    details = {"via": "web", "action": "task_update", "fields": ["status"]}
    record(db, actor_of(request, user.id), "change", "task", str(task_id), at=now, details=details)
    return RedirectResponse("/tasks", status_code=303)


@router.get("/pool")
def pool_page(request: Request, user: WebUser, error: str | None = None) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    return render(
        request,
        "pool.html",
        409 if error else 200,
        user=user,
        accounts=list_pool(db, viewer),
        can_claim=viewer.can("edit"),
        error=error,
    )


@router.post("/pool/{account_id}/claim")
def pool_claim(request: Request, account_id: int, user: WebUser, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    try:
        claim_account(db, viewer, account_id, actor=actor_of(request, user.id), now=request.app.state.clock())
    except ThreadlineError as problem:  # gone, cooldown, cap, or not allowed: said on the page
        return pool_page(request, user, error=problem.message)
    return RedirectResponse("/pool", status_code=303)
