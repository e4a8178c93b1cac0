"""Purchases read from the timeline, and the per-customer summaries the buy-till-you-die models take.

Which events count as a purchase is a `PurchaseRule`: by default an "Order Completed" track event with a
positive numeric `revenue` (Segment's ecommerce spec) or, failing that, `total` (what the demo's channels
send). An order without a usable amount is not counted: a model of spend cannot use it and counting it
for frequency only would make the two models disagree about who bought.

Orders on the same day are one purchase of their summed value, the convention of the BG/NBD literature
(Fader, Hardie & Lee 2005 count "transactions" per day in CDNOW): two orders minutes apart are one
shopping trip, not evidence of a faster buyer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select

from threadline.storage import Database
from threadline.storage.models import Event, Profile

DAY = 1.0
WEEK = 7.0


@dataclass(frozen=True, slots=True)
class PurchaseRule:
    """The events that are purchases, and the properties that hold their amount (first one found)."""

    events: tuple[str, ...] = ("Order Completed",)
    value_keys: tuple[str, ...] = ("revenue", "total")

    def value_of(self, properties: dict[str, Any] | None) -> float | None:
        for key in self.value_keys:
            value = (properties or {}).get(key)
            if isinstance(value, bool):  # True is an int to Python, not an amount
                continue
            if isinstance(value, int | float) and value > 0:
                return float(value)
            if isinstance(value, str):
                try:
                    parsed = float(value)
                except ValueError:
                    continue
                if parsed > 0:
                    return parsed
        return None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> PurchaseRule:
        """A rule from a job's payload (`purchase_events`, `value_keys`), the defaults for what is absent."""
        events = payload.get("purchase_events")
        keys = payload.get("value_keys")
        default = cls()
        return cls(
            events=tuple(str(e) for e in events) if events else default.events,
            value_keys=tuple(str(k) for k in keys) if keys else default.value_keys,
        )


@dataclass(frozen=True, slots=True)
class Purchase:
    profile_id: str
    at: datetime
    value: float


def read_purchases(
    db: Database, rule: PurchaseRule = PurchaseRule(), *, until: datetime, batch: int = 5000
) -> Iterator[Purchase]:
    """Every purchase of a live customer before `until`, by customer then time."""
    query = (
        select(Event.profile_id, Event.timestamp, Event.properties)
        .join(Profile, Profile.id == Event.profile_id)
        .where(
            Event.type == "track",
            Event.name.in_(rule.events),
            Event.timestamp < until,
            Profile.merged_into.is_(None),
        )
        .order_by(Event.profile_id, Event.timestamp)
        .execution_options(yield_per=batch)
    )
    with db.read() as session:
        for profile_id, at, properties in session.execute(query):
            value = rule.value_of(properties)
            if value is not None:
                yield Purchase(profile_id, at, value)


@dataclass(slots=True)
class Summaries:
    """One row per customer with at least one purchase, as arrays the models take.

    frequency: repeat purchases (purchase days after the first); recency: first to last purchase;
    age (T in the papers): first purchase to the end of the observation; monetary: mean value of the repeat
    purchases (0 without one: Gamma-Gamma fits on repeat buyers only). Times in `unit` days.
    """

    profile_ids: list[str]
    frequency: NDArray[np.float64]
    recency: NDArray[np.float64]
    age: NDArray[np.float64]
    monetary: NDArray[np.float64]
    first_value: NDArray[np.float64]
    unit: float = DAY
    last_purchase: list[datetime] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.profile_ids)


def summarise(purchases: Iterable[Purchase], *, until: datetime, unit: float = DAY) -> Summaries:
    """Per-customer frequency, recency, age and monetary value as of `until` (purchases after it are
    ignored), in units of `unit` days. `purchases` need not be sorted."""
    days: dict[str, dict[date, float]] = {}
    moments: dict[tuple[str, date], datetime] = {}
    for purchase in purchases:
        if purchase.at >= until:
            continue
        day = purchase.at.date()
        per_day = days.setdefault(purchase.profile_id, {})
        per_day[day] = per_day.get(day, 0.0) + purchase.value
        key = (purchase.profile_id, day)
        moments[key] = min(moments.get(key, purchase.at), purchase.at)
    ids = sorted(days)
    frequency, recency, age, monetary, first_value, last = [], [], [], [], [], []
    seconds = unit * 86_400
    for profile_id in ids:
        per_day = days[profile_id]
        ordered = sorted(per_day)
        first = moments[(profile_id, ordered[0])]
        latest = moments[(profile_id, ordered[-1])]
        repeats = [per_day[d] for d in ordered[1:]]
        frequency.append(len(repeats))
        recency.append((latest - first).total_seconds() / seconds)
        age.append((until - first).total_seconds() / seconds)
        monetary.append(sum(repeats) / len(repeats) if repeats else 0.0)
        first_value.append(per_day[ordered[0]])
        last.append(latest)
    return Summaries(
        profile_ids=ids,
        frequency=np.asarray(frequency, dtype=np.float64),
        recency=np.asarray(recency, dtype=np.float64),
        age=np.asarray(age, dtype=np.float64),
        monetary=np.asarray(monetary, dtype=np.float64),
        first_value=np.asarray(first_value, dtype=np.float64),
        unit=unit,
        last_purchase=last,
    )
