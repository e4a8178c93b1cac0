"""Reading the sentiment scores back (`event_sentiments`, written by sentiment.py): per channel over a date
range for Insight, per event for the timeline, per inbound message for a conversation, and a customer's
negative messages for the weakest-link alarm."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from threadline.accounts import Viewer
from threadline.analytics.dataset import Dataset
from threadline.analytics.scope import InsightFilters, scoped_events
from threadline.analytics.sentiment import text_of
from threadline.service import inbound_event_message_id
from threadline.storage import Database
from threadline.storage.models import Event, EventSentiment

LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class EventScore:
    score: float  # -1 .. 1
    label: str  # negative | neutral | positive


@dataclass(frozen=True, slots=True)
class ChannelSentiment:
    channel: str
    scored: int
    average: float
    negative: int
    neutral: int
    positive: int

    def share(self, label: str) -> float:
        return round(getattr(self, label) / self.scored, 4) if self.scored else 0.0

    @property
    def negative_share(self) -> float:
        return self.share("negative")


def sentiment_by_channel(db: Database, viewer: Viewer, filters: InsightFilters) -> list[ChannelSentiment]:
    """Scored events of the viewer's customers per channel whose event time is in the filters' days (and
    channel, team), with their mean score and counts per label; channels by name."""
    label_count = [func.sum(case((EventSentiment.label == label, 1), else_=0)) for label in LABELS]
    query = scoped_events(
        select(EventSentiment.channel, func.count(), func.avg(EventSentiment.score), *label_count)
        .select_from(Event)
        .join(EventSentiment, EventSentiment.event_id == Event.id),
        viewer,
        filters,
    )
    query = query.group_by(EventSentiment.channel).order_by(EventSentiment.channel)
    with db.read() as session:
        return [
            ChannelSentiment(channel, int(n), round(float(avg), 4), int(neg), int(neu), int(pos))
            for channel, n, avg, neg, neu, pos in session.execute(query)
        ]


def sentiment_dataset(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """`sentiment_by_channel` as the Insight chart and its download: shares per label and the mean."""
    rows = [
        (c.channel, c.scored, *(c.share(label) for label in LABELS), c.average)
        for c in sentiment_by_channel(db, viewer, filters)
    ]
    columns = ("channel", "scored", "negative_share", "neutral_share", "positive_share", "average_sentiment")
    return Dataset("sentiment_by_channel", columns, rows)


def event_scores(db: Database, event_ids: Iterable[int]) -> dict[int, EventScore]:
    """The scores of those events that have one, by event id (one query)."""
    ids = list(set(event_ids))
    if not ids:
        return {}
    with db.read() as session:
        rows = session.execute(
            select(EventSentiment.event_id, EventSentiment.score, EventSentiment.label).where(
                EventSentiment.event_id.in_(ids)
            )
        )
        return {event_id: EventScore(score, label) for event_id, score, label in rows}


def message_scores(db: Database, channel: str, headers: dict[int, str | None]) -> dict[int, EventScore]:
    """The scores of a conversation's inbound messages (id -> Message-ID header) through their timeline
    events, by message id. A message without a header (its event's id was random) has none."""
    wanted = {inbound_event_message_id(channel, h): m for m, h in headers.items() if h}
    if not wanted:
        return {}
    with db.read() as session:
        rows = session.execute(
            select(Event.message_id, EventSentiment.score, EventSentiment.label)
            .join(EventSentiment, EventSentiment.event_id == Event.id)
            .where(Event.message_id.in_(list(wanted)))
        )
        return {wanted[mid]: EventScore(score, label) for mid, score, label in rows}


@dataclass(frozen=True, slots=True)
class ScoredEvent:
    event_id: int
    profile_id: str
    channel: str
    timestamp: datetime
    text: str
    language: str
    score: float


def negative_events(db: Database, profile_id: str, since: datetime) -> list[ScoredEvent]:
    """A customer's events labelled negative since `since`, oldest first. The customer is the event's
    current profile, so the messages follow a merge."""
    query = (
        select(Event, EventSentiment)
        .join(EventSentiment, EventSentiment.event_id == Event.id)
        .where(Event.profile_id == profile_id, Event.timestamp >= since, EventSentiment.label == "negative")
        .order_by(Event.timestamp, Event.id)
    )
    with db.read() as session:
        return [
            ScoredEvent(
                e.id, e.profile_id, e.channel, e.timestamp, text_of(e.properties) or "", s.language, s.score
            )
            for e, s in session.execute(query)
        ]
