"""The segment condition language: JSON a person (or the builder page) writes, validated field by field.

A definition is a condition. Groups nest: `{"all": [...]}` (AND), `{"any": [...]}` (OR), `{"not": c}`.
A leaf names its `type` and what it tests; docs/segments.md has every type with examples. Errors name
the field the way a person would find it: `definition.all[2].op: must be one of eq, neq, ...`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from threadline.config import CHANNELS
from threadline.errors import Invalid
from threadline.privacy import CHANNELS as CONSENT_CHANNELS
from threadline.privacy import PURPOSES

TRAIT_OPS = ("eq", "neq", "contains", "starts_with", "gt", "gte", "lt", "lte", "exists", "in")
NUMBER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "in")
COMPUTED = (
    "total_spend",
    "order_count",
    "days_since_last_purchase",
    "days_since_last_contact",
    "favourite_channel",
)
RFM_SCORES = ("r", "f", "m")
LOYALTY_FIELDS = ("points", "lifetime_points", "spend", "tier")
# The customer portrait's tags (threadline.analytics' portrait.TAGS; a test keeps the two in step), which
# the daily scores run stores per customer as `portrait_<tag>` score rows.
PORTRAIT_TAGS = (
    "favourite_channel",
    "price_sensitivity",
    "purchase_frequency",
    "value_tier",
    "lifecycle_stage",
)
LEAF_TYPES = (
    "trait",
    "identity",
    "channel",
    "event",
    "computed",
    "rfm",
    "score",
    "consent",
    "tag",
    "owner",
    "loyalty",
    "portrait",
    "segment",
)
# What "a purchase" is unless a condition says otherwise: threadline.analytics' default PurchaseRule
# (Segment's ecommerce spec, then what the demo's channels send). Keep the two in step.
PURCHASE_EVENTS = ("Order Completed",)
VALUE_KEYS = ("revenue", "total")
MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_LIST = 100
MAX_DAYS = 36_500
# Keys go into SQL as literals (json_sql.py): anything but quotes, backslashes and control characters.
_KEY = re.compile(r"^[^\"'\\\x00-\x1f]{1,100}$")
_WORD = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")


class InvalidDefinition(Invalid):
    """A definition Threadline cannot run, naming the field (`definition.all[2].op`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", details={"field": field})
        self.field = field
        self.reason = reason


def validate_definition(definition: Any, field: str = "definition") -> dict[str, Any]:
    """The definition, checked and cleaned (unknown keys dropped, words lower-cased); raises
    InvalidDefinition naming the first field that is wrong. References to other segments are checked
    against the database by the catalog (catalog.py), which knows the segments."""
    counter = [0]
    return _condition(definition, field, 0, counter)


def segment_references(definition: dict[str, Any]) -> list[tuple[int, str]]:
    """Every (segment id, field) an "in segment" condition names, in order."""
    found: list[tuple[int, str]] = []

    def walk(node: dict[str, Any], field: str) -> None:
        for group in ("all", "any"):
            if group in node:
                for n, child in enumerate(node[group]):
                    walk(child, f"{field}.{group}[{n}]")
                return
        if "not" in node:
            walk(node["not"], f"{field}.not")
        elif node.get("type") == "segment":
            found.append((int(node["segment"]), f"{field}.segment"))

    walk(definition, "definition")
    return found


def _condition(node: Any, field: str, depth: int, counter: list[int]) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise InvalidDefinition(field, "must be a JSON object: a group (all, any, not) or a condition")
    if depth > MAX_DEPTH:
        raise InvalidDefinition(field, f"groups nest at most {MAX_DEPTH} deep")
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise InvalidDefinition(field, f"a segment has at most {MAX_CONDITIONS} conditions")
    groups = [g for g in ("all", "any", "not") if g in node]
    if len(groups) > 1:
        raise InvalidDefinition(field, "a group is one of all, any or not, not several")
    if groups == ["not"]:
        return {"not": _condition(node["not"], f"{field}.not", depth + 1, counter)}
    if groups:
        group = groups[0]
        items = node[group]
        if not isinstance(items, list):
            raise InvalidDefinition(f"{field}.{group}", "must be a list of conditions")
        return {
            group: [_condition(c, f"{field}.{group}[{n}]", depth + 1, counter) for n, c in enumerate(items)]
        }
    kind = node.get("type")
    if kind not in LEAF_TYPES:
        raise InvalidDefinition(
            f"{field}.type", f"must be one of {', '.join(LEAF_TYPES)} (or use all, any, not for a group)"
        )
    return {"type": kind, **_LEAVES[kind](node, field)}


def _choice(node: dict[str, Any], key: str, field: str, choices: tuple[str, ...], default: Any = None) -> str:
    value = node.get(key, default)
    if isinstance(value, str):
        value = value.strip().lower()
    if value not in choices:
        raise InvalidDefinition(f"{field}.{key}", f"must be one of {', '.join(choices)}")
    return str(value)


def _text(node: dict[str, Any], key: str, field: str, pattern: re.Pattern[str] = _KEY) -> str:
    value = node.get(key)
    if not isinstance(value, str) or not pattern.match(value.strip()):
        raise InvalidDefinition(f"{field}.{key}", "must be a name of 1 to 100 characters without quotes")
    return value.strip()


def _integer(node: dict[str, Any], key: str, field: str, low: int, high: int) -> int:
    value = node.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidDefinition(f"{field}.{key}", f"must be a whole number from {low} to {high}")
    return value


def _optional_days(node: dict[str, Any], field: str) -> dict[str, Any]:
    if node.get("within_days") is None:
        return {}
    return {"within_days": _integer(node, "within_days", field, 1, MAX_DAYS)}


def _scalar(value: Any, field: str, numeric: bool) -> Any:
    if numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidDefinition(field, "must be a number")
        return value
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and len(value) <= 200:
        return value
    raise InvalidDefinition(field, "must be a string of at most 200 characters, a number or true/false")


def _compare(
    node: dict[str, Any], field: str, ops: tuple[str, ...], *, numeric: bool = False
) -> dict[str, Any]:
    """`op` and `value` of a comparison; `in` takes a list, `exists` no value."""
    op = _choice(node, "op", field, ops)
    if op == "exists":
        return {"op": op}
    value = node.get("value")
    if op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
            raise InvalidDefinition(f"{field}.value", f"must be a list of 1 to {MAX_LIST} values for in")
        return {"op": op, "value": [_scalar(v, f"{field}.value[{n}]", numeric) for n, v in enumerate(value)]}
    if op in ("contains", "starts_with"):
        if not isinstance(value, str) or not value:
            raise InvalidDefinition(f"{field}.value", f"must be some text for {op}")
        return {"op": op, "value": value[:200]}
    if op in ("gt", "gte", "lt", "lte") and not numeric:
        # A string orders as text: ISO dates ("2024-03-01") compare as dates do.
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidDefinition(f"{field}.value", f"must be a number or an ISO date for {op}")
        return {"op": op, "value": value}
    return {"op": op, "value": _scalar(value, f"{field}.value", numeric)}


def _trait(node: dict[str, Any], field: str) -> dict[str, Any]:
    return {"key": _text(node, "key", field), **_compare(node, field, TRAIT_OPS)}


def _identity(node: dict[str, Any], field: str) -> dict[str, Any]:
    kind = _text(node, "kind", field, _WORD).lower()
    op = _choice(node, "op", field, ("exists", "starts_with"), "exists")
    if op == "exists":
        return {"kind": kind, "op": op}
    value = node.get("value")
    if not isinstance(value, str) or not value.strip():
        raise InvalidDefinition(f"{field}.value", "must be the text identifiers start with")
    return {"kind": kind, "op": op, "value": value.strip()[:320]}


def _channel(node: dict[str, Any], field: str) -> dict[str, Any]:
    return {"channel": _choice(node, "channel", field, CHANNELS), **_optional_days(node, field)}


def _event(node: dict[str, Any], field: str) -> dict[str, Any]:
    did = node.get("did", True)
    if not isinstance(did, bool):
        raise InvalidDefinition(f"{field}.did", "must be true (did) or false (did not)")
    clean: dict[str, Any] = {"name": _text(node, "name", field), "did": did}
    clean["at_least"] = 1 if node.get("at_least") is None else _integer(node, "at_least", field, 1, 1_000_000)
    clean.update(_optional_days(node, field))
    if node.get("channel") is not None:
        clean["channel"] = _choice(node, "channel", field, CHANNELS)
    where = node.get("where", [])
    if not isinstance(where, list) or len(where) > 20:
        raise InvalidDefinition(f"{field}.where", "must be a list of at most 20 property filters")
    clean["where"] = []
    for n, item in enumerate(where):
        spot = f"{field}.where[{n}]"
        if not isinstance(item, dict):
            raise InvalidDefinition(spot, "must be a JSON object with key, op and value")
        clean["where"].append({"key": _text(item, "key", spot), **_compare(item, spot, TRAIT_OPS)})
    return clean


def _names(node: dict[str, Any], key: str, field: str, default: tuple[str, ...]) -> list[str]:
    value = node.get(key)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not 1 <= len(value) <= 20:
        raise InvalidDefinition(f"{field}.{key}", "must be a list of 1 to 20 names")
    return [_text({"v": v}, "v", f"{field}.{key}[{n}]") for n, v in enumerate(value)]


def _computed(node: dict[str, Any], field: str) -> dict[str, Any]:
    trait = _choice(node, "trait", field, COMPUTED)
    if trait == "favourite_channel":
        compared = _compare(node, field, ("eq", "neq", "in"))
        values = compared["value"] if compared["op"] == "in" else [compared["value"]]
        for n, v in enumerate(values):
            if v not in CHANNELS:
                suffix = f"[{n}]" if compared["op"] == "in" else ""
                raise InvalidDefinition(f"{field}.value{suffix}", f"must be one of {', '.join(CHANNELS)}")
    elif trait.startswith("days_since"):
        compared = _compare(node, field, (*NUMBER_OPS, "exists"), numeric=True)
        for v in compared.get("value", []) if compared["op"] == "in" else [compared.get("value", 0)]:
            if not isinstance(v, int) or v < 0:
                raise InvalidDefinition(f"{field}.value", "must be a whole number of days, 0 or more")
    else:
        compared = _compare(node, field, NUMBER_OPS, numeric=True)
    clean = {"trait": trait, **compared}
    if trait in ("total_spend", "order_count", "days_since_last_purchase"):
        clean["purchase_events"] = _names(node, "purchase_events", field, PURCHASE_EVENTS)
        clean["value_keys"] = _names(node, "value_keys", field, VALUE_KEYS)
    return clean


def _rfm(node: dict[str, Any], field: str) -> dict[str, Any]:
    score = _choice(node, "score", field, RFM_SCORES)
    compared = _compare(node, field, NUMBER_OPS, numeric=True)
    for v in compared["value"] if compared["op"] == "in" else [compared["value"]]:
        if v not in (1, 2, 3, 4, 5):
            raise InvalidDefinition(f"{field}.value", "must be a quintile from 1 to 5")
    return {
        "score": score,
        **compared,
        "purchase_events": _names(node, "purchase_events", field, PURCHASE_EVENTS),
        "value_keys": _names(node, "value_keys", field, VALUE_KEYS),
    }


def _score(node: dict[str, Any], field: str) -> dict[str, Any]:
    return {
        "name": _text(node, "name", field, _WORD),
        **_compare(node, field, (*NUMBER_OPS, "exists"), numeric=True),
    }


def _consent(node: dict[str, Any], field: str) -> dict[str, Any]:
    allowed = node.get("allowed", True)
    if not isinstance(allowed, bool):
        raise InvalidDefinition(f"{field}.allowed", "must be true (may be contacted) or false")
    return {
        "purpose": _choice(node, "purpose", field, PURPOSES),
        "channel": _choice(node, "channel", field, CONSENT_CHANNELS),
        "allowed": allowed,
    }


def _tag(node: dict[str, Any], field: str) -> dict[str, Any]:
    value = node.get("value")
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= 40:
        raise InvalidDefinition(f"{field}.value", "must be a tag of 1 to 40 characters")
    return {"value": value.strip()}


def _owner(node: dict[str, Any], field: str) -> dict[str, Any]:
    value = node.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidDefinition(f"{field}.value", "must be a user id, or null for customers without an owner")
    return {"value": value}


def _loyalty(node: dict[str, Any], field: str) -> dict[str, Any]:
    name = _choice(node, "field", field, LOYALTY_FIELDS)
    if name == "tier":
        return {"field": name, **_compare(node, field, ("eq", "neq", "in", "exists"))}
    return {"field": name, **_compare(node, field, NUMBER_OPS, numeric=True)}


def _portrait(node: dict[str, Any], field: str) -> dict[str, Any]:
    compared = _compare(node, field, ("eq", "neq", "in"))
    values = compared["value"] if compared["op"] == "in" else [compared["value"]]
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise InvalidDefinition(f"{field}.value", "must be a tag value such as active or high")
    return {"tag": _choice(node, "tag", field, PORTRAIT_TAGS), **compared}


def _segment(node: dict[str, Any], field: str) -> dict[str, Any]:
    return {"segment": _integer(node, "segment", field, 1, 2**31 - 1)}


_LEAVES: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "trait": _trait,
    "identity": _identity,
    "channel": _channel,
    "event": _event,
    "computed": _computed,
    "rfm": _rfm,
    "score": _score,
    "consent": _consent,
    "tag": _tag,
    "owner": _owner,
    "loyalty": _loyalty,
    "portrait": _portrait,
    "segment": _segment,
}
