"""A rep's schedule: follow-up reminders (the next contact time of their follow-ups), tasks, and the
follow-ups they logged, in a time range; the "to do" lists; the count behind the header's badge.

Days are the user's days: `day_bounds` turns a local date in their time zone into the naive-UTC range
the tables are queried with. A reminder is pending until a newer follow-up on the same record is logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from threadline.errors import Invalid
from threadline.sales.pool import PoolDeadline, pool_warnings
from threadline.sales.subjects import accounts, contacts, deals, leads
from threadline.storage import Database
from threadline.storage.models import FollowUp, Profile, Task

VIEWS = ("day", "week", "month")
REMINDER, TASK, LOGGED = "reminder", "task", "follow_up"


@dataclass(frozen=True, slots=True)
class ScheduleItem:
    """One entry of a calendar: `kind` reminder (a next contact time), task, or follow_up (one logged)."""

    kind: str
    id: int
    title: str
    starts_at: datetime  # naive UTC
    subject_type: str | None = None
    subject_id: str | None = None
    priority: str | None = None
    status: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "title": self.title,
            "starts_at": self.starts_at.isoformat() + "Z",
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "priority": self.priority,
            "status": self.status,
            "detail": self.detail,
        }


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def local_date(moment: datetime, tz: ZoneInfo) -> date:
    return moment.replace(tzinfo=UTC).astimezone(tz).date()


def day_bounds(day: date, tz: ZoneInfo, days: int = 1) -> tuple[datetime, datetime]:
    start = to_utc(datetime.combine(day, time()), tz)
    return start, to_utc(datetime.combine(day + timedelta(days=days), time()), tz)


def view_range(view: str, day: date) -> tuple[date, date]:
    """The first day shown and the day after the last, for a day, a week (Monday first) or a month
    grid (whole weeks around the month)."""
    if view not in VIEWS:
        raise Invalid(f"view: must be one of {', '.join(VIEWS)}", details={"field": "view"})
    if view == "day":
        return day, day + timedelta(days=1)
    if view == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    start = first - timedelta(days=first.weekday())
    end = following + timedelta(days=(7 - following.weekday()) % 7)
    return start, end


def _labels(session: Any, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Names of the records items are about, one query per record type."""
    found: dict[tuple[str, str], str] = {}
    by_type: dict[str, list[str]] = {}
    for kind, key in pairs:
        by_type.setdefault(kind, []).append(key)
    sources = {"lead": leads, "account": accounts, "contact": contacts, "deal": deals}
    for kind, keys in by_type.items():
        if kind == "profile":
            rows = session.execute(select(Profile.id, Profile.display_name).where(Profile.id.in_(keys))).all()
            found |= {("profile", pid): name or pid for pid, name in rows}
            continue
        target = sources.get(kind)
        numbers = [int(k) for k in keys if k.isdigit()]
        if target is None or not numbers:
            continue
        rows = session.execute(select(target.c.id, target.c.name).where(target.c.id.in_(numbers))).all()
        found |= {(kind, str(rid)): name for rid, name in rows}
    return found


def pending_reminder() -> ColumnElement[bool]:
    """A follow-up's next contact is still to come: no newer follow-up on the same record."""
    newer = aliased(FollowUp)
    return and_(
        FollowUp.next_contact_at.is_not(None),
        ~exists().where(
            newer.subject_type == FollowUp.subject_type,
            newer.subject_id == FollowUp.subject_id,
            or_(
                newer.created_at > FollowUp.created_at,
                and_(newer.created_at == FollowUp.created_at, newer.id > FollowUp.id),
            ),
        ),
    )


