"""The daily email digest: each user's day (follow-ups due, overdue work, customers about to return to
the pool), sent once per local day in their morning.

The job runs hourly; a user gets theirs at the first run at or after DIGEST_HOUR in their time zone (their
preference, else THREADLINE_TIMEZONE). Who got which day's digest is kept in the workspace setting
"sales.digest.sent", so a job run twice, or a worker that restarts, sends nobody a second one. Nothing
to do, no email. Sent to staff through `threadline.messaging.send_staff_email` (no consent check: staff
are users, not customers).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from threadline.config import Settings
from threadline.messaging import send_staff_email
from threadline.sales.schedule import REMINDER, ToDo, local_date, to_do, zone
from threadline.storage import Database, put_setting, read_setting
from threadline.storage.models import User

SENT_KEY = "sales.digest.sent"
DIGEST_HOUR = 7  # local time
_REASONS = {"no_follow_up": "no follow-up", "no_won_deal": "no won deal"}


def digest_text(todo: ToDo, *, tz_name: str) -> str:
    def when(moment: datetime) -> str:
        return moment.replace(tzinfo=zone("UTC")).astimezone(zone(tz_name)).strftime("%Y-%m-%d %H:%M")

    lines = ["Your day in Threadline", ""]
    for title, items in (("Follow up today", todo.today), ("Overdue", todo.overdue)):
        if items:
            lines.append(f"{title} ({len(items)}):")
            for item in items:
                what = "Follow up" if item.kind == REMINDER else "Task"
                lines.append(f"- {when(item.starts_at)}  {what}: {item.title}")
            lines.append("")
    if todo.returning:
        lines.append(f"About to return to the pool ({len(todo.returning)}):")
        for due in todo.returning:
            reason = _REASONS.get(due.reason, due.reason)
            lines.append(f"- {due.name}: returns {when(due.returns_at)} ({reason} in {due.days} days)")
        lines.append("")
    lines.append(f"Times in {tz_name}.")
    return "\n".join(lines) + "\n"


def send_digests(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """Send each active user (who may change records) whose morning has come their digest for today."""
    with db.read() as session:
        users = session.execute(
            select(User.id, User.email, User.timezone).where(
                User.is_active.is_(True), User.role.in_(("admin", "manager", "agent"))
            )
        ).all()
        sent_days = dict(read_setting(session.connection(), SENT_KEY) or {})
    counts = {"sent": 0, "nothing_to_do": 0}
    for user_id, address, tz_name in users:
        name = tz_name or settings.timezone or "UTC"
        tz = zone(name)
        local_now = now.replace(tzinfo=zone("UTC")).astimezone(tz)
        today = local_date(now, tz).isoformat()
        if local_now.hour < DIGEST_HOUR or sent_days.get(str(user_id)) == today:
            continue
        todo = to_do(db, user_id, now=now, tz=tz)
        if todo.count:
            if not send_staff_email(
                settings,
                to_address=address,
                subject=f"Your day: {todo.count} to do",
                body_text=digest_text(todo, tz_name=name),
                now=now,
            ):
                return counts | {"disabled": 1}  # no relay configured: try again when there is one
            counts["sent"] += 1
        else:
            counts["nothing_to_do"] += 1
        _mark_sent(db, user_id, today, now=now)
    return counts


def _mark_sent(db: Database, user_id: int, day: str, *, now: datetime) -> None:
    # One row for everyone, re-read in the write: the job is the only writer.
    with db.write() as session:
        conn = session.connection()
        sent = read_setting(conn, SENT_KEY) or {}
        put_setting(conn, SENT_KEY, {**sent, str(user_id): day}, user_id=None, now=now)
