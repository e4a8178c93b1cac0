"""Tasks: a rep's work with a due date, priority and assignee, linked to any record (a lead, account,
contact, deal or customer).

Who sees a task follows the data scope: a task is its assignee's and its creator's, so an agent sees
their own, a manager their team's, an admin all. Agents assign tasks to themselves; managers to anyone in
their team; admins to anyone. A task linked to a record needs the record in the creator's scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.sales.subjects import check_subject_type, subject_for
from threadline.storage import Database
from threadline.storage.models import Task, User

PRIORITIES = ("low", "normal", "high")
STATUSES = ("open", "done", "cancelled")
MAX_TITLE = 200
MAX_DESCRIPTION = 5000


@dataclass(frozen=True, slots=True)
class TaskView:
    id: int
    title: str
    description: str | None
    due_at: datetime | None
    priority: str
    status: str
    assignee_id: int | None
    related_type: str | None
    related_id: str | None
    created_by: int | None
    created_at: datetime
    done_at: datetime | None
    remind_at: datetime | None
    reminded_at: datetime | None

    def overdue(self, now: datetime) -> bool:
        return self.status == "open" and self.due_at is not None and self.due_at < now

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() + "Z" if isinstance(value, datetime) else value
        return out


def _view(row: Task) -> TaskView:
    return TaskView(
        row.id,
        row.title,
        row.description,
        row.due_at,
        row.priority,
        row.status,
        row.assignee_id,
        row.related_type,
        row.related_id,
        row.created_by,
        row.created_at,
        row.done_at,
        row.remind_at,
        row.reminded_at,
    )


def task_filter(viewer: Viewer) -> ColumnElement[bool]:
    """The tasks `viewer` may see: assigned to or created by one of the viewer's owners."""
    if viewer.scope == "all":
        return true()
    owners = sorted(viewer.owner_ids or frozenset({viewer.user_id or 0}))
    return or_(Task.assignee_id.in_(owners), Task.created_by.in_(owners))


def _text(value: Any, name: str, limit: int, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid(f"{name}: is required", details={"field": name})
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"{name}: text of at most {limit} characters", details={"field": name})
    return value.strip()


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise Invalid(f"{name}: must be one of {', '.join(allowed)}", details={"field": name})
    return str(value)


