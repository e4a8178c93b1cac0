"""What the churn model knows about a customer as of a date: recency, frequency and spend, engagement per
channel in recent windows, and service signals (complaints, low survey scores).

Everything is computed from what happened strictly before the as-of date, so a model trained on features
as of a past date and labels after it sees exactly what it will see when scoring today (no leak of the
future into training). The readers take live customers' events from the database; the computation is
pure, so the benchmark's generated histories go through the same code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select

from threadline.analytics.purchases import Purchase
from threadline.storage import Database
from threadline.storage.models import Event, Profile

CHANNELS = ("web", "app", "store", "email", "sms", "chat", "call_center", "social")
EMAIL_ENGAGEMENT = ("Email Opened", "Email Link Clicked")
SURVEY_EVENTS = ("Survey Answered", "Survey Completed", "Survey Responded")
COMPLAINT_WORD = "complaint"  # any event whose name contains it: "Complaint", "Complaint Filed", ...
LOW_SURVEY_SHARE = 0.6  # a score at most 60% of its scale: NPS 0-6 (detractors), CSAT 1-3 of 5
LOOKBACK_DAYS = 365  # how far back engagement is read
# The model's inputs, in order. Names are stable: stored reasons refer to them (web/insight_panel.py).
FEATURES = (
    "days_since_last_purchase",
    "purchases_365d",
    "avg_order_value",
    "tenure_days",
    "days_since_last_activity",
    "events_30d",
    "events_31_90d",
    "page_views_30d",
    "email_engagement_90d",
    *(f"{channel}_events_90d" for channel in CHANNELS),
    "complaints_90d",
    "low_survey_scores_180d",
)
_INDEX = {name: i for i, name in enumerate(FEATURES)}


@dataclass(frozen=True, slots=True)
class Activity:
    """One event of a customer, without its properties."""

    profile_id: str
    channel: str
    type: str
    name: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    profile_id: str
    at: datetime
    share: float  # the score as a share of its scale, 0..1


def survey_share(properties: dict[str, Any] | None) -> float | None:
    """A survey answer's `score` over its `scale` (the maximum; 10 when absent, as for NPS)."""
    props = properties or {}
    score, scale = props.get("score"), props.get("scale", 10)
    if isinstance(score, bool) or not isinstance(score, int | float):
        return None
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        return None
    return float(min(max(score / scale, 0.0), 1.0))


def read_activity(db: Database, *, since: datetime, until: datetime, batch: int = 5000) -> Iterator[Activity]:
    """Live customers' events in [since, until)."""
    query = (
        select(Event.profile_id, Event.channel, Event.type, Event.name, Event.timestamp)
        .join(Profile, Profile.id == Event.profile_id)
        .where(Event.timestamp >= since, Event.timestamp < until, Profile.merged_into.is_(None))
        .execution_options(yield_per=batch)
    )
    with db.read() as session:
        for row in session.execute(query):
            yield Activity(*row)


def read_survey_answers(db: Database, *, since: datetime, until: datetime) -> list[SurveyAnswer]:
    query = (
        select(Event.profile_id, Event.timestamp, Event.properties)
        .join(Profile, Profile.id == Event.profile_id)
        .where(
            Event.name.in_(SURVEY_EVENTS),
            Event.timestamp >= since,
            Event.timestamp < until,
            Profile.merged_into.is_(None),
        )
    )
    answers = []
    with db.read() as session:
        for profile_id, at, properties in session.execute(query):
            share = survey_share(properties)
            if share is not None:
                answers.append(SurveyAnswer(profile_id, at, share))
    return answers


def earliest_activity(db: Database) -> datetime | None:
    with db.read() as session:
        return session.scalar(select(func.min(Event.timestamp)))


@dataclass(slots=True)
class FeatureTable:
    profile_ids: list[str]
    values: NDArray[np.float64]  # one row per customer, columns in FEATURES order

    def column(self, name: str) -> NDArray[np.float64]:
        return self.values[:, _INDEX[name]]


def features_as_of(
    as_of: datetime,
    purchases: Sequence[Purchase],
    activity: Iterable[Activity],
    surveys: Iterable[SurveyAnswer] = (),
    *,
    min_tenure_days: int,
    active_days: int,
) -> FeatureTable:
    """Features of the customers eligible at `as_of`: a first purchase at least `min_tenure_days` before
    it (with less history, no row: no risk is invented), and a purchase within `active_days` (a customer
    gone for longer has already left; counting them would flatter any model)."""
    day = timedelta(days=1)
    bought: dict[str, list[Purchase]] = {}
    for purchase in purchases:
        if purchase.at < as_of:
            bought.setdefault(purchase.profile_id, []).append(purchase)
    eligible = sorted(
        pid
        for pid, rows in bought.items()
        if min(p.at for p in rows) <= as_of - min_tenure_days * day
        and max(p.at for p in rows) >= as_of - active_days * day
    )
    rows = {pid: np.zeros(len(FEATURES)) for pid in eligible}
    last_seen: dict[str, datetime] = {}
    since = as_of - LOOKBACK_DAYS * day
    for event in activity:
        row = rows.get(event.profile_id)
        if row is None or not since <= event.at < as_of:
            continue
        age = (as_of - event.at) / day
        if event.profile_id not in last_seen or event.at > last_seen[event.profile_id]:
            last_seen[event.profile_id] = event.at
        if age <= 30:
            row[_INDEX["events_30d"]] += 1
            if event.type in ("page", "screen"):
                row[_INDEX["page_views_30d"]] += 1
        elif age <= 90:
            row[_INDEX["events_31_90d"]] += 1
        if age <= 90:
            if event.channel in CHANNELS:
                row[_INDEX[f"{event.channel}_events_90d"]] += 1
            if event.name in EMAIL_ENGAGEMENT:
                row[_INDEX["email_engagement_90d"]] += 1
            if event.name and COMPLAINT_WORD in event.name.lower():
                row[_INDEX["complaints_90d"]] += 1
    for answer in surveys:
        row = rows.get(answer.profile_id)
        if row is not None and as_of - 180 * day <= answer.at < as_of and answer.share <= LOW_SURVEY_SHARE:
            row[_INDEX["low_survey_scores_180d"]] += 1
    for pid in eligible:
        row, history = rows[pid], bought[pid]
        first, last = min(p.at for p in history), max(p.at for p in history)
        row[_INDEX["days_since_last_purchase"]] = (as_of - last) / day
        row[_INDEX["purchases_365d"]] = len({p.at.date() for p in history if p.at >= since})
        row[_INDEX["avg_order_value"]] = sum(p.value for p in history) / len(history)
        row[_INDEX["tenure_days"]] = (as_of - first) / day
        seen = max(last_seen.get(pid, last), last)
        row[_INDEX["days_since_last_activity"]] = min((as_of - seen) / day, LOOKBACK_DAYS)
    values = np.vstack([rows[pid] for pid in eligible]) if eligible else np.zeros((0, len(FEATURES)))
    return FeatureTable(eligible, values)


def churned(
    profile_ids: Sequence[str], purchases: Iterable[Purchase], *, start: datetime, horizon_days: int
) -> NDArray[np.int64]:
    """1 for each customer without a purchase in [start, start + horizon_days), 0 for the others."""
    end = start + timedelta(days=horizon_days)
    bought = {p.profile_id for p in purchases if start <= p.at < end}
    return np.asarray([0 if pid in bought else 1 for pid in profile_ids], dtype=np.int64)
