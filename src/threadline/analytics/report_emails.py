"""Scheduled reports: a weekly email of chosen Insight pages to chosen users.

A schedule names Insight pages (the overview, funnel, cohorts, consistency, portrait), recipients (active
users), a weekday and an hour, and how many days the report covers. The hourly `analytics.report-emails`
job sends each recipient their copy once per ISO week, at the first run at or after the weekday and hour
in the recipient's time zone (their preference, else THREADLINE_TIMEZONE). Figures are computed for
each recipient with their own data scope, so an agent's copy counts only their customers, exactly as
their Insight pages do. The email has every chart as a small text table and an XLSX attachment with a
sheet per chart; charts hold aggregates only, never a person.

Schedules live in the workspace setting "insight.report_schedules" (a handful of rows that only admins
and managers change); who got which week is "insight.report_schedules.sent", re-read in the write, so a
job run twice or a restarted worker sends nobody a second copy.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openpyxl import Workbook
from sqlalchemy import select

from threadline.accounts import viewer_for
from threadline.analytics.dashboards import DEFAULT_FUNNEL, page_datasets
from threadline.analytics.dataset import Dataset
from threadline.analytics.scope import InsightFilters
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.messaging import send_staff_email
from threadline.storage import Database, put_setting, read_setting
from threadline.storage.models import User

SCHEDULES_KEY = "insight.report_schedules"
SENT_KEY = "insight.report_schedules.sent"
REPORT_PAGES = ("overview", "funnel", "cohorts", "consistency", "portrait")
MAX_SCHEDULES = 50
MAX_RECIPIENTS = 100
MAX_DAYS = 366
TABLE_ROWS = 15  # rows of a chart in the email's text; the attachment holds them all
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True, slots=True)
class ReportSchedule:
    id: int
    name: str
    pages: tuple[str, ...]
    recipients: tuple[int, ...]  # user ids
    weekday: int  # 0 Monday .. 6 Sunday, in each recipient's time zone
    hour: int  # 0..23, likewise
    days: int = 7  # the report covers the `days` days up to yesterday


def _schedule_of(row: dict[str, Any]) -> ReportSchedule:
    return ReportSchedule(
        id=int(row["id"]),
        name=str(row["name"]),
        pages=tuple(row["pages"]),
        recipients=tuple(int(u) for u in row["recipients"]),
        weekday=int(row["weekday"]),
        hour=int(row["hour"]),
        days=int(row.get("days", 7)),
    )


def list_report_schedules(db: Database) -> list[ReportSchedule]:
    with db.read() as session:
        rows = read_setting(session.connection(), SCHEDULES_KEY) or []
    return [_schedule_of(row) for row in rows]


def _whole(value: Any, field: str, low: int, high: int) -> int:
    text = str(value).strip()
    if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
        raise Invalid(f"{field}: a whole number from {low} to {high}", details={"field": field})
    return int(text)


def _checked(
    db: Database,
    name: str,
    pages: Sequence[str],
    recipients: Sequence[Any],
    weekday: Any,
    hour: Any,
    days: Any,
) -> dict[str, Any]:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("name: 1 to 100 characters", details={"field": "name"})
    chosen = [p for p in REPORT_PAGES if p in set(pages)]
    if not chosen or len(chosen) != len(set(pages)):
        raise Invalid(f"pages: one or more of {', '.join(REPORT_PAGES)}", details={"field": "pages"})
    try:
        ids = sorted({int(str(u)) for u in recipients})
    except ValueError:
        raise Invalid("recipients: user ids", details={"field": "recipients"}) from None
    if not 1 <= len(ids) <= MAX_RECIPIENTS:
        raise Invalid(f"recipients: 1 to {MAX_RECIPIENTS} users", details={"field": "recipients"})
    with db.read() as session:
        active = set(session.scalars(select(User.id).where(User.id.in_(ids), User.is_active.is_(True))))
    if unknown := [u for u in ids if u not in active]:
        raise Invalid(
            f"recipients: no active user {', '.join(map(str, unknown))}", details={"field": "recipients"}
        )
    return {
        "name": name,
        "pages": chosen,
        "recipients": ids,
        "weekday": _whole(weekday, "weekday", 0, 6),
        "hour": _whole(hour, "hour", 0, 23),
        "days": _whole(days, "days", 1, MAX_DAYS),
    }


def save_report_schedule(
    db: Database,
    *,
    name: str,
    pages: Sequence[str],
    recipients: Sequence[Any],
    weekday: Any,
    hour: Any,
    days: Any = 7,
    schedule_id: int | None = None,
    user_id: int | None,
    now: datetime,
) -> ReportSchedule:
    """Create a schedule (no `schedule_id`) or replace one; bad input raises Invalid naming the field."""
    fields = _checked(db, name, pages, recipients, weekday, hour, days)
    with db.write() as session:
        conn = session.connection()
        rows = list(read_setting(conn, SCHEDULES_KEY) or [])
        if schedule_id is None:
            if len(rows) >= MAX_SCHEDULES:
                raise Invalid(f"at most {MAX_SCHEDULES} scheduled reports", details={"field": "name"})
            row = {"id": max((int(r["id"]) for r in rows), default=0) + 1, **fields}
            rows.append(row)
        else:
            at = next((i for i, r in enumerate(rows) if int(r["id"]) == schedule_id), None)
            if at is None:
                raise Invalid(f"schedule {schedule_id} does not exist", details={"field": "id"})
            row = rows[at] = {"id": schedule_id, **fields}
        put_setting(conn, SCHEDULES_KEY, rows, user_id=user_id, now=now)
    return _schedule_of(row)


def delete_report_schedule(db: Database, schedule_id: int, *, user_id: int | None, now: datetime) -> bool:
    with db.write() as session:
        conn = session.connection()
        rows = list(read_setting(conn, SCHEDULES_KEY) or [])
        kept = [r for r in rows if int(r["id"]) != schedule_id]
        if len(kept) == len(rows):
            return False
        put_setting(conn, SCHEDULES_KEY, kept, user_id=user_id, now=now)
    return True


def report_period(schedule: ReportSchedule, today: date) -> InsightFilters:
    """The `days` whole days up to yesterday: a Monday morning report covers last week, not a half day."""
    return InsightFilters.last_days(today - timedelta(days=1), schedule.days).checked()


def scheduled_report_charts(
    db: Database, user_id: int, role: str, schedule: ReportSchedule, filters: InsightFilters
) -> list[Dataset]:
    """Every chart of the schedule's pages, within the recipient's data scope."""
    viewer = viewer_for(db, user_id, role)
    params = {"steps": ",".join(DEFAULT_FUNNEL)}
    charts: list[Dataset] = []
    for page in schedule.pages:
        charts.extend(page_datasets(db, viewer, page, filters, params).values())
    return charts


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def chart_text(dataset: Dataset) -> str:
    """A chart as a fixed-width table (most mail programs show plain text in a monospace font)."""
    rows = [tuple(dataset.columns)] + [tuple(_cell(v) for v in row) for row in dataset.rows[:TABLE_ROWS]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(dataset.columns))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if len(dataset.rows) > TABLE_ROWS:
        lines.append(f"... {len(dataset.rows) - TABLE_ROWS} more rows in the attachment")
    if not dataset.rows:
        lines.append(dataset.note or "No data for this period.")
    elif dataset.note:
        lines.append(dataset.note)
    return "\n".join(lines)


def report_text(schedule: ReportSchedule, filters: InsightFilters, charts: Sequence[Dataset]) -> str:
    title = f"{schedule.name}: {filters.start.isoformat()} to {filters.end.isoformat()}"
    parts = [title, "=" * len(title), ""]
    for chart in charts:
        heading = chart.name.replace("_", " ").capitalize()
        parts += [heading, chart_text(chart), ""]
    parts.append("Every chart is also in the attached spreadsheet, one sheet per chart.")
    return "\n".join(parts) + "\n"


def report_workbook(charts: Sequence[Dataset]) -> bytes:
    book = Workbook(write_only=True)
    for chart in charts:
        sheet = book.create_sheet(chart.name[:31])  # Excel's limit on a sheet's name
        sheet.append(list(chart.columns))
        for row in chart.rows:
            sheet.append([v.isoformat() if isinstance(v, date | datetime) else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def send_report(
    db: Database, settings: Settings, schedule: ReportSchedule, user: Any, *, today: date, now: datetime
) -> bool:
    """Build and send one recipient's copy; False when sending is off (no relay configured)."""
    filters = report_period(schedule, today)
    charts = scheduled_report_charts(db, user.id, user.role, schedule, filters)
    name = f"{schedule.name.replace('/', '-')} {filters.end.isoformat()}.xlsx"
    return send_staff_email(
        settings,
        to_address=user.email,
        subject=f"{schedule.name} ({filters.start.isoformat()} to {filters.end.isoformat()})",
        body_text=report_text(schedule, filters, charts),
        attachments=[(name, XLSX, report_workbook(charts))],
        now=now,
    )


