"""Sentiment: English and Chinese free text scored offline, per event, by channel and per customer."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from typing import Any

from tests.factories import SYSTEM, lookup_profile, make_source, send
from threadline.analytics import (
    detect_language,
    negative_events,
    score_new_events,
    score_texts,
    sentiment_by_channel,
)
from threadline.analytics.scope import InsightFilters
from threadline.analytics.sentiment_training import ENGLISH_MODEL, LEXICON_FEATURES, lexicons
from threadline.config import Settings
from threadline.jobs import Worker, handlers, schedules_for
from threadline.storage import Database
from threadline.storage.models import EventSentiment

NOW = datetime(2025, 6, 1, 12, 0)


def test_clear_english_and_chinese_text_gets_the_right_label() -> None:
    texts = [
        "I love this phone, it works great and the staff were wonderful!",
        "Terrible service. I waited an hour and nobody helped, I want a refund.",
        "这个手机很好用，非常满意，下次还会再来",
        "质量太差了，客服态度也不好，要求退货",
    ]
    labels = [(s.language, s.label) for s in score_texts(texts)]
    assert labels == [("en", "positive"), ("en", "negative"), ("zh", "positive"), ("zh", "negative")]
    assert all(-1 <= s.score <= 1 for s in score_texts(texts))


def test_negation_and_contrast_in_english_turn_the_label() -> None:
    texts = [
        "The food was very good.",
        "The food was not very good.",
        "The screen is great but the battery died after two days.",
    ]
    assert [s.label for s in score_texts(texts)] == ["positive", "negative", "negative"]


def test_the_committed_english_model_weighs_every_lexicon_feature_the_scorer_computes() -> None:
    with gzip.open(ENGLISH_MODEL, "rt", encoding="utf-8") as f:
        model = json.load(f)
    assert tuple(model["lexicons"]) == LEXICON_FEATURES
    assert lexicons().features(["Great!", ""]).shape == (2, len(LEXICON_FEATURES))


def test_text_with_a_cjk_character_is_chinese() -> None:
    assert detect_language("Great service") == "en"
    assert detect_language("订单 #123 很好") == "zh"
    assert detect_language("Order 42 from 北京") == "zh"
    assert detect_language("") == "en"


def _said(user: str, n: int, at: datetime, text: str, key: str = "comment") -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Message Received",
        "userId": user,
        "messageId": f"m-{user}-{n}",
        "timestamp": at.isoformat() + "Z",
        "properties": {key: text},
    }


def test_new_events_are_scored_once_and_aggregated_by_channel(db: Database, settings: Settings) -> None:
    web, chat = make_source(db), make_source(db, "chat", "chat")
    day = NOW - timedelta(days=1)
    send(db, settings, web, _said("u1", 1, day, "Absolutely fantastic, thank you so much!", "review"))
    send(db, settings, web, _said("u1", 2, day, "Awful, broken on arrival. Very disappointed."))
    send(db, settings, chat, _said("u2", 1, day, "客服非常耐心，问题很快解决了，谢谢", "message"))
    send(db, settings, chat, {**_said("u2", 2, day, ""), "properties": {"page": "no text here"}})
    assert score_new_events(db, now=NOW) == {"events": 4, "scored": 3}
    assert score_new_events(db, now=NOW)["scored"] == 0  # each event once
    send(db, settings, chat, _said("u2", 3, NOW, "太失望了，再也不买了", "body"))
    assert score_new_events(db, now=NOW)["scored"] == 1
    with db.read() as session:
        assert session.query(EventSentiment).count() == 4

    both_days = InsightFilters(day.date(), NOW.date())
    by_channel = {c.channel: c for c in sentiment_by_channel(db, SYSTEM, both_days)}
    assert (by_channel["web"].scored, by_channel["web"].positive, by_channel["web"].negative) == (2, 1, 1)
    assert (by_channel["chat"].scored, by_channel["chat"].positive, by_channel["chat"].negative) == (2, 1, 1)
    assert by_channel["chat"].negative_share == 0.5
    only_yesterday = sentiment_by_channel(db, SYSTEM, InsightFilters(day.date(), day.date()))
    assert {c.channel: c.scored for c in only_yesterday} == {"web": 2, "chat": 1}

    u2 = lookup_profile(db, "user_id", "u2")
    [complaint] = negative_events(db, u2, since=day)
    assert (complaint.channel, complaint.language, complaint.text) == ("chat", "zh", "太失望了，再也不买了")
    assert negative_events(db, u2, since=NOW + timedelta(minutes=1)) == []


def test_the_hourly_job_scores_through_the_worker(db: Database, settings: Settings) -> None:
    send(
        db,
        settings,
        make_source(db),
        _said("u1", 1, NOW - timedelta(minutes=5), "Really helpful staff, great!"),
    )
    [hourly] = [s for s in schedules_for(settings) if s.kind == "analytics.sentiment"]
    clock = {"at": NOW}
    kinds = {"analytics.sentiment": handlers()["analytics.sentiment"]}
    worker = Worker(db, settings, clock=lambda: clock["at"], kinds=kinds, schedules=[hourly])
    [outcome] = worker.run_until_idle()
    assert (outcome.kind, outcome.status) == ("analytics.sentiment", "done")
    assert worker.run_until_idle() == []  # once an hour
    clock["at"] = NOW + timedelta(hours=1)
    assert [o.status for o in worker.run_until_idle()] == ["done"]
    with db.read() as session:
        assert session.query(EventSentiment).count() == 1
