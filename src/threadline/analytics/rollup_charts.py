"""The dashboard charts computed from the daily rollups (rollup_reads.RollupView) instead of the events.

Each function gives exactly the rows of its live twin in metrics.py or cohorts.py (same name, columns,
order and definitions in docs/analytics.md); tests/test_rollups.py compares the two chart by chart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

import numpy as np

from threadline.analytics.rollup_reads import Day, Numbers, RollupView
from threadline.analytics.rollups import COUNTS


def _by(days: Iterable[Day], key: str) -> dict[object, list[Day]]:
    grouped: dict[object, list[Day]] = defaultdict(list)
    for day in days:
        grouped[getattr(day, key)].append(day)
    return grouped


def active(view: RollupView, days: list[Day] | None = None) -> int:
    return view.distinct([d.active for d in (view.days if days is None else days)])


def customers_by(view: RollupView, key: str) -> list[tuple[object, int]]:
    """Customers active per channel or source, most first (ties by key, as the live query sorts)."""
    counts = [(k, view.distinct([d.active for d in group])) for k, group in _by(view.days, key).items()]
    return [(k, n) for k, n in counts if n]


def engagement(view: RollupView) -> list[tuple[object, ...]]:
    """Per channel: sessions (customers active on a day, summed over days), then the counted measures."""
    rows: list[tuple[object, ...]] = []
    for channel, group in sorted(_by(view.days, "channel").items(), key=lambda t: str(t[0])):
        sessions = sum(
            same[0].active_count if len(same) == 1 else view.distinct([d.active for d in same])
            for same in _by(group, "day").values()
        )
        total = np.sum([d.counts for d in group], axis=0)
        by_name = dict(zip(COUNTS, (int(v) for v in total), strict=True))
        rows.append(
            (
                channel, sessions, int(by_name["page_views"]), int(by_name["screen_views"]),
                int(by_name["app_opens"]), int(by_name["emails_sent"]), int(by_name["emails_opened"]),
                int(by_name["emails_clicked"]), int(by_name["messages"]), int(by_name["events"]),
            )
        )  # fmt: skip
    return rows


def orders_revenue(days: Iterable[Day]) -> tuple[int, float]:
    days = list(days)
    return sum(d.count("orders") for d in days), sum(d.revenue for d in days)


def buyer_summary(view: RollupView) -> tuple[int, int]:
    """Buyers, and buyers who ordered on more than one channel."""
    per_channel = [view.members([d.buyers for d in group]) for group in _by(view.days, "channel").values()]
    if not per_channel:
        return 0, 0
    channels = np.sum(per_channel, axis=0)
    return int((channels > 0).sum()), int((channels > 1).sum())


def revenue_by(days: Iterable[Day], key: str) -> dict[object, tuple[int, float]]:
    """Orders and revenue per month ("2024-03") or channel, only where there were orders."""
    totals: dict[object, tuple[int, float]] = {}
    for day in days:
        if not day.count("orders"):
            continue
        group = day.day.strftime("%Y-%m") if key == "month" else getattr(day, key)
        orders, revenue = totals.get(group, (0, 0.0))
        totals[group] = (orders + day.count("orders"), revenue + day.revenue)
    return totals


def buyers_between(view: RollupView, since: date, until: date) -> Numbers:
    return np.flatnonzero(view.members([d.buyers for d in view.between(since, until)]))


def cohort_counts(view: RollupView, lowest: int, highest: int) -> list[tuple[int, int, int]]:
    """(cohort month number, months since, customers) for cohorts whose first-order month number
    (year * 12 + month) is within [lowest, highest]; the first order is over all the days read."""
    months: list[Numbers] = []
    buyers: list[Numbers] = []
    for day in view.days:
        if len(day.buyers):
            buyers.append(day.buyers)
            months.append(np.full(len(day.buyers), day.day.year * 12 + day.day.month, dtype=np.int64))
    if not buyers:
        return []
    who, when = np.concatenate(buyers), np.concatenate(months)
    first = np.full(view.size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, who, when)
    cohort = first[who]
    keep = (cohort >= lowest) & (cohort <= highest)
    pairs = np.unique(np.stack([cohort[keep], when[keep] - cohort[keep], who[keep]]), axis=1)
    found, counts = np.unique(pairs[:2], axis=1, return_counts=True)
    return [(int(c), int(o), int(n)) for (c, o), n in zip(found.T, counts, strict=True)]