def schedule_items(
    db: Database, user_id: int, start: datetime, end: datetime, *, logged: bool = True
) -> list[ScheduleItem]:
    """The user's reminders, tasks (by due date) and, with `logged`, follow-ups they recorded, in
    [start, end), in time order."""
    with db.read() as session:
        reminders = session.execute(
            select(
                FollowUp.id,
                FollowUp.subject_type,
                FollowUp.subject_id,
                FollowUp.method,
                FollowUp.next_contact_at,
            ).where(
                FollowUp.owner_id == user_id,
                FollowUp.next_contact_at >= start,
                FollowUp.next_contact_at < end,
            )
        ).all()
        tasks = (
            session.execute(
                select(Task).where(
                    Task.assignee_id == user_id,
                    Task.due_at >= start,
                    Task.due_at < end,
                    Task.status != "cancelled",
                )
            )
            .scalars()
            .all()
        )
        done = (
            session.execute(
                select(
                    FollowUp.id,
                    FollowUp.subject_type,
                    FollowUp.subject_id,
                    FollowUp.method,
                    FollowUp.created_at,
                ).where(FollowUp.owner_id == user_id, FollowUp.created_at >= start, FollowUp.created_at < end)
            ).all()
            if logged
            else []
        )
        pairs = {(r.subject_type, r.subject_id) for r in [*reminders, *done]}
        pairs |= {(t.related_type, t.related_id) for t in tasks if t.related_type and t.related_id}
        labels = _labels(session, pairs)
    items = [
        ScheduleItem(
            REMINDER,
            r.id,
            labels.get((r.subject_type, r.subject_id), r.subject_id),
            r.next_contact_at,
            r.subject_type,
            r.subject_id,
            detail=r.method,
        )
        for r in reminders
    ]
    items += [
        ScheduleItem(
            TASK,
            t.id,
            t.title,
            t.due_at or start,
            t.related_type,
            t.related_id,
            t.priority,
            t.status,
            labels.get((t.related_type or "", t.related_id or "")),
        )
        for t in tasks
    ]
    items += [
        ScheduleItem(
            LOGGED,
            r.id,
            labels.get((r.subject_type, r.subject_id), r.subject_id),
            r.created_at,
            r.subject_type,
            r.subject_id,
            detail=r.method,
        )
        for r in done
    ]
    items.sort(key=lambda i: (i.starts_at, i.kind, i.id))
    return items


@dataclass(frozen=True, slots=True)
class ToDo:
    """What a rep should do now: follow up today, overdue (reminders and tasks), returning to the pool."""

    today: list[ScheduleItem] = field(default_factory=list)
    overdue: list[ScheduleItem] = field(default_factory=list)
    returning: list[PoolDeadline] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.today) + len(self.overdue) + len(self.returning)

    def as_json(self) -> dict[str, Any]:
        return {
            "today": [i.as_json() for i in self.today],
            "overdue": [i.as_json() for i in self.overdue],
            "returning": [d.as_json() for d in self.returning],
        }


def to_do(db: Database, user_id: int, *, now: datetime, tz: ZoneInfo) -> ToDo:
    """Today's (local day) pending reminders and open tasks; overdue ones from before now; the user's
    accounts about to return to the pool."""
    start, end = day_bounds(local_date(now, tz), tz)
    with db.read() as session:
        reminders = session.execute(
            select(
                FollowUp.id,
                FollowUp.subject_type,
                FollowUp.subject_id,
                FollowUp.method,
                FollowUp.next_contact_at,
            )
            .where(FollowUp.owner_id == user_id, FollowUp.next_contact_at < end, pending_reminder())
            .order_by(FollowUp.next_contact_at)
        ).all()
        tasks = (
            session.execute(
                select(Task)
                .where(Task.assignee_id == user_id, Task.status == "open", Task.due_at < end)
                .order_by(Task.due_at)
            )
            .scalars()
            .all()
        )
        labels = _labels(session, {(r.subject_type, r.subject_id) for r in reminders})
    todo = ToDo()
    for r in reminders:
        item = ScheduleItem(
            REMINDER,
            r.id,
            labels.get((r.subject_type, r.subject_id), r.subject_id),
            r.next_contact_at,
            r.subject_type,
            r.subject_id,
            detail=r.method,
        )
        (todo.overdue if r.next_contact_at < start else todo.today).append(item)
    for t in tasks:
        assert t.due_at is not None
        item = ScheduleItem(TASK, t.id, t.title, t.due_at, t.related_type, t.related_id, t.priority, t.status)
        (todo.overdue if t.due_at < now else todo.today).append(item)
    todo.returning.extend(pool_warnings(db, frozenset({user_id}), now=now))
    return todo


def reminder_count(db: Database, user_id: int, *, now: datetime, tz: ZoneInfo) -> int:
    """The header's badge: pending reminders and open tasks due by the end of today."""
    _, end = day_bounds(local_date(now, tz), tz)
    with db.read() as session:
        reminders = session.scalar(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.owner_id == user_id, FollowUp.next_contact_at < end, pending_reminder())
        )
        tasks = session.scalar(
            select(func.count())
            .select_from(Task)
            .where(Task.assignee_id == user_id, Task.status == "open", Task.due_at < end)
        )
    return int(reminders or 0) + int(tasks or 0)
