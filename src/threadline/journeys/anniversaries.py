"""The date trigger: on the anniversary of a date trait (a birthday, a first order), at an hour of the
customer's day, `offset_days` before (negative) or after it.

"The customer's day" is in their `timezone` trait (an IANA name), else the workspace's
(THREADLINE_TIMEZONE), as messaging's quiet hours read it. The `journeys.run` job runs every minute, but
each date journey scans the customers at most once an hour (`journeys.scheduled_at` keeps the last scan):
a customer is enrolled by the first scan after their local hour, and any later scan that local day still
finds them (the local day is the entry key), so a worker that was down for a few hours loses no one.
A February 29 date falls on February 28 in other years.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update

from threadline.config import Settings
from threadline.journeys.enrolment import ActiveJourney, active_journeys, enrol
from threadline.storage import Database
from threadline.storage.models import Journey, Profile

TIMEZONE_TRAIT = "timezone"
_CHUNK = 500


def _zone(name: Any, fallback: ZoneInfo) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        return fallback
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return fallback  # a misspelt zone must not stop the scan for everyone else


def date_of(value: Any) -> date | None:
    """A date trait as written by sources: "1990-05-17" or an ISO timestamp (its date part)."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def is_anniversary(when: date, day: date) -> bool:
    if (when.month, when.day) == (day.month, day.day):
        return True
    leap_day_elsewhere = (when.month, when.day) == (2, 29) and (day.month, day.day) == (2, 28)
    return leap_day_elsewhere and not _leap(day.year)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def occasion(
    journey: ActiveJourney, traits: dict[str, Any], now: datetime, workspace: ZoneInfo
) -> date | None:
    """The customer's local day when the trigger falls today and its hour has come there, else None."""
    trigger = journey.trigger
    when = date_of(traits.get(str(trigger["trait"])))
    if when is None:
        return None
    tz = _zone(traits.get(TIMEZONE_TRAIT), workspace)
    local = now.replace(tzinfo=UTC).astimezone(tz)
    hour = int(trigger.get("at_hour", 9))
    if local.hour < hour:
        return None
    today = local.date()
    if not is_anniversary(when, today - timedelta(days=int(trigger.get("offset_days", 0)))):
        return None
    due = datetime(today.year, today.month, today.day, hour, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)
    # Like events from before the first activation: turning the journey on at noon must not send this
    # morning's birthday messages late.
    return today if due >= journey.activated_at else None


def enrol_on_dates(db: Database, settings: Settings, *, now: datetime) -> int:
    with db.read() as session:
        journeys = active_journeys(session.connection(), ("date",))
    workspace = _zone(settings.timezone, ZoneInfo("UTC"))
    hour = now.replace(minute=0, second=0, microsecond=0)
    enrolled = 0
    for journey in journeys:
        if journey.scheduled_at is not None and journey.scheduled_at >= hour:
            continue  # scanned this hour
        context_base = {"trigger": "date", "trait": journey.trigger["trait"]}
        after = ""
        while True:
            with db.write() as session:
                conn = session.connection()
                rows = conn.execute(
                    select(Profile.id, Profile.traits)
                    .where(Profile.merged_into.is_(None), Profile.id > after)
                    .order_by(Profile.id)
                    .limit(_CHUNK)
                ).all()
                if not rows:
                    conn.execute(update(Journey).where(Journey.id == journey.id).values(scheduled_at=hour))
                    break
                for profile_id, traits in rows:
                    day = occasion(journey, dict(traits or {}), now, workspace)
                    if day is None:
                        continue
                    event = {"trait": journey.trigger["trait"], "date": traits[journey.trigger["trait"]]}
                    context = {**context_base, "event": {**event, "day": day.isoformat()}}
                    enrolled += enrol(conn, journey, profile_id, f"date:{day.isoformat()}", context, at=now)
                after = rows[-1].id
    return enrolled
