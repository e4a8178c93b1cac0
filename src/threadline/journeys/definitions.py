"""What a journey is made of, checked before it is stored: a trigger, steps, an exit goal, a re-entry rule.

Definitions are JSON (the API takes them as written, the ready-made templates are JSON too), so every
field is checked here and an error names it (`steps[2].hours`), the way segment definitions are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from threadline.errors import Invalid
from threadline.storage.models import Journey

DRAFT, ACTIVE, PAUSED = "draft", "active", "paused"
STATUSES = (DRAFT, ACTIVE, PAUSED)
TRIGGERS = ("event", "segment", "schedule")
WAITS = ("wait", "wait_for_event")
CONTROLS = ("branch", "split")
ACTIONS = ("send_email", "record_event", "set_trait", "add_tag", "remove_tag", "create_task")
STEP_TYPES = (*WAITS, *CONTROLS, *ACTIONS)
REENTRY = ("once", "every")
PURPOSES = ("marketing", "service", "personalisation")
END = "end"  # a `next` or `else` that ends the journey
MAX_STEPS = 50
MAX_KEY = 40


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


def check_trigger(trigger: Any) -> dict[str, Any]:
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGERS:
        raise _invalid("trigger.type", f"must be one of {', '.join(TRIGGERS)}")
    kind = trigger["type"]
    if kind == "event" and not (isinstance(trigger.get("event"), str) and trigger["event"].strip()):
        raise _invalid("trigger.event", "name the event that enrols a customer")
    if kind == "event" and not isinstance(trigger.get("where", {}), dict):
        raise _invalid("trigger.where", "must be an object of property: value")
    if kind == "segment" and not isinstance(trigger.get("segment_id"), int):
        raise _invalid("trigger.segment_id", "name the segment (its id) whose entry enrols a customer")
    if kind == "schedule":
        hour = trigger.get("at_hour", 9)
        if not isinstance(hour, int) or not 0 <= hour <= 23:
            raise _invalid("trigger.at_hour", "must be an hour of the day, 0 to 23 (UTC)")
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
        elif kind == "send_email":
            for name in ("subject", "body_text"):
                if not isinstance(step.get(name), str) or not step[name].strip():
                    raise _invalid(f"{field}.{name}", "is required")
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
