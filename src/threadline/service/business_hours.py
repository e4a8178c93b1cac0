"""Business-hours arithmetic for SLA clocks: "4 business hours after Friday 17:30" is Monday 12:30.

A calendar is the JSON an SLA policy keeps: `{"timezone": "Asia/Shanghai", "hours": {"mon": ["09:00",
"18:00"], ...}, "holidays": ["2026-10-01"]}`. A weekday missing from `hours`, and every holiday, is
closed. An empty calendar (no `hours`) counts every minute: a 24/7 desk.

Times in and out are naive UTC, the convention of every stored time. Each day's opening and closing
are placed in the calendar's time zone and then compared in UTC, so a day that changes clocks counts
the minutes that really pass (a 00:00-24:00 day is 23 hours when summer time starts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from threadline.errors import Invalid

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with hours on no day of two years would make a due time never come: refused as invalid,
# and the walk below stops there rather than loop for ever.
_MAX_DAYS = 2 * 366


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    timezone: ZoneInfo
    hours: dict[int, tuple[time, time | None]]  # weekday -> (opens, closes); None closes at midnight
    holidays: frozenset[date]

    @property
    def always_open(self) -> bool:
        return not self.hours

    def windows(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open periods (naive UTC) from the local day of `start` on, in order."""
        day = start.replace(tzinfo=UTC).astimezone(self.timezone).date()
        for offset in range(_MAX_DAYS):
            current = day + timedelta(days=offset)
            hours = self.hours.get(current.weekday())
            if hours is None or current in self.holidays:
                continue
            opens, closes = hours
            local_open = datetime.combine(current, opens, tzinfo=self.timezone)
            local_close = (
                datetime.combine(current + timedelta(days=1), time(0), tzinfo=self.timezone)
                if closes is None
                else datetime.combine(current, closes, tzinfo=self.timezone)
            )
            yield _utc(local_open), _utc(local_close)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _clock_time(text: Any, field: str) -> time | None:
    """ "09:00" as a time; "24:00" (closing at midnight) as None."""
    if text == "24:00":
        return None
    try:
        hour, minute = str(text).split(":")
        return time(int(hour), int(minute))
    except ValueError:
        raise Invalid(f"{field}: {text!r} is not a time like 09:00", details={"field": "hours"}) from None


def parse_calendar(calendar: dict[str, Any] | None) -> BusinessCalendar:
    """The stored JSON as a calendar; Invalid naming the field when something is off."""
    calendar = calendar or {}
    name = calendar.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"calendar.timezone: unknown time zone {name!r}", details={"field": "timezone"}
        ) from None
    hours: dict[int, tuple[time, time | None]] = {}
    for day, span in (calendar.get("hours") or {}).items():
        field = f"calendar.hours.{day}"
        if day not in WEEKDAYS:
            raise Invalid(f"{field}: days are {', '.join(WEEKDAYS)}", details={"field": "hours"})
        if not isinstance(span, list | tuple) or len(span) != 2:
            raise Invalid(
                f'{field}: must be [opens, closes], e.g. ["09:00", "18:00"]', details={"field": "hours"}
            )
        opens, closes = _clock_time(span[0], field), _clock_time(span[1], field)
        if opens is None or (closes is not None and closes <= opens):
            raise Invalid(f"{field}: must open before it closes", details={"field": "hours"})
        hours[WEEKDAYS.index(day)] = (opens, closes)
    holidays = set()
    for text in calendar.get("holidays") or []:
        try:
            holidays.add(date.fromisoformat(str(text)))
        except ValueError:
            raise Invalid(
                f"calendar.holidays: {text!r} is not a date like 2026-10-01", details={"field": "holidays"}
            ) from None
    return BusinessCalendar(zone, hours, frozenset(holidays))


def add_business_minutes(start: datetime, minutes: int, calendar: BusinessCalendar) -> datetime:
    """The moment `minutes` business minutes after `start` (both naive UTC). Starting outside hours,
    the count begins at the next opening; a due time never falls in a closed period."""
    if calendar.always_open or minutes <= 0:
        return start + timedelta(minutes=max(minutes, 0))
    left = timedelta(minutes=minutes)
    for opens, closes in calendar.windows(start):
        begin = max(opens, start)
        if begin >= closes:
            continue
        if begin + left <= closes:
            return begin + left
        left -= closes - begin
    raise Invalid("calendar: no business hours in the next two years", details={"field": "hours"})


def business_minutes_between(start: datetime, end: datetime, calendar: BusinessCalendar) -> float:
    """Business minutes from `start` to `end` (naive UTC): the time the SLA clock ran."""
    if end <= start:
        return 0.0
    if calendar.always_open:
        return (end - start) / timedelta(minutes=1)
    total = timedelta(0)
    for opens, closes in calendar.windows(start):
        if opens >= end:
            break
        overlap = min(closes, end) - max(opens, start)
        if overlap > timedelta(0):
            total += overlap
    return total / timedelta(minutes=1)
