"""Quiet hours: promotional messages wait for the morning in the customer's own time zone.

THREADLINE_QUIET_HOURS (e.g. 21:00-08:00) is read in each customer's local time: their `timezone`
trait (an IANA name such as Asia/Shanghai), else the workspace's THREADLINE_TIMEZONE, else UTC. A
message asked for inside them is held: stored `queued` with `send_after` at the end of the quiet
period, and its job runs then. Service messages (an answer, an order update) are never held.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from threadline.config import Settings

UNPACED_PURPOSES = frozenset({"service"})  # a reply to the customer's own request goes at once, uncapped
TIMEZONE_TRAIT = "timezone"


@dataclass(frozen=True, slots=True)
class Hold:
    until: datetime  # naive UTC, as the database keeps times
    reason: str  # for the delivery log: why the message waits, in the customer's time


def customer_zone(traits: Mapping[str, Any], settings: Settings) -> ZoneInfo:
    """The customer's time zone: the trait when it names one, else the workspace's, else UTC. A
    misspelt trait ("China", "GMT+8 ") is common in imported data and must not stop a send."""
    for name in (traits.get(TIMEZONE_TRAIT), settings.timezone):
        if isinstance(name, str) and name.strip():
            try:
                return ZoneInfo(name.strip())
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _window(settings: Settings) -> tuple[time, time] | None:
    if not settings.quiet_hours:
        return None
    start, end = settings.quiet_hours.split("-")  # checked when the settings load (config.py)
    return time.fromisoformat(start), time.fromisoformat(end)


def quiet_hold(settings: Settings, purpose: str, traits: Mapping[str, Any], now: datetime) -> Hold | None:
    """When a message for `purpose` asked for at `now` (naive UTC) must wait for the quiet hours to
    end, else None."""
    window = _window(settings)
    if window is None or purpose in UNPACED_PURPOSES:
        return None
    start, end = window
    zone = customer_zone(traits, settings)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    overnight = start > end  # 21:00-08:00 spans midnight; 01:00-06:00 does not
    if overnight:
        quiet = clock >= start or clock < end
        ends_on = local.date() + timedelta(days=1) if clock >= start else local.date()
    else:
        quiet = start <= clock < end
        ends_on = local.date()
    if not quiet:
        return None
    # A wall-clock time skipped by a DST change (02:30 on a spring-forward night) converts to the
    # instant just after it, which is what "when the quiet hours end" means there.
    local_end = datetime.combine(ends_on, end, tzinfo=zone)
    until = local_end.astimezone(UTC).replace(tzinfo=None)
    reason = (
        f"held for the customer's quiet hours ({settings.quiet_hours} {zone.key}) until "
        f"{local_end:%Y-%m-%d %H:%M} their time ({until:%Y-%m-%d %H:%M} UTC)"
    )
    return Hold(until, reason)
