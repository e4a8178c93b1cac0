"""The weakest link: two bad experiences within 90 days (a low CSAT, an NPS detractor, an SLA breach, a
negative message) flag a customer at risk and give their owner a recovery task; one does not, nor two
91 days apart. The flag shows on the 360 page and in the customer list. Real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from tests.factories import SYSTEM, lookup_profile, make_source, send, timeline_page
from tests.test_web_pages import sign_in
from threadline.accounts import create_user, user_by_email
from threadline.config import Settings
from threadline.jobs import Worker, handlers
from threadline.profiles import assign_owner
from threadline.service import (
    answer_survey,
    check_slas,
    create_policy,
    evaluate_all,
    evaluate_customer,
    set_thresholds,
)
from threadline.service.surveys import token_hash
from threadline.storage import Database
from threadline.storage.models import Conversation, Event, EventSentiment, ProfileScore, SurveyResponse

T0 = datetime(2026, 3, 3, 9, 0)


def customer(db: Database, settings: Settings, user_id: str) -> str:
    source = make_source(db, f"shop-{user_id}")
    identify = {"type": "identify", "userId": user_id, "traits": {"email": f"{user_id}@example.com"}}
    send(db, settings, source, {**identify, "timestamp": "2026-01-01T00:00:00Z"})
    return lookup_profile(db, "user_id", user_id)


def answered(db: Database, settings: Settings, profile_id: str, kind: str, score: int, at: datetime) -> None:
    token = f"token-{profile_id}-{kind}-{at:%Y%m%d%H%M}"
    with db.write() as session:
        session.add(
            SurveyResponse(
                profile_id=profile_id, kind=kind, channel="email", token_hash=token_hash(token), sent_at=at
            )
        )
    answer_survey(db, settings, token, score=score, comment=None, now=at)


def breached(db: Database, settings: Settings, profile_id: str, at: datetime) -> None:
    create_policy(db, {"name": f"P {at}", "first_response_minutes": 10, "resolution_minutes": 60})
    with db.write() as session:
        session.add(
            Conversation(
                profile_id=profile_id,
                channel="email",
                status="open",
                priority="normal",
                tags=[],
                created_at=at,
                updated_at=at,
                last_message_at=at,
                reopened=0,
                sla_state="ok",
            )
        )
    check_slas(db, settings, now=at)
    check_slas(db, settings, now=at + timedelta(minutes=11))


def flag(db: Database, profile_id: str) -> ProfileScore | None:
    with db.read() as session:
        row = session.get(ProfileScore, (profile_id, "at_risk"))
        if row is not None:
            session.expunge(row)
        return row


def run_evaluations(db: Database, settings: Settings, at: datetime) -> None:
    kinds = {"service.weakest-link": handlers()["service.weakest-link"]}
    Worker(db, settings, clock=lambda: at, kinds=kinds, schedules=[]).run_until_idle()


def recovery_events(db: Database, profile_id: str) -> list[dict[str, object]]:
    return [e for e in timeline_page(db, profile_id)["events"] if e["event"] == "Recovery Task Created"]


def test_the_second_bad_experience_flags_the_customer_and_tasks_their_owner(
    db: Database, settings: Settings
) -> None:
    owner = create_user(db, "owner@example.com", "agent", "correct horse battery", now=T0)
    profile = customer(db, settings, "u-1")
    assign_owner(db, SYSTEM, [profile], owner.id)

    answered(db, settings, profile, "csat", 2, T0)
    run_evaluations(db, settings, T0)  # the answer queued an evaluation of this customer
    assert flag(db, profile) is None and recovery_events(db, profile) == []

    breached(db, settings, profile, T0 + timedelta(days=30))  # the breach queued one too
    run_evaluations(db, settings, T0 + timedelta(days=30, minutes=11))
    raised = flag(db, profile)
    assert raised is not None and raised.value == 2
    assert [e["kind"] for e in raised.details["experiences"]] == ["csat", "sla_breach"]
    [task] = raised.details["recovery_tasks"]
    assert task["owner_id"] == owner.id
    [event] = recovery_events(db, profile)
    assert event["properties"]["owner_id"] == owner.id  # type: ignore[index]

    # Evaluating again changes nothing: one flag, one task.
    assert evaluate_customer(db, settings, profile, now=T0 + timedelta(days=31))
    assert evaluate_all(db, settings, now=T0 + timedelta(days=31)) == {"customers": 1, "at_risk": 1}
    again = flag(db, profile)
    assert again is not None and len(again.details["recovery_tasks"]) == 1
    assert len(recovery_events(db, profile)) == 1

    # 91 days after the first experience, one is left in the window: the flag goes.
    assert evaluate_all(db, settings, now=T0 + timedelta(days=91)) == {"customers": 1, "at_risk": 0}
    assert flag(db, profile) is None


def test_two_experiences_91_days_apart_do_not_flag(db: Database, settings: Settings) -> None:
    profile = customer(db, settings, "u-2")
    answered(db, settings, profile, "nps", 3, T0)
    answered(db, settings, profile, "csat", 1, T0 + timedelta(days=91))
    assert not evaluate_customer(db, settings, profile, now=T0 + timedelta(days=91))
    # Good answers are no bad experiences.
    answered(db, settings, profile, "csat", 4, T0 + timedelta(days=92))
    answered(db, settings, profile, "nps", 7, T0 + timedelta(days=92))
    assert not evaluate_customer(db, settings, profile, now=T0 + timedelta(days=92))


def test_a_negative_message_and_a_detractor_flag_and_thresholds_are_the_workspaces(
    db: Database, settings: Settings
) -> None:
    profile = customer(db, settings, "u-3")
    message = {"type": "track", "userId": "u-3", "event": "Message Received", "properties": {"text": "Awful"}}
    send(db, settings, make_source(db, "chat", "chat"), {**message, "timestamp": "2026-03-01T10:00:00Z"})
    with db.write() as session:
        event_id = session.scalar(select(Event.id).where(Event.name == "Message Received"))
        assert event_id is not None
        session.add(
            EventSentiment(
                event_id=event_id,
                profile_id=profile,
                channel="chat",
                language="en",
                score=-0.8,
                label="negative",
                scored_at=T0,
            )
        )
    answered(db, settings, profile, "nps", 6, T0)
    set_thresholds(db, {"experiences": 3}, user_id=None, now=T0)
    assert not evaluate_customer(db, settings, profile, now=T0)
    set_thresholds(db, {"experiences": 2}, user_id=None, now=T0)
    assert evaluate_customer(db, settings, profile, now=T0)
    raised = flag(db, profile)
    assert raised is not None
    assert sorted(e["kind"] for e in raised.details["experiences"]) == ["negative_message", "nps_detractor"]
    # Without an owner, the task is recorded unassigned.
    assert raised.details["recovery_tasks"][0]["owner_id"] is None


def test_the_flag_shows_on_the_360_page_and_in_the_list(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    create_user(db, "admin@example.com", "admin", "correct horse battery", now=T0)
    at_risk = customer(db, settings, "u-risk")
    calm = customer(db, settings, "u-calm")
    now = datetime.now().replace(microsecond=0) - timedelta(days=1)
    answered(db, settings, at_risk, "csat", 1, now)
    answered(db, settings, at_risk, "nps", 0, now)
    evaluate_customer(db, settings, at_risk, now=now)
    sign_in(http)
    panel = http.get(f"/customers/{at_risk}/service", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and 'data-at-risk="1"' in panel.text
    assert 'data-experience="csat"' in panel.text and 'data-survey="nps"' in panel.text
    assert 'data-at-risk="0"' in http.get(f"/customers/{calm}/service", headers={"HX-Request": "true"}).text
    assert http.get(f"/customers/{at_risk}").text.count('hx-get="/customers/' + at_risk + '/service"') == 1
    listing = http.get("/customers").text
    assert listing.count("data-at-risk") == 1
    assert user_by_email(db, "admin@example.com") is not None
