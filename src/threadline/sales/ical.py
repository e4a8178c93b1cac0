"""Each user's schedule as an iCalendar feed (RFC 5545) for their own calendar app.

Calendar apps cannot sign in, so the feed's URL carries a long random token: the credential. Only its
SHA-256 is stored (calendar_feeds), one per user; issuing a new one replaces the old, revoking deletes it,
and either makes the old URL answer 404 at once.

Reminders are VEVENTs (15 minutes, starting at the next contact time), tasks VTODOs (DUE at their due
time, no DTSTART: RFC 5545 wants DUE after it); times are UTC (`...Z`), UIDs stable per record so an app
updates an entry instead of adding a copy, lines folded at 75 octets and ended with CRLF.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from threadline.sales.schedule import REMINDER, TASK, schedule_items
from threadline.storage import Database
from threadline.storage.models import CalendarFeed

PAST_DAYS, FUTURE_DAYS = 30, 365  # what a feed carries around today
REMINDER_MINUTES = 15
_LINE_OCTETS = 75


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_calendar_token(db: Database, user_id: int, *, now: datetime) -> str:
    """A new feed token for the user, replacing any earlier one; shown once, stored hashed."""
    token = secrets.token_urlsafe(32)
    with db.write() as session:
        row = session.get(CalendarFeed, user_id) or CalendarFeed(user_id=user_id)
        row.token_hash, row.created_at = _digest(token), now
        session.add(row)
    return token


def revoke_calendar_token(db: Database, user_id: int) -> bool:
    with db.write() as session:
        removed = session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == user_id))
        return bool(removed.rowcount)  # type: ignore[attr-defined]


def calendar_token_issued(db: Database, user_id: int) -> datetime | None:
    with db.read() as session:
        return session.scalar(select(CalendarFeed.created_at).where(CalendarFeed.user_id == user_id))


def user_for_calendar_token(db: Database, token: str) -> int | None:
    if not token or len(token) > 200:
        return None
    with db.read() as session:
        return session.scalar(select(CalendarFeed.user_id).where(CalendarFeed.token_hash == _digest(token)))


def escape_text(value: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma escaped; newlines as \\n."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def fold(line: str) -> str:
    """A content line folded into pieces of at most 75 octets, never inside a UTF-8 character; each
    continuation starts with a space (RFC 5545 3.1)."""
    pieces: list[str] = []
    current, size = "", 0
    for char in line:
        width = len(char.encode())
        limit = _LINE_OCTETS if not pieces else _LINE_OCTETS - 1  # the continuation's space counts
        if size + width > limit:
            pieces.append(current)
            current, size = "", 0
        current += char
        size += width
    pieces.append(current)
    return "\r\n ".join(pieces)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def calendar_feed(db: Database, user_id: int, *, now: datetime, host: str = "threadline") -> str:
    """The user's reminders and tasks from PAST_DAYS ago to FUTURE_DAYS ahead, as an iCalendar text."""
    items = schedule_items(
        db, user_id, now - timedelta(days=PAST_DAYS), now + timedelta(days=FUTURE_DAYS), logged=False
    )
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Threadline//Sales schedule//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "X-WR-CALNAME:Threadline",
    ]
    for item in items:
        if item.kind == REMINDER:
            lines += [
                "BEGIN:VEVENT",
                f"UID:follow-up-{item.id}@{host}",
                f"DTSTAMP:{_stamp(now)}",
                f"DTSTART:{_stamp(item.starts_at)}",
                f"DTEND:{_stamp(item.starts_at + timedelta(minutes=REMINDER_MINUTES))}",
                f"SUMMARY:{escape_text(f'Follow up: {item.title} ({item.detail})')}",
                "END:VEVENT",
            ]
        elif item.kind == TASK:
            status = {"open": "NEEDS-ACTION", "done": "COMPLETED", "cancelled": "CANCELLED"}[
                item.status or "open"
            ]
            priority = {"high": 1, "normal": 5, "low": 9}.get(item.priority or "normal", 5)
            lines += [
                "BEGIN:VTODO",
                f"UID:task-{item.id}@{host}",
                f"DTSTAMP:{_stamp(now)}",
                f"DUE:{_stamp(item.starts_at)}",
                f"SUMMARY:{escape_text(item.title)}",
                f"PRIORITY:{priority}",
                f"STATUS:{status}",
                "END:VTODO",
            ]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
