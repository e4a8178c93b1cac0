"""Surveys on the conversation's channel: an SMS conversation resolved by an agent gets its CSAT as a
signed SMS at a real local provider webhook, and the link in it, answered on the live server, lands on
the survey row (customer and conversation), the profile's surveys and the timeline; a chat's survey is
a line in the chat, not counted as an agent's reply; a call's goes by SMS to the number and NPS goes
where the customer last wrote. Real SQLite and PostgreSQL, real HTTP."""

# ruff: noqa: F811  (the provider fixture imported from test_provider_webhooks is a parameter here)
from __future__ import annotations

import json
import re
from datetime import timedelta

import httpx
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.factories import SYSTEM, timeline_page
from tests.test_messaging import MovableClock
from tests.test_provider_webhooks import (  # noqa: F401  (provider: a fixture)
    SECRET,
    T0,
    Provider,
    provider,
    with_provider,
)
from threadline.config import Settings
from threadline.jobs import Worker, handlers
from threadline.messaging import JOB_KIND
from threadline.messaging.providers import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from threadline.service import (
    change_conversation,
    chat_lines_after,
    get_conversation,
    profile_surveys,
    receive_inbound,
    send_due_surveys,
    send_nps_surveys,
)
from threadline.storage import Database
from threadline.storage.models import OutboundMessage, SurveyResponse

PUBLIC = "https://crm.shop.example"


def opened(db: Database, settings: Settings, channel: str, key: str, identifiers: dict[str, str]) -> int:
    received = receive_inbound(
        db,
        settings,
        channel=channel,
        identifiers=identifiers,
        thread_key=key,
        sender=key,
        body_text="My parcel has not arrived",
        message_id_header=f"{channel}-{key}-1",
        at=T0,
    )
    assert received is not None
    return received.conversation_id


def resolve(db: Database, conversation_id: int) -> None:
    change_conversation(db, SYSTEM, conversation_id, status="resolved", now=T0 + timedelta(hours=1))


def test_an_sms_conversations_survey_goes_by_sms_and_the_answer_lands(
    db: Database, settings: Settings, provider: tuple[Provider, int]
) -> None:
    box, port = provider
    texts = with_provider(settings, port).model_copy(update={"public_url": PUBLIC})
    conversation_id = opened(db, texts, "sms", "+8613800138000", {"phone": "+8613800138000"})
    resolve(db, conversation_id)

    clock = MovableClock(T0 + timedelta(hours=1, minutes=5))
    assert send_due_surveys(db, texts, now=clock()) == {"due": 1, "sent": 1}
    assert send_due_surveys(db, texts, now=clock())["due"] == 0  # once per resolution
    worker = Worker(db, texts, clock=clock, kinds={JOB_KIND: handlers()[JOB_KIND]}, schedules=[])
    assert [outcome.status for outcome in worker.run_until_idle()] == ["done"]

    [(headers, body)] = box.posts
    assert headers[SIGNATURE_HEADER] == sign(SECRET, headers[TIMESTAMP_HEADER], body)
    posted = json.loads(body)
    assert posted["channel"] == "sms" and posted["to"] == "+8613800138000"
    assert posted["text"].startswith("Thank you for contacting us.\nHow did we do? Rate us 1-5: ")
    assert "STOP" not in posted["text"]  # a service message
    [token] = re.findall(rf"{re.escape(PUBLIC)}/survey/([\w-]+)", posted["text"])

    with LiveServer(texts, db, clock=clock) as live, httpx.Client(base_url=live.url) as http:
        assert http.get(f"/survey/{token}").status_code == 200
        answered = http.post(f"/survey/{token}", data={"score": "5", "comment": "Quick, thanks"})
        assert answered.status_code == 303

    with db.read() as session:
        survey = session.scalar(select(SurveyResponse))
        assert survey is not None
        assert (survey.kind, survey.channel, survey.score) == ("csat", "sms", 5)
        assert survey.conversation_id == conversation_id and survey.comment == "Quick, thanks"
        profile_id = survey.profile_id
    _, listed = profile_surveys(db, profile_id, viewer=SYSTEM)
    assert [(s.kind, s.score, s.conversation_id) for s in listed] == [("csat", 5, conversation_id)]
    [event] = [e for e in timeline_page(db, profile_id)["events"] if e["event"] == "Survey Answered"]
    assert event["channel"] == "sms"
    assert event["properties"]["conversation_id"] == conversation_id and event["properties"]["score"] == 5
    # The survey is not a message of the conversation: it stays resolved, not reopened.
    detail = get_conversation(db, SYSTEM, conversation_id)
    assert detail.conversation.status == "resolved" and detail.conversation.reopened == 0


def test_a_chats_survey_is_a_line_in_the_chat(db: Database, settings: Settings) -> None:
    chat = settings.model_copy(update={"public_url": PUBLIC, "survey_ces": True})
    conversation_id = opened(db, chat, "chat", "session-abc", {"anonymous_id": "anon-1"})
    resolve(db, conversation_id)
    assert send_due_surveys(db, chat, now=T0 + timedelta(hours=2)) == {"due": 1, "sent": 1}

    line = chat_lines_after(db, "session-abc", 0)[-1]
    assert line.direction == "out" and len(re.findall(rf"{PUBLIC}/survey/", line.text)) == 2  # CSAT, CES
    entry = get_conversation(db, SYSTEM, conversation_id).entries[-1]
    assert entry.automated and entry.author_user_id is None
    with db.read() as session:
        assert set(session.scalars(select(SurveyResponse.channel))) == {"chat"}
        assert session.scalar(select(OutboundMessage.id)) is None  # no relay: it answers in the chat


def test_a_call_is_surveyed_by_sms_and_nps_goes_where_the_customer_last_wrote(
    db: Database, settings: Settings
) -> None:
    texts = settings.model_copy(update={"public_url": PUBLIC, "nps_every_days": 30})
    call = opened(db, texts, "phone", "+8613900139000", {"phone": "+8613900139000"})
    resolve(db, call)
    send_due_surveys(db, texts, now=T0 + timedelta(hours=2))
    opened(db, texts, "whatsapp", "+8613700137000", {"phone": "+8613700137000"})
    send_nps_surveys(db, texts, now=T0 + timedelta(days=1))
    with db.read() as session:
        sent = sorted(
            (m.channel, m.to_address or "", m.body_text.splitlines()[1].split(":")[0])
            for m in session.scalars(select(OutboundMessage))
        )
    assert sent == [
        ("sms", "+8613900139000", "How did we do? Rate us 1-5"),
        ("sms", "+8613900139000", "Would you recommend us? Rate it 0-10"),  # last wrote: the call
        ("whatsapp", "+8613700137000", "Would you recommend us? Rate it 0-10"),
    ]
