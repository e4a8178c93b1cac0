"""Generated customer histories with known churn drivers, for bench/churn.py and the tests.

Each customer buys at their own rate while they stay, visits the web and the app, opens some of the
emails everyone is sent, now and then complains and answers surveys. Whether and when they leave is
drawn day by day from a hazard that rises with dissatisfaction (low survey scores are its visible sign)
and for a while after each complaint. In the weeks before leaving their engagement fades, as real
customers' does; after leaving they buy nothing and rarely visit, but keep being mailed.

What a model can learn is therefore real but partial: a customer who buys rarely is often quiet for 90
days without having left, and one who leaves may have looked content the day before. Mailings reach
everyone alike, so a model cannot score well by counting them. The same seed gives the same histories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from threadline.analytics.churn_features import Activity, SurveyAnswer
from threadline.analytics.purchases import Purchase

START = datetime(2025, 1, 6)
FADE_DAYS = 45  # engagement declines over this many days before a customer leaves


@dataclass(slots=True)
class Histories:
    purchases: list[Purchase] = field(default_factory=list)
    activity: list[Activity] = field(default_factory=list)
    surveys: list[SurveyAnswer] = field(default_factory=list)
    left_on: dict[str, datetime | None] = field(default_factory=dict)  # the truth, for checks
    end: datetime = START


def generate_histories(customers: int, *, days: int = 540, seed: int = 7) -> Histories:
    """`customers` histories over `days` days from START; customers join in the first two thirds."""
    rng = np.random.default_rng(seed)
    n = customers
    joined = rng.integers(0, days * 2 // 3, n)
    rate = rng.gamma(1.6, 1 / 50, n)  # purchases per day while a customer: one every ~30 days on average
    engagement = rng.lognormal(0.0, 0.6, n)  # visits scale
    satisfaction = rng.beta(5, 2, n)  # 0..1, seen through survey scores
    complaint_rate = 0.004 * (1.5 - satisfaction)
    spend = rng.gamma(4, 20, n)

    # Leaving: a daily hazard, higher for the dissatisfied and for 60 days after a complaint.
    left = np.full(n, days)  # day index; `days` means never within the period
    last_complaint = np.full(n, -10_000)
    complaints: list[tuple[int, int]] = []
    alive = np.ones(n, dtype=bool)
    for day in range(days):
        present = alive & (joined <= day)
        complained = present & (rng.random(n) < complaint_rate)
        complaints += [(who, day) for who in np.flatnonzero(complained).tolist()]
        last_complaint[complained] = day
        recent = (day - last_complaint) <= 60
        hazard = 0.0006 * np.exp(3.0 * (1 - satisfaction)) * np.where(recent, 4.0, 1.0)
        leaving = present & (rng.random(n) < hazard)
        left[leaving] = day
        alive &= ~leaving

    out = Histories(end=START + timedelta(days=days))
    for i in range(n):
        pid = f"syn{seed}-{i:06d}"
        start, stop = int(joined[i]), int(left[i])
        out.left_on[pid] = START + timedelta(days=stop) if stop < days else None
        span = np.arange(start, days)
        member = span < stop
        fade = np.clip((stop - span) / FADE_DAYS, 0.15, 1.0)
        seconds = rng.integers(0, 86_400, len(span))

        def when(k: int, span: Any = span, seconds: Any = seconds) -> datetime:
            return START + timedelta(days=int(span[k]), seconds=int(seconds[k]))

        buys = member & (rng.random(len(span)) < rate[i])
        buys[0] = True  # the first purchase is what makes them a customer
        for k in np.flatnonzero(buys).tolist():
            out.purchases.append(Purchase(pid, when(k), float(round(rng.gamma(6, spend[i] / 6), 2))))
            if rng.random() < 0.25:  # a survey after some orders; scores follow satisfaction
                score = int(np.clip(np.round(10 * satisfaction[i] + rng.normal(0, 1.5)), 0, 10))
                out.surveys.append(SurveyAnswer(pid, when(k) + timedelta(hours=30), score / 10))
        visits = rng.poisson(np.where(member, 0.08 * engagement[i] * fade, 0.004))
        for k in np.flatnonzero(visits).tolist():
            for page in range(int(visits[k]) * 2):
                out.activity.append(Activity(pid, "web", "page", None, when(k) + timedelta(minutes=page)))
        opens = rng.poisson(np.where(member, 0.05 * engagement[i] * fade, 0.002))
        for k in np.flatnonzero(opens).tolist():
            out.activity.append(Activity(pid, "app", "track", "Application Opened", when(k)))
        for k in range(0, len(span), 14):  # everyone is mailed every two weeks, whether they stay or not
            out.activity.append(Activity(pid, "email", "track", "Email Received", when(k)))
            if member[k] and rng.random() < 0.5 * fade[k]:
                out.activity.append(
                    Activity(pid, "email", "track", "Email Opened", when(k) + timedelta(hours=3))
                )
        for k in np.flatnonzero(buys).tolist():
            out.activity.append(Activity(pid, "web", "track", "Order Completed", when(k)))
    for i, day in complaints:
        at = START + timedelta(days=day, hours=12)
        out.activity.append(Activity(f"syn{seed}-{i:06d}", "call_center", "track", "Complaint Filed", at))
    return out
