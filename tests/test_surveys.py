"""Surveys end to end: a resolved conversation's CSAT goes out through messaging to a real SMTP server
(aiosmtpd), the link in the received mail opens the public answer page, the answer lands on the
survey row and the timeline; CES on request; NPS on its schedule. Real SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from tests.conftest import LiveServer, free_port
from tests.factories import lookup_profile, make_source, make_token, send, timeline_page
from tests.test_messaging import Mailbox, MovableClock, with_relay
from threadline.config import Settings
from threadline.jobs import Worker, handlers
from threadline.service import send_due_surveys, send_nps_surveys
from threadline.storage import Database
from threadline.storage.models import Conversation, SurveyResponse

T0 = datetime(2026, 3, 3, 9, 0)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def mail(settings: Settings, mailbox: tuple[Mailbox, int]) -> Settings:
    return with_relay(settings, mailbox[1])


def customer(db: Database, settings: Settings, user_id: str, email: str) -> str:
    source = make_source(db, f"shop-{user_id}")
    identify = {
        "type": "identify",
        "userId": user_id,
        "traits": {"email": email},
        "timestamp": "2026-02-01T00:00:00Z",
    }
    send(db, settings, source, identify)
    return lookup_profile(db, "user_id", user_id)


def resolved_conversation(db: Database, profile_id: str, *, at: datetime, channel: str = "email") -> int:
    with db.write() as session:
        row = Conversation(
            profile_id=profile_id,
            channel=channel,
            status="resolved",
            priority="normal",
            tags=[],
            created_at=at - timedelta(hours=2),
            updated_at=at,
            last_message_at=at,
            first_response_at=at - timedelta(hours=1),
            resolved_at=at,
            reopened=0,
            sla_state="ok",
        )
        session.add(row)
        session.flush()
        return row.id


def deliver(db: Database, settings: Settings, clock: MovableClock) -> None:
    kinds = {"messaging.send": handlers()["messaging.send"]}
    Worker(db, settings, clock=clock, kinds=kinds, schedules=[]).run_until_idle()


def links(box: Mailbox) -> list[str]:
    found = []
    for _, message in box.received:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        found += re.findall(r"https://crm\.shop\.example/survey/([\w-]+)", body.get_content())
    return found


def test_a_resolved_conversation_gets_a_csat_survey_by_email_and_the_answer_lands(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    clock = MovableClock(T0 + timedelta(minutes=5))
    profile = customer(db, mail, "u-1", "ann@example.com")
    conversation_id = resolved_conversation(db, profile, at=T0)
    resolved_conversation(db, profile, at=T0, channel="chat")  # no chat session to post it in

    assert send_due_surveys(db, mail, now=clock()) == {"due": 1, "sent": 1}
    assert send_due_surveys(db, mail, now=clock())["due"] == 0  # once per resolution
    deliver(db, mail, clock)
    assert len(box.received) == 1
    recipients, message = box.received[0]
    assert recipients == ["ann@example.com"] and message["Subject"] == "How did we do?"
    [token] = links(box)
    with db.read() as session:
        row = session.scalar(select(SurveyResponse))
        assert row is not None and row.kind == "csat" and row.conversation_id == conversation_id
        assert token not in row.token_hash and len(row.token_hash) == 64  # only the hash is kept

    with LiveServer(mail, db, clock=clock) as live, httpx.Client(base_url=live.url) as http:
        page = http.get(f"/survey/{token}?score=2")
        assert page.status_code == 200
        assert 'value="2" checked' in page.text
        with db.read() as session:  # opening the page records nothing: link scanners open links
            assert session.scalar(select(SurveyResponse.answered_at)) is None
        assert http.get("/survey/forged-token").status_code == 404
        assert http.post("/survey/forged-token", data={"score": "5"}).status_code == 404

        off_scale = http.post(f"/survey/{token}", data={"score": "9"})
        assert off_scale.status_code == 400 and "Choose a score from 1 to 5" in off_scale.text

        answered = http.post(f"/survey/{token}", data={"score": "2", "comment": "Slow answer"})
        assert answered.status_code == 303 and http.get(answered.headers["location"]).status_code == 200
        clock.advance(minutes=1)
        changed = http.post(f"/survey/{token}", data={"score": "4", "comment": "Sorted in the end"})
        assert changed.status_code == 303

        with db.read() as session:
            row = session.scalar(select(SurveyResponse))
            assert row is not None and row.score == 4 and row.comment == "Sorted in the end"

        events = {
            e["event"]: e
            for e in timeline_page(db, profile)["events"]
            if (e["event"] or "").startswith("Survey")
        }
        assert events["Survey Answered"]["properties"]["survey"] == "csat"
        assert events["Survey Answered"]["properties"]["score"] == 2
        assert events["Survey Answered"]["properties"]["comment"] == "Slow answer"
        assert events["Survey Answer Changed"]["properties"]["score"] == 4
        assert events["Survey Answer Changed"]["properties"]["previous_score"] == 2

        token_header = {"Authorization": f"Bearer {make_token(db)}"}
        listed = http.get(f"/api/v1/profiles/{profile}/surveys", headers=token_header).json()
        assert [(s["kind"], s["score"]) for s in listed["surveys"]] == [("csat", 4)]


def test_ces_is_asked_with_csat_when_the_workspace_wants_it(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    clock = MovableClock(T0 + timedelta(minutes=5))
    with_ces = mail.model_copy(update={"survey_ces": True})
    profile = customer(db, mail, "u-2", "bo@example.com")
    resolved_conversation(db, profile, at=T0)
    send_due_surveys(db, with_ces, now=clock())
    deliver(db, with_ces, clock)
    assert len(box.received) == 1 and len(links(box)) == 2
    with db.read() as session:
        assert sorted(session.scalars(select(SurveyResponse.kind))) == ["ces", "csat"]
    with LiveServer(with_ces, db, clock=clock) as live, httpx.Client(base_url=live.url) as http:
        kinds = {}
        for token in links(box):
            page = http.get(f"/survey/{token}")
            kinds[token] = "1 = very difficult, 7 = very easy" in page.text
        ces = next(t for t, is_ces in kinds.items() if is_ces)
        assert http.post(f"/survey/{ces}", data={"score": "7"}).status_code == 303
    event = next(e for e in timeline_page(db, profile)["events"] if e["event"] == "Survey Answered")
    assert event["properties"]["survey"] == "ces" and event["properties"]["score"] == 7


def test_nps_goes_on_its_schedule_to_customers_the_desk_served(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    clock = MovableClock(T0)
    served = customer(db, mail, "u-3", "cy@example.com")
    customer(db, mail, "u-4", "di@example.com")  # never talked to the desk
    resolved_conversation(db, served, at=T0 - timedelta(days=10))
    settings = mail.model_copy(update={"nps_every_days": 30})

    assert send_nps_surveys(db, settings, now=clock()) == {"customers": 1, "sent": 1}
    assert send_nps_surveys(db, settings, now=clock() + timedelta(days=1))["sent"] == 0  # asked already
    deliver(db, settings, clock)
    assert [r for r, _ in box.received] == [["cy@example.com"]]
    assert "recommend us" in box.received[0][1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    # Once the period has passed, and with a new conversation in it, they are asked again.
    later = clock() + timedelta(days=31)
    resolved_conversation(db, served, at=later - timedelta(days=1))
    assert send_nps_surveys(db, settings, now=later)["sent"] == 1
    assert send_nps_surveys(db, settings.model_copy(update={"nps_every_days": 0}), now=later) == {"sent": 0}
