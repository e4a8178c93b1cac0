"""Sentiment where people see it: the label beside a message on the timeline and in a conversation, and
the shares per channel on the Insight consistency page, to the exact figure on a hand-made set."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import httpx

from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send
from tests.test_web_pages import sign_in
from threadline.analytics import score_new_events, sentiment_by_channel, sentiment_dataset
from threadline.analytics.scope import InsightFilters
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.service import receive_inbound
from threadline.storage import Database
from threadline.storage.models import Event, EventSentiment

MARCH = InsightFilters(date(2024, 3, 1), date(2024, 3, 31))
_seq = iter(range(1_000_000))


def _comment(user: str, at: str, text: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Message Received",
        "userId": user,
        "messageId": f"m-{next(_seq)}",
        "timestamp": at + "Z",
        "properties": {"comment": text},
    }


def _scored(db: Database, settings: Settings, channel: str, at: str, score: float, label: str) -> int:
    """An event on `channel` with a hand-set score (the model's figures are bench/sentiment.py's)."""
    source = make_source(db, f"src-{channel}-{next(_seq)}", channel)
    send(db, settings, source, _comment("u1", at, f"note {score}"))
    with db.write() as session:
        event = session.query(Event).order_by(Event.id.desc()).first()
        assert event is not None
        session.add(
            EventSentiment(
                event_id=event.id, profile_id=event.profile_id, channel=channel, language="en",
                score=score, label=label, scored_at=datetime(2024, 4, 1),
            )
        )  # fmt: skip
        return event.id


def _hand_made_set(db: Database, settings: Settings) -> None:
    for channel, at, score, label in [
        ("web", "2024-03-02T10:00:00", 0.8, "positive"),
        ("web", "2024-03-05T10:00:00", -0.6, "negative"),
        ("web", "2024-03-09T10:00:00", 0.1, "neutral"),
        ("web", "2024-03-31T23:59:00", 0.5, "positive"),
        ("chat", "2024-03-10T10:00:00", -0.9, "negative"),
        ("chat", "2024-03-11T10:00:00", -0.4, "negative"),
        ("web", "2024-04-01T00:00:00", -1.0, "negative"),  # the day after the range
        ("chat", "2024-02-29T23:59:00", 1.0, "positive"),  # the day before
    ]:
        _scored(db, settings, channel, at, score, label)


def test_shares_and_mean_per_channel_over_a_date_range(db: Database, settings: Settings) -> None:
    _hand_made_set(db, settings)
    data = sentiment_dataset(db, SYSTEM, MARCH)
    assert data.columns == (
        "channel", "scored", "negative_share", "neutral_share", "positive_share", "average_sentiment"
    )  # fmt: skip
    assert data.rows == [("chat", 2, 1.0, 0.0, 0.0, -0.65), ("web", 4, 0.25, 0.25, 0.5, 0.2)]
    only_chat = sentiment_by_channel(db, SYSTEM, InsightFilters(date(2024, 3, 1), date(2024, 3, 31), "chat"))
    assert [(c.channel, c.scored, c.negative_share) for c in only_chat] == [("chat", 2, 1.0)]


def test_the_consistency_page_shows_and_exports_sentiment_by_channel(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    _hand_made_set(db, settings)
    make_token(db)
    sign_in(http)
    march = "start=2024-03-01&end=2024-03-31"
    page = http.get(f"/insight/consistency?{march}")
    assert page.status_code == 200 and 'id="chart-sentiment_by_channel"' in page.text
    exported = http.get(f"/insight/consistency?{march}&format=csv&chart=sentiment_by_channel")
    assert exported.text.splitlines() == [
        "channel,scored,negative_share,neutral_share,positive_share,average_sentiment",
        "chat,2,1.0,0.0,0.0,-0.65",
        "web,4,0.25,0.25,0.5,0.2",
    ]


def test_a_scored_message_shows_its_label_on_the_timeline(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    _scored(db, settings, "web", "2024-03-05T10:00:00", -0.72, "negative")
    send(db, settings, make_source(db, "other", "web"), _comment("u1", "2024-03-06T10:00:00", "unscored"))
    make_token(db)
    sign_in(http)
    page = http.get(f"/customers/{lookup_profile(db, 'user_id', 'u1')}")
    assert page.status_code == 200
    label = 'title="Sentiment -0.72, from -1 (negative) to 1 (positive)">negative</span>'
    assert page.text.count(label) == 1 and page.text.count("badge sentiment ") == 1


def test_a_customer_message_in_a_conversation_shows_its_label(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    def received(body: str, header: str) -> Any:
        return receive_inbound(
            db,
            settings,
            channel="email",
            identifiers={"email": "ada@example.com"},
            sender="ada@example.com",
            subject="Order 1",
            body_text=body,
            message_id_header=header,
            in_reply_to="<m1@mail.example>" if header != "<m1@mail.example>" else None,
            at=utcnow(),
        )

    first = received(
        "Terrible service, the parcel arrived broken and nobody answers. I want a refund!",
        "<m1@mail.example>",
    )
    received("Thank you so much, the replacement arrived and it works great!", "<m2@mail.example>")
    assert first is not None
    # The events carry no body; the job scores the message's text onto its timeline event.
    assert score_new_events(db, now=utcnow())["scored"] == 2
    make_token(db)
    sign_in(http)
    page = http.get(f"/inbox/{first.conversation_id}")
    assert page.status_code == 200
    assert page.text.count("sentiment-negative") == 1 and page.text.count("sentiment-positive") == 1
    assert page.text.index("sentiment-negative") < page.text.index("sentiment-positive")
