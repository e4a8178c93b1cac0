"""Computed traits read from the timeline: spend, orders, days since the last purchase or contact, the
favourite channel, and RFM quintiles.

A purchase is a track event named in `purchase_events` (default "Order Completed") whose amount is the
first of `value_keys` (default revenue, then total) that holds a positive JSON number: the rule of
threadline.analytics' PurchaseRule, except that an amount sent as text ("12.50") is not read here (SQL
cannot parse it safely on both databases). Orders without a usable amount do not count, as there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    not_,
    null,
    or_,
    select,
)

from threadline.segments import json_sql
from threadline.storage.models import Event, Profile

# Threadline's own membership events (membership.py) neither count as contact nor make a favourite
# channel: otherwise entering "no contact for 30 days" would be a contact, and the customer would leave.
MEMBERSHIP_EVENTS = ("Segment Entered", "Segment Exited")


def not_membership_event() -> ColumnElement[bool]:
    return or_(Event.name.is_(None), Event.name.not_in(MEMBERSHIP_EVENTS))


def purchase_amount(dialect: str, value_keys: list[str]) -> ColumnElement[float]:
    amounts = [json_sql.number_at(dialect, Event.properties, key) for key in value_keys]
    usable = [case((amount > 0, amount), else_=null()) for amount in amounts]
    return func.coalesce(*usable) if len(usable) > 1 else usable[0]


def _purchases(dialect: str, node: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    return [
        Event.type == "track",
        Event.name.in_(node["purchase_events"]),
        purchase_amount(dialect, node["value_keys"]).is_not(None),
    ]


def per_customer(
    dialect: str, total: ColumnElement[Any], filters: list[ColumnElement[bool]], op: str, value: Any
) -> ColumnElement[bool]:
    """`total` (an aggregate over each customer's events matching `filters`; 0 for a customer without
    any) compared by `op`, as one grouped pass over the events rather than an aggregate per customer,
    which reads every event of every customer from the table (bench/segment_eval.py: total spend at
    1M profiles / 10M events). Customers without events have a total of 0: when 0 passes the test they
    match unless their group fails it.

    PostgreSQL: EXISTS over the grouped events, which it turns into a hash semi (or anti) join with the
    profiles where the condition stands in an AND. Under an OR it stays a subquery per customer, with the
    customer's id pushed into the grouping: no slower than a per-customer aggregate, and never an IN list
    that PostgreSQL would scan again for every customer once it does not fit in work_mem. SQLite: an IN
    list, built once; its EXISTS form would run the grouping again for every customer."""
    zero_matches = _passes(0, op, value)
    test = _number(total, op, value)
    grouped = (
        select(Event.profile_id)
        .where(*filters)
        .group_by(Event.profile_id)
        .having(not_(test) if zero_matches else test)
    )
    found: ColumnElement[bool]
    if dialect == json_sql.POSTGRESQL:
        groups = grouped.subquery()
        found = exists(select(groups.c.profile_id).where(groups.c.profile_id == Profile.id))
    else:
        found = Profile.id.in_(grouped)
    return not_(found) if zero_matches else found


def _passes(number: float, op: str, value: Any) -> bool:
    if op == "in":
        return number in value
    return bool(
        {
            "eq": number == value,
            "neq": number != value,
            "gt": number > value,
            "gte": number >= value,
            "lt": number < value,
            "lte": number <= value,
        }[op]
    )


def computed_condition(dialect: str, now: datetime, node: Mapping[str, Any]) -> ColumnElement[bool]:
    trait, op, value = node["trait"], node["op"], node.get("value")
    own = Event.profile_id == Profile.id
    if trait == "total_spend":
        spend = func.sum(purchase_amount(dialect, node["value_keys"]))
        return per_customer(dialect, spend, _purchases(dialect, node), op, value)
    if trait == "order_count":
        return per_customer(dialect, func.count(), _purchases(dialect, node), op, value)
    if trait == "days_since_last_purchase":
        last = select(func.max(Event.timestamp)).where(own, *_purchases(dialect, node)).scalar_subquery()
        return days_since(last, now, op, value)
    if trait == "days_since_last_contact":
        last = select(func.max(Event.timestamp)).where(own, not_membership_event()).scalar_subquery()
        return days_since(last, now, op, value)
    favourite = (
        select(Event.channel)
        .where(own, not_membership_event())
        .group_by(Event.channel)
        .order_by(func.count().desc(), func.max(Event.timestamp).desc(), Event.channel)
        .limit(1)
        .scalar_subquery()
    )
    if op == "in":
        return favourite.in_(list(value or []))
    if op == "neq":
        return func.coalesce(favourite, "") != value
    return favourite == value


def _number(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "in":
        return column.in_(value)  # type: ignore[no-any-return]
    return {  # type: ignore[no-any-return]
        "eq": column == value,
        "neq": column != value,
        "gt": column > value,
        "gte": column >= value,
        "lt": column < value,
        "lte": column <= value,
    }[op]


def days_since(last: Any, now: datetime, op: str, value: Any) -> ColumnElement[bool]:
    """Whole days from `last` (a timestamp, NULL for never) to `now`, compared by `op`, as comparisons of
    `last` with instants: days >= N is last <= now - N days. Never matches only `neq`."""
    if op == "exists":
        return last.is_not(None)  # type: ignore[no-any-return]
    if op == "in":
        return or_(false(), *(days_since(last, now, "eq", v) for v in value))

    def ago(days: int) -> datetime:
        return now - timedelta(days=days)

    if op == "neq":
        return or_(last.is_(None), not_(days_since(last, now, "eq", value)))
    return {  # type: ignore[no-any-return]
        "gte": last <= ago(value),
        "gt": last <= ago(value + 1),
        "lte": last > ago(value + 1),
        "lt": last > ago(value),
        "eq": and_(last <= ago(value), last > ago(value + 1)),
    }[op]


def rfm_scores(dialect: str, node: Mapping[str, Any]) -> Any:
    """Each live customer with a purchase, with r, f and m from 1 to 5: their quintile among all such
    customers by the last purchase (5: most recent), the number of orders and their total. Ties share the
    quintile of the first of them (1 + 5 * (rank - 1) / customers, rank() giving ties its lowest), so
    the many one-order customers all get f = 1 rather than being spread over quintiles at random."""
    amount = purchase_amount(dialect, node["value_keys"])
    totals = (
        select(
            Event.profile_id.label("profile_id"),
            func.max(Event.timestamp).label("last"),
            func.count().label("orders"),
            func.sum(amount).label("spend"),
        )
        .join(Profile, Profile.id == Event.profile_id)
        .where(Profile.merged_into.is_(None), *_purchases(dialect, node))
        .group_by(Event.profile_id)
        .subquery("rfm_totals")
    )
    customers = func.count().over()

    def quintile(column: Any) -> Any:
        return 1 + (5 * (func.rank().over(order_by=column) - 1)) // customers

    return select(
        totals.c.profile_id,
        quintile(totals.c.last).label("r"),
        quintile(totals.c.orders).label("f"),
        quintile(totals.c.spend).label("m"),
    ).subquery("rfm")


def rfm_condition(dialect: str, now: datetime, node: Mapping[str, Any]) -> ColumnElement[bool]:
    scores = rfm_scores(dialect, node)
    return Profile.id.in_(
        select(scores.c.profile_id).where(_number(scores.c[node["score"]], node["op"], node["value"]))
    )
