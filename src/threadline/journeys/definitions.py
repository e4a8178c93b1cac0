"""What a journey is made of, checked before it is stored: a trigger, steps, an exit goal, a re-entry rule.

Definitions are JSON (the API takes them as written, the ready-made templates are JSON too), so every
field is checked here and an error names it (`steps[2].hours`), the way segment definitions are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from threadline.errors import Invalid
from threadline.messaging import CHANNELS
from threadline.storage.models import Journey

DRAFT, ACTIVE, PAUSED = "draft", "active", "paused"
STATUSES = (DRAFT, ACTIVE, PAUSED)
TRIGGERS = ("event", "segment", "schedule", "trait", "date")
SEGMENT_CHANGES = ("enter", "leave")
WAITS = ("wait", "wait_for_event")
CONTROLS = ("branch", "split")
MESSAGES = ("send_email", "send_message")  # runner.py sends these; actions.py does the others
ACTIONS = (
    *MESSAGES,
    "record_event",
    "set_trait",
    "add_tag",
    "remove_tag",
    "create_task",
    "add_loyalty_points",
    "webhook",
)
STEP_TYPES = (*WAITS, *CONTROLS, *ACTIONS)
REENTRY = ("once", "every")
PURPOSES = ("marketing", "service", "personalisation")
END = "end"  # a `next` or `else` that ends the journey
MAX_STEPS = 50
MAX_KEY = 40
MAX_OFFSET_DAYS = 365  # a date trigger runs at most a year before or after the anniversary
MAX_POINTS = 1_000_000  # loyalty's own limit is higher; a journey granting more is a typo


def _invalid(field: str, reason: str) -> Invalid:
    return Invalid(f"{field}: {reason}", details={"field": field})


def duration_of(step: dict[str, Any], field: str, prefix: str = "") -> timedelta:
    """`minutes`, `hours` and `days` (or `timeout_hours`, ... with a prefix) added up; at least one."""
    parts = {unit: step.get(f"{prefix}{unit}") for unit in ("minutes", "hours", "days")}
    if all(value is None for value in parts.values()):
        raise _invalid(field, f"give {prefix}minutes, {prefix}hours or {prefix}days")
    total = timedelta()
    for unit, value in parts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise _invalid(f"{field}.{prefix}{unit}", "must be a number of at least 0")
        total += timedelta(**{unit: value})
    return total


def _name(trigger: dict[str, Any], field: str, reason: str) -> None:
    if not (isinstance(trigger.get(field), str) and trigger[field].strip()):
        raise _invalid(f"trigger.{field}", reason)


def _hour(trigger: dict[str, Any], default: int, zone: str) -> None:
    hour = trigger.get("at_hour", default)
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise _invalid("trigger.at_hour", f"must be an hour of the day, 0 to 23 ({zone})")


def check_trigger(trigger: Any) -> dict[str, Any]:
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGERS:
        raise _invalid("trigger.type", f"must be one of {', '.join(TRIGGERS)}")
    kind = trigger["type"]
    if kind == "event":
        _name(trigger, "event", "name the event that enrols a customer")
        if not isinstance(trigger.get("where", {}), dict):
            raise _invalid("trigger.where", "must be an object of property: value")
    elif kind == "segment":
        segment_id = trigger.get("segment_id")
        if isinstance(segment_id, bool) or not isinstance(segment_id, int):
            raise _invalid("trigger.segment_id", "name the segment (its id) whose entry enrols a customer")
        if trigger.get("on", "enter") not in SEGMENT_CHANGES:
            raise _invalid("trigger.on", f"must be one of {', '.join(SEGMENT_CHANGES)}")
    elif kind == "schedule":
        _hour(trigger, 9, "UTC")
    elif kind == "trait":
        # `from` / `to` are optional: present (even as null, "was not set") they must match.
        _name(trigger, "trait", "name the trait whose change enrols a customer")
    elif kind == "date":
        _name(trigger, "trait", "name the date trait (e.g. birthday) whose anniversary enrols a customer")
        _hour(trigger, 9, "the customer's time zone")
        offset = trigger.get("offset_days", 0)
        if isinstance(offset, bool) or not isinstance(offset, int) or abs(offset) > MAX_OFFSET_DAYS:
            raise _invalid(
                "trigger.offset_days",
                f"must be whole days, -{MAX_OFFSET_DAYS} (before the date) to {MAX_OFFSET_DAYS} (after)",
            )
    return dict(trigger)


def check_steps(steps: Any) -> list[dict[str, Any]]:
    if not isinstance(steps, list) or not steps or len(steps) > MAX_STEPS:
        raise _invalid("steps", f"give 1 to {MAX_STEPS} steps")
    keys: list[str] = []
    for index, step in enumerate(steps):
        field = f"steps[{index}]"
        if not isinstance(step, dict) or step.get("type") not in STEP_TYPES:
            raise _invalid(f"{field}.type", f"must be one of {', '.join(STEP_TYPES)}")
        key = step.get("key")
        if not isinstance(key, str) or not key or len(key) > MAX_KEY or key == END or key in keys:
            raise _invalid(f"{field}.key", f"give each step its own key (1 to {MAX_KEY} characters)")
        keys.append(key)
        kind = step["type"]
        if kind == "wait":
            duration_of(step, field)
        elif kind == "wait_for_event":
            if not isinstance(step.get("event"), str):
                raise _invalid(f"{field}.event", "name the event to wait for")
            duration_of(step, field, "timeout_")
        elif kind == "branch" and not isinstance(step.get("condition"), dict):
            raise _invalid(f"{field}.condition", "give the condition to branch on")
        elif kind == "split":
            paths = step.get("paths")
            if not isinstance(paths, list) or len(paths) < 2:
                raise _invalid(f"{field}.paths", "give at least two paths with a weight and a goto")
        elif kind in MESSAGES:
            _check_message(step, field)
        elif kind == "add_loyalty_points":
            points = step.get("points")
            if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_POINTS:
                raise _invalid(f"{field}.points", f"give whole points, 1 to {MAX_POINTS}")
            if not isinstance(step.get("reason", ""), str):
                raise _invalid(f"{field}.reason", "must be text")
        elif kind == "webhook":
            target = step.get("destination")
            if isinstance(target, bool) or not isinstance(target, int) or target < 1:
                raise _invalid(
                    f"{field}.destination", "give the id of a destination (Settings → Destinations)"
                )
            if not isinstance(step.get("properties", {}), dict):
                raise _invalid(f"{field}.properties", "must be a JSON object")
        elif kind in ("record_event", "create_task") and not isinstance(step.get("event", "x"), str):
            raise _invalid(f"{field}.event", "must be an event name")
        elif kind == "set_trait" and not isinstance(step.get("trait"), str):
            raise _invalid(f"{field}.trait", "name the trait to set")
        elif kind in ("add_tag", "remove_tag") and not isinstance(step.get("tag"), str):
            raise _invalid(f"{field}.tag", "name the tag")
    targets = {*keys, END}
    for index, step in enumerate(steps):
        jumps = [step.get("next"), step.get("else"), step.get("on_timeout")]
        jumps += [p.get("goto") for p in step.get("paths", []) if isinstance(p, dict)]
        for target in jumps:
            if target is not None and target not in targets:
                raise _invalid(f"steps[{index}]", f"jumps to {target!r}, which is no step's key")
    return [dict(step) for step in steps]


def _check_message(step: dict[str, Any], field: str) -> None:
    """An email needs a subject; an SMS, WhatsApp, WeChat or social message has none (messaging's rule)."""
    channel = step.get("channel", "email") if step["type"] == "send_message" else "email"
    if channel not in CHANNELS:
        raise _invalid(f"{field}.channel", f"must be one of {', '.join(CHANNELS)}")
    required = ("subject", "body_text") if channel == "email" else ("body_text",)
    for name in required:
        if not isinstance(step.get(name), str) or not step[name].strip():
            raise _invalid(f"{field}.{name}", "is required")


def check_goal(goal: Any) -> dict[str, Any] | None:
    if goal is None:
        return None
    if not isinstance(goal, dict) or not isinstance(goal.get("event"), str):
        raise _invalid("exit_goal.event", "name the event that ends the journey (its goal)")
    return dict(goal)


def check_reentry(rule: Any, days: Any) -> tuple[str, int | None]:
    if rule not in REENTRY:
        raise _invalid("reentry", f"must be one of {', '.join(REENTRY)}")
    if rule == "once":
        return rule, None
    if not isinstance(days, int) or days < 0:
        raise _invalid("reentry_days", "give the days before a customer may enter again (0 or more)")
    return rule, days


@dataclass(frozen=True, slots=True)
class JourneyView:
    id: int
    name: str
    template: str | None
    trigger: dict[str, Any]
    steps: list[dict[str, Any]]
    exit_goal: dict[str, Any] | None
    reentry: str
    reentry_days: int | None
    purpose: str
    status: str
    activated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Journey) -> JourneyView:
        return cls(
            row.id,
            row.name,
            row.template,
            dict(row.trigger),
            list(row.steps),
            None if row.exit_goal is None else dict(row.exit_goal),
            row.reentry,
            row.reentry_days,
            row.purpose,
            row.status,
            row.activated_at,
            row.created_at,
            row.updated_at,
        )

    def as_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat(timespec="seconds") + "Z"

        return {
            "id": self.id,
            "name": self.name,
            "template": self.template,
            "trigger": self.trigger,
            "steps": self.steps,
            "exit_goal": self.exit_goal,
            "reentry": self.reentry,
            "reentry_days": self.reentry_days,
            "purpose": self.purpose,
            "status": self.status,
            "activated_at": iso(self.activated_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }
