"""Branch conditions over a customer's traits, the enrollment's context (the trigger event) and their
recent events. Small on purpose: segments are the tool for audiences; a journey only needs to ask "has
it been 90 days since the last order?" or "is today the birthday?" at one step.

    {"all": [...]}, {"any": [...]}, {"not": {...}}
    {"trait": "tier", "op": "eq", "value": "gold"}         ops: eq ne gt gte lt lte exists contains
    {"context": "event.total", "op": "gte", "value": 100}  a dotted path into the context
    {"days_since_event": "Order Completed", "op": "gte", "value": 90}  never done counts as forever
    {"anniversary": "birthday"}                            the date trait's month and day are today's
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

LastEventAt = Callable[[str], datetime | None]
_FOREVER = 1_000_000  # days since an event never done


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if op == "exists":
        return actual is not None
    if op == "contains":
        return bool(isinstance(actual, (list, str)) and expected in actual)
    if op in ("eq", "ne"):
        return bool(actual == expected) == (op == "eq")
    try:
        if op == "gt":
            return bool(actual > expected)
        if op == "gte":
            return bool(actual >= expected)
        if op == "lt":
            return bool(actual < expected)
        if op == "lte":
            return bool(actual <= expected)
    except TypeError:  # a trait of another type than the condition's value answers no
        return False
    return False


def _path(values: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        values = values.get(part) if isinstance(values, dict) else None
    return values


def _date_of(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def holds(
    condition: dict[str, Any],
    *,
    traits: dict[str, Any],
    context: dict[str, Any],
    last_event_at: LastEventAt,
    now: datetime,
) -> bool:
    def check(node: dict[str, Any]) -> bool:
        if "all" in node:
            return all(check(child) for child in node["all"])
        if "any" in node:
            return any(check(child) for child in node["any"])
        if "not" in node:
            return not check(node["not"])
        op, value = str(node.get("op", "eq")), node.get("value")
        if "trait" in node:
            return _compare(traits.get(str(node["trait"])), op, value)
        if "context" in node:
            return _compare(_path(context, str(node["context"])), op, value)
        if "days_since_event" in node:
            last = last_event_at(str(node["days_since_event"]))
            days = _FOREVER if last is None else (now - last).days
            return _compare(days, op, value)
        if "anniversary" in node:
            when = _date_of(traits.get(str(node["anniversary"])))
            return when is not None and (when.month, when.day) == (now.month, now.day)
        return False

    return check(condition)
