"""SLA policies: first-response and resolution targets per priority, customer tier and channel, counted
in business hours. Admins keep them (Settings -> SLAs, or REST); the first active policy by position
that matches a conversation applies to it (sla.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from threadline.errors import Conflict, Invalid, NotFound
from threadline.service.business_hours import BusinessCalendar, parse_calendar
from threadline.service.conversations import PRIORITIES, SERVICE_CHANNELS
from threadline.storage import Database
from threadline.storage.models import SlaPolicy

# A policy names what a conversation can have (service/conversations.py).
CONVERSATION_CHANNELS = SERVICE_CHANNELS
# Targets up to a year: past that a number is a typo (minutes entered as seconds), not a promise.
MAX_MINUTES = 366 * 24 * 60


@dataclass(frozen=True, slots=True)
class PolicyView:
    id: int
    name: str
    position: int
    priority: str | None
    tier: str | None
    channel: str | None
    first_response_minutes: int
    resolution_minutes: int
    warn_before_minutes: int
    calendar: dict[str, Any]
    active: bool

    def matches(self, *, priority: str | None, tier: str | None, channel: str | None) -> bool:
        """None on the policy means any; tiers compare without case ("Gold" is "gold")."""
        return (
            self.active
            and (self.priority is None or self.priority == priority)
            and (self.tier is None or (tier is not None and self.tier.lower() == str(tier).lower()))
            and (self.channel is None or self.channel == channel)
        )

    def business_calendar(self) -> BusinessCalendar:
        return parse_calendar(self.calendar)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "position": self.position,
            "priority": self.priority,
            "tier": self.tier,
            "channel": self.channel,
            "first_response_minutes": self.first_response_minutes,
            "resolution_minutes": self.resolution_minutes,
            "warn_before_minutes": self.warn_before_minutes,
            "calendar": self.calendar,
            "active": self.active,
        }


def view_of(row: SlaPolicy) -> PolicyView:
    return PolicyView(
        id=row.id,
        name=row.name,
        position=row.position,
        priority=row.priority,
        tier=row.tier,
        channel=row.channel,
        first_response_minutes=row.first_response_minutes,
        resolution_minutes=row.resolution_minutes,
        warn_before_minutes=row.warn_before_minutes,
        calendar=dict(row.calendar or {}),
        active=bool(row.active),
    )


def _choice(value: Any, field: str, allowed: tuple[str, ...]) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise Invalid(
            f"{field}: must be one of {', '.join(allowed)} (or empty for any)", details={"field": field}
        )
    return str(value)


def _minutes(value: Any, field: str, *, low: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{field}: must be a whole number of minutes", details={"field": field}) from None
    if not low <= number <= MAX_MINUTES:
        raise Invalid(f"{field}: must be between {low} and {MAX_MINUTES} minutes", details={"field": field})
    return number


def checked_values(values: dict[str, Any]) -> dict[str, Any]:
    """A policy's fields, validated (Invalid names the field); the calendar must parse."""
    name = str(values.get("name") or "").strip()
    if not name or len(name) > 100:
        raise Invalid("name: 1 to 100 characters", details={"field": "name"})
    tier = str(values.get("tier") or "").strip() or None
    if tier is not None and len(tier) > 40:
        raise Invalid("tier: up to 40 characters", details={"field": "tier"})
    calendar = values.get("calendar") or {}
    if not isinstance(calendar, dict):
        raise Invalid("calendar: must be an object", details={"field": "calendar"})
    parse_calendar(calendar)
    try:
        position = int(values.get("position") or 0)
    except (TypeError, ValueError):
        raise Invalid("position: must be a whole number", details={"field": "position"}) from None
    return {
        "name": name,
        "position": position,
        "priority": _choice(values.get("priority"), "priority", PRIORITIES),
        "tier": tier,
        "channel": _choice(values.get("channel"), "channel", CONVERSATION_CHANNELS),
        "first_response_minutes": _minutes(
            values.get("first_response_minutes"), "first_response_minutes", low=1
        ),
        "resolution_minutes": _minutes(values.get("resolution_minutes"), "resolution_minutes", low=1),
        "warn_before_minutes": _minutes(values.get("warn_before_minutes", 30), "warn_before_minutes", low=0),
        "calendar": calendar,
        "active": bool(values.get("active", True)),
    }


def list_policies(db: Database) -> list[PolicyView]:
    """Every policy in the order they are tried."""
    with db.read() as session:
        rows = session.scalars(select(SlaPolicy).order_by(SlaPolicy.position, SlaPolicy.id))
        return [view_of(row) for row in rows]


def get_policy(db: Database, policy_id: int) -> PolicyView:
    with db.read() as session:
        row = session.get(SlaPolicy, policy_id)
        if row is None:
            raise NotFound(f"SLA policy {policy_id} does not exist")
        return view_of(row)


def create_policy(db: Database, values: dict[str, Any]) -> PolicyView:
    fields = checked_values(values)
    try:
        with db.write() as session:
            if "position" not in values or values.get("position") in (None, ""):
                # Left out, a new policy goes last: it must not quietly take over conversations.
                last = session.scalar(select(func.max(SlaPolicy.position)))
                fields["position"] = (last or 0) + 10
            row = SlaPolicy(**fields)
            session.add(row)
            session.flush()
            return view_of(row)
    except IntegrityError:
        raise Conflict(f"name: a policy named {fields['name']!r} exists", details={"field": "name"}) from None


def update_policy(db: Database, policy_id: int, values: dict[str, Any]) -> PolicyView:
    """Replace a policy's fields. Conversations keep the due times they were given: a target changed
    today does not move yesterday's promises."""
    fields = checked_values(values)
    try:
        with db.write() as session:
            row = session.get(SlaPolicy, policy_id)
            if row is None:
                raise NotFound(f"SLA policy {policy_id} does not exist")
            for key, value in fields.items():
                setattr(row, key, value)
            session.flush()
            return view_of(row)
    except IntegrityError:
        raise Conflict(f"name: a policy named {fields['name']!r} exists", details={"field": "name"}) from None


def delete_policy(db: Database, policy_id: int) -> None:
    """Remove a policy; conversations that had it keep their due times and its id."""
    with db.write() as session:
        row = session.get(SlaPolicy, policy_id)
        if row is None:
            raise NotFound(f"SLA policy {policy_id} does not exist")
        session.delete(row)
