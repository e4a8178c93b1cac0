"""A validated definition (definitions.py) to one SQLAlchemy condition on `profiles`.

The condition is correlated on `Profile`: callers select live profiles with it (and the viewer's data
scope, or a list of profile ids for an incremental refresh). Everything that differs between SQLite and
PostgreSQL is in json_sql.py; the computed traits and RFM are in computed.py. Times are compared with
bound instants computed here from `now`, never with date arithmetic in SQL, so both databases agree to
the second and the events index (profile_id, timestamp) answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import aliased

from threadline.segments import computed, json_sql
from threadline.segments.definitions import InvalidDefinition
from threadline.storage.models import (
    ConsentRecord,
    Event,
    Identity,
    LoyaltyStatus,
    ProcessingRestriction,
    Profile,
    ProfileScore,
)

OPT_IN = frozenset({"marketing", "analytics", "personalisation"})  # as threadline.privacy's check_send
REFUSALS = ("denied", "withdrawn")
ALL_CHANNELS = "all"


@dataclass
class Compiler:
    """Compiles definitions for one database at one moment. `definitions` answers another segment's
    definition by id (None when it does not exist), for "in segment" conditions."""

    dialect: str
    now: datetime
    definitions: Callable[[int], Mapping[str, Any] | None]
    _stack: list[int] = field(default_factory=list)

    def condition(self, node: Mapping[str, Any], where: str = "definition") -> ColumnElement[bool]:
        if "all" in node:
            parts = [self.condition(c, f"{where}.all[{n}]") for n, c in enumerate(node["all"])]
            return and_(true(), *parts)
        if "any" in node:
            parts = [self.condition(c, f"{where}.any[{n}]") for n, c in enumerate(node["any"])]
            return or_(false(), *parts)
        if "not" in node:
            return not_(self.condition(node["not"], f"{where}.not"))
        leaf = getattr(self, f"_{node['type']}")
        return leaf(node, where)  # type: ignore[no-any-return]

    # Leaves, one method per `type`.

    def _trait(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        return compare_json(self.dialect, Profile.traits, node["key"], node["op"], node.get("value"))

    def _identity(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        query = select(Identity.id).where(Identity.profile_id == Profile.id, Identity.kind == node["kind"])
        if node["op"] == "starts_with":
            query = query.where(Identity.value.startswith(node["value"], autoescape=True))
        return exists(query)

    def _channel(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        if "within_days" not in node:
            return json_sql.has_key(self.dialect, Profile.channels, node["channel"])
        since = self.now - timedelta(days=node["within_days"])
        return exists(
            select(Event.id).where(
                Event.profile_id == Profile.id,
                Event.timestamp >= since,
                Event.channel == node["channel"],
                computed.not_membership_event(),
            )
        )

    def _event(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        filters = [Event.name == node["name"]]
        if "within_days" in node:
            filters.append(Event.timestamp >= self.now - timedelta(days=node["within_days"]))
        if "channel" in node:
            filters.append(Event.channel == node["channel"])
        for item in node.get("where", []):
            filters.append(
                compare_json(self.dialect, Event.properties, item["key"], item["op"], item.get("value"))
            )
        happened: ColumnElement[bool]
        if node["at_least"] == 1:
            happened = exists(select(Event.id).where(Event.profile_id == Profile.id, *filters))
        else:
            # One grouped pass over the matching events (computed.per_customer): a count per customer,
            # each probing the customer's recent events one by one, took 8x as long on PostgreSQL and
            # 1.8x on SQLite at 1M profiles / 10M events (bench/segment_eval.py).
            happened = computed.per_customer(self.dialect, func.count(), filters, "gte", node["at_least"])
        return happened if node["did"] else not_(happened)

    def _computed(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        return computed.computed_condition(self.dialect, self.now, node)

    def _rfm(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        return computed.rfm_condition(self.dialect, self.now, node)

    def _score(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        query = select(ProfileScore.profile_id).where(
            ProfileScore.profile_id == Profile.id, ProfileScore.name == node["name"]
        )
        if node["op"] == "exists":
            return exists(query.where(ProfileScore.value.is_not(None)))
        return exists(query.where(compare_number(ProfileScore.value, node["op"], node["value"])))

    def _consent(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        allowed = may_contact(node["purpose"], node["channel"])
        return allowed if node["allowed"] else not_(allowed)

    def _tag(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        return json_sql.list_holds(self.dialect, Profile.tags, node["value"])

    def _owner(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        if node["value"] is None:
            return Profile.owner_id.is_(None)
        owner: int = node["value"]
        return Profile.owner_id == owner

    def _loyalty(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        query = select(LoyaltyStatus.profile_id).where(LoyaltyStatus.profile_id == Profile.id)
        column = getattr(LoyaltyStatus, node["field"])
        if node["op"] == "exists":
            return exists(query.where(column.is_not(None)))
        if node["field"] == "tier":
            values = node["value"] if node["op"] == "in" else [node["value"]]
            matched = exists(query.where(column.in_([str(v) for v in values])))
            return not_(matched) if node["op"] == "neq" else matched
        return exists(query.where(compare_number(column, node["op"], node["value"])))

    def _portrait(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        # The tags the daily scores run stored (analytics/portrait.py): a customer it has not tagged yet
        # (new since the last run) matches no tag value, and neither "neq".
        values = node["value"] if node["op"] == "in" else [node["value"]]
        tag = json_sql.string_at(self.dialect, ProfileScore.details, "value")
        stored = select(ProfileScore.profile_id).where(
            ProfileScore.profile_id == Profile.id, ProfileScore.name == f"portrait_{node['tag']}"
        )
        if node["op"] == "neq":
            return exists(stored.where(tag != values[0]))
        return exists(stored.where(tag.in_([str(v) for v in values])))

    def _segment(self, node: Mapping[str, Any], where: str) -> ColumnElement[bool]:
        # Compiled inline rather than read from segment_memberships: a preview and a recompute see the
        # other segment as it is now, and no order of recomputation is needed between segments.
        other = node["segment"]
        if other in self._stack:
            raise InvalidDefinition(f"{where}.segment", "would make a cycle: a segment cannot contain itself")
        definition = self.definitions(other)
        if definition is None:
            raise InvalidDefinition(f"{where}.segment", f"segment {other} does not exist")
        self._stack.append(other)
        try:
            return self.condition(definition, f"segment {other}")
        finally:
            self._stack.pop()


def compare_number(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    """A numeric column against a value; NULL (absent) never matches except for neq."""
    if op == "in":
        return column.in_(value)  # type: ignore[no-any-return]
    if op == "neq":
        return or_(column.is_(None), column != value)
    return {  # type: ignore[no-any-return]
        "eq": column == value,
        "gt": column > value,
        "gte": column >= value,
        "lt": column < value,
        "lte": column <= value,
    }[op]


def compare_json(dialect: str, column: Any, key: str, op: str, value: Any) -> ColumnElement[bool]:
    """column[key] (traits, event properties) against `value` by `op`. The value's JSON type picks the
    comparison: a number compares with JSON numbers, a string with JSON strings, true/false with
    booleans. `neq` also matches where the key is absent ("plan is not pro" includes no plan);
    `contains` and `starts_with` ignore case (ASCII case on SQLite)."""
    if op == "exists":
        return json_sql.has_value(dialect, column, key)
    if op == "neq":
        return not_(
            and_(json_sql.has_value(dialect, column, key), compare_json(dialect, column, key, "eq", value))
        )
    if op == "in":
        return or_(false(), *(compare_json(dialect, column, key, "eq", v) for v in value))
    if op in ("contains", "starts_with"):
        text = func.lower(json_sql.text_at(dialect, column, key))
        wanted = str(value).lower()
        if op == "contains":
            return text.contains(wanted, autoescape=True)
        return text.startswith(wanted, autoescape=True)
    if isinstance(value, bool):
        return json_sql.boolean_is(dialect, column, key, value) if op == "eq" else false()
    if isinstance(value, int | float):
        return compare_number(json_sql.number_at(dialect, column, key), op, value)
    return compare_number(json_sql.string_at(dialect, column, key), op, value)


def may_contact(purpose: str, channel: str) -> ColumnElement[bool]:
    """check_send's answer (threadline.privacy.consent) as SQL: not restricted, and the latest statement
    for the purpose on the channel or "all" among the customer and the profiles merged into it is
    `granted` (opt-in purposes) or is no refusal (service). tests/test_segments.py checks that the two
    agree customer by customer; change both together."""
    merged = aliased(Profile)
    family = or_(
        ConsentRecord.profile_id == Profile.id,
        ConsentRecord.profile_id.in_(select(merged.id).where(merged.merged_into == Profile.id)),
    )
    latest = (
        select(ConsentRecord.status)
        .where(family, ConsentRecord.purpose == purpose, ConsentRecord.channel.in_((channel, ALL_CHANNELS)))
        .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        .limit(1)
        .correlate(Profile)
        .scalar_subquery()
    )
    restricted_family = or_(
        ProcessingRestriction.profile_id == Profile.id,
        ProcessingRestriction.profile_id.in_(select(merged.id).where(merged.merged_into == Profile.id)),
    )
    free = not_(exists(select(ProcessingRestriction.profile_id).where(restricted_family)))
    if purpose in OPT_IN:
        return and_(free, func.coalesce(latest, "") == "granted")  # silence must be a plain no, not NULL
    return and_(free, func.coalesce(latest, "").not_in(REFUSALS))