def send_scheduled_reports(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """Send every copy whose weekday and hour have come this week in its recipient's time zone."""
    schedules = list_report_schedules(db)
    counts = {"sent": 0, "schedules": len(schedules)}
    if not schedules:
        return counts
    wanted = {u for s in schedules for u in s.recipients}
    with db.read() as session:
        users = {
            u.id: u
            for u in session.scalars(select(User).where(User.id.in_(wanted), User.is_active.is_(True)))
        }
        sent = dict(read_setting(session.connection(), SENT_KEY) or {})
    for schedule in schedules:
        for user_id in schedule.recipients:
            user = users.get(user_id)
            if user is None:  # deactivated since: nobody to send to
                continue
            local = now.replace(tzinfo=UTC).astimezone(_zone(user.timezone or settings.timezone))
            year, week, weekday = local.isocalendar()
            key, this_week = f"{schedule.id}:{user_id}", f"{year}-W{week:02d}"
            due = (weekday - 1, local.hour) >= (schedule.weekday, schedule.hour)
            if not due or sent.get(key) == this_week:
                continue
            if not send_report(db, settings, schedule, user, today=local.date(), now=now):
                return counts | {"disabled": 1}  # no relay configured: try again when there is one
            sent[key] = this_week
            _mark_sent(db, key, this_week, now=now)
            counts["sent"] += 1
    return counts


def _mark_sent(db: Database, key: str, week: str, *, now: datetime) -> None:
    with db.write() as session:
        conn = session.connection()
        sent = read_setting(conn, SENT_KEY) or {}
        put_setting(conn, SENT_KEY, {**sent, key: week}, user_id=None, now=now)


def schedule_json(schedule: ReportSchedule) -> dict[str, Any]:
    return asdict(schedule) | {"pages": list(schedule.pages), "recipients": list(schedule.recipients)}