def _time(value: Any, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    raise Invalid(f"{name}: must be a date and time", details={"field": name})


def _check_assignee(session: Session, viewer: Viewer, assignee_id: Any) -> int | None:
    if assignee_id is None:
        return viewer.user_id
    if not isinstance(assignee_id, int) or isinstance(assignee_id, bool):
        raise Invalid("assignee_id: must be a user id", details={"field": "assignee_id"})
    active = session.scalar(select(User.id).where(User.id == assignee_id, User.is_active.is_(True)))
    if active is None:
        raise Invalid(f"assignee_id: no active user {assignee_id}", details={"field": "assignee_id"})
    allowed = viewer.scope == "all" or assignee_id in (viewer.owner_ids or {viewer.user_id})
    if not allowed:
        raise Invalid(
            "assignee_id: you can assign tasks to yourself and your team only",
            details={"field": "assignee_id"},
        )
    return assignee_id


def _check_related(
    session: Session, viewer: Viewer, related_type: Any, related_id: Any
) -> tuple[str | None, str | None]:
    if related_type is None and related_id is None:
        return None, None
    if related_type is None or related_id is None:
        name = "related_id" if related_id is None else "related_type"
        raise Invalid(f"{name}: give both related_type and related_id", details={"field": name})
    check_subject_type(str(related_type), "related_type")
    try:
        subject = subject_for(session, viewer, str(related_type), str(related_id))
    except NotFound:
        raise Invalid(
            f"related_id: no {related_type} {related_id}", details={"field": "related_id"}
        ) from None
    return subject.type, subject.id


def create_task(
    db: Database,
    viewer: Viewer,
    *,
    title: str,
    description: str | None = None,
    due_at: datetime | None = None,
    priority: str = "normal",
    assignee_id: int | None = None,
    related_type: str | None = None,
    related_id: str | None = None,
    remind_at: datetime | None = None,
    now: datetime,
) -> TaskView:
    if not viewer.can("edit"):
        raise Forbidden("your role may not create tasks")
    row = Task(
        title=_text(title, "title", MAX_TITLE, required=True),
        description=_text(description, "description", MAX_DESCRIPTION, required=False),
        due_at=_time(due_at, "due_at"),
        priority=_choice(priority, "priority", PRIORITIES),
        status="open",
        created_by=viewer.user_id,
        created_at=now,
        remind_at=_time(remind_at, "remind_at"),
    )
    with db.write() as session:
        row.assignee_id = _check_assignee(session, viewer, assignee_id)
        row.related_type, row.related_id = _check_related(session, viewer, related_type, related_id)
        session.add(row)
        session.flush()
        return _view(row)


def _row(session: Session, viewer: Viewer, task_id: int) -> Task:
    row = session.scalar(select(Task).where(Task.id == task_id, task_filter(viewer)))
    if row is None:
        raise NotFound(f"task {task_id} does not exist")
    return row


def get_task(db: Database, viewer: Viewer, task_id: int) -> TaskView:
    with db.read() as session:
        return _view(_row(session, viewer, task_id))


def update_task(
    db: Database, viewer: Viewer, task_id: int, changes: dict[str, Any], *, now: datetime
) -> TaskView:
    """Change a task's fields; status "done" stamps done_at, reopening clears it."""
    if not viewer.can("edit"):
        raise Forbidden("your role may not change tasks")
    known = {
        "title",
        "description",
        "due_at",
        "priority",
        "status",
        "assignee_id",
        "related_type",
        "related_id",
        "remind_at",
    }
    unknown = set(changes) - known
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"{name}: cannot be changed", details={"field": name})
    with db.write() as session:
        row = _row(session, viewer, task_id)
        if "title" in changes:
            row.title = _text(changes["title"], "title", MAX_TITLE, required=True) or row.title
        if "description" in changes:
            row.description = _text(changes["description"], "description", MAX_DESCRIPTION, required=False)
        if "due_at" in changes:
            row.due_at = _time(changes["due_at"], "due_at")
            row.reminded_at = None  # a new due date deserves a new reminder
        if "remind_at" in changes:
            row.remind_at, row.reminded_at = _time(changes["remind_at"], "remind_at"), None
        if "priority" in changes:
            row.priority = _choice(changes["priority"], "priority", PRIORITIES)
        if "status" in changes:
            status = _choice(changes["status"], "status", STATUSES)
            if status != row.status:
                row.done_at = now if status == "done" else None
            row.status = status
        if "assignee_id" in changes:
            row.assignee_id = _check_assignee(session, viewer, changes["assignee_id"])
        if "related_type" in changes or "related_id" in changes:
            row.related_type, row.related_id = _check_related(
                session,
                viewer,
                changes.get("related_type", row.related_type),
                changes.get("related_id", row.related_id),
            )
        session.flush()
        return _view(row)


def delete_task(db: Database, viewer: Viewer, task_id: int) -> TaskView:
    if not viewer.can("edit"):
        raise Forbidden("your role may not delete tasks")
    with db.write() as session:
        row = _row(session, viewer, task_id)
        view = _view(row)
        session.delete(row)
        return view


def list_tasks(
    db: Database,
    viewer: Viewer,
    *,
    assignee_id: int | None = None,
    status: str | None = None,
    due_from: datetime | None = None,
    due_before: datetime | None = None,
    related_type: str | None = None,
    related_id: str | None = None,
    limit: int = 200,
) -> list[TaskView]:
    """Tasks in the viewer's scope, by due date (those without one last)."""
    conditions: list[ColumnElement[bool]] = [task_filter(viewer)]
    if assignee_id is not None:
        conditions.append(Task.assignee_id == assignee_id)
    if status is not None:
        conditions.append(Task.status == _choice(status, "status", STATUSES))
    if due_from is not None:
        conditions.append(Task.due_at >= due_from)
    if due_before is not None:
        conditions.append(Task.due_at < due_before)
    if related_type is not None and related_id is not None:
        conditions.append(and_(Task.related_type == related_type, Task.related_id == str(related_id)))
    with db.read() as session:
        rows = session.scalars(
            select(Task)
            .where(*conditions)
            .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
            .limit(min(max(limit, 1), 1000))
        ).all()
        return [_view(row) for row in rows]
