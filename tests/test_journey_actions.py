"""Journey actions beyond email: an SMS through the provider webhook (a real local HTTP server), refused
without consent as messaging decides; loyalty points in the ledger with a reason naming the journey,
once however often the step is run. Real SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.factories import SYSTEM
from tests.test_destinations import Clock, Receiver, destination, receiver, run_worker, verify
from tests.test_journeys import MovableClock, customer, enrollments, run, track
from tests.test_provider_webhooks import Provider, grant, provider, with_provider
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.journeys import create_journey, set_status
from threadline.journeys.actions import perform
from threadline.loyalty import loyalty_view
from threadline.storage import Database
from threadline.storage.models import JourneyStepLog, LoyaltyEntry, OutboundMessage

__all__ = ["provider", "receiver"]  # fixtures, shared with the provider webhook and destinations tests
T0 = datetime(2026, 3, 1, 9, 0)
THANKS = {
    "key": "thanks-sms",
    "type": "send_message",
    "channel": "sms",
    "body_text": "Thanks for your order, {{ traits.first_name }}!",
}
POINTS = {"key": "bonus", "type": "add_loyalty_points", "points": 50, "reason": "first order bonus"}


def thank_you(db: Database, clock: MovableClock) -> int:
    journey = create_journey(
        db,
        SYSTEM,
        name="Order thanks",
        trigger={"type": "event", "event": "Order Completed"},
        steps=[THANKS, POINTS],
        now=clock(),
    )
    set_status(db, SYSTEM, journey.id, "active", now=clock())
    return journey.id


def test_an_sms_step_reaches_the_provider_only_with_consent_and_points_land_in_the_ledger(
    db: Database, settings: Settings, provider: tuple[Provider, int]
) -> None:
    box, port = provider
    sms = with_provider(settings, port)
    clock = MovableClock(T0)
    journey_id = thank_you(db, clock)
    ann = customer(db, sms, "ann", phone="+447700900123", first_name="Ann")
    bob = customer(db, sms, "bob", phone="+447700900456", first_name="Bob")
    grant(db, ann, "marketing", "sms")
    for user_id in ("ann", "bob"):
        track(db, sms, user_id, "Order Completed", T0 + timedelta(minutes=1), total=20)
    clock.advance(minutes=2)
    run(db, sms, clock)

    assert [json.loads(body)["to"] for _, body in box.posts] == ["+447700900123"]
    assert json.loads(box.posts[0][1])["text"].startswith("Thanks for your order, Ann!")
    with db.read() as session:
        sent = {
            m.profile_id: (m.channel, m.status, m.origin) for m in session.scalars(select(OutboundMessage))
        }
        outcomes = {
            (log.enrollment_id, log.step_key): log.outcome for log in session.scalars(select(JourneyStepLog))
        }
    assert sent == {ann: ("sms", "sent", "journey"), bob: ("sms", "refused", "journey")}
    by_profile = {e.profile_id: e for e in enrollments(db, journey_id=journey_id)}
    assert outcomes[(by_profile[bob].id, "thanks-sms")] == "refused"
    assert {e.status for e in by_profile.values()} == {"completed"}

    for profile_id in (ann, bob):
        view = loyalty_view(db, profile_id, viewer=SYSTEM, now=clock())
        assert view["points"] == 50
    with db.read() as session:
        reasons = session.scalars(select(LoyaltyEntry.reason).where(LoyaltyEntry.profile_id == ann)).all()
    assert len(reasons) == 1 and reasons[0].startswith("Journey Order thanks: first order bonus")


def test_points_are_added_once_when_the_step_runs_again(db: Database, settings: Settings) -> None:
    clock = MovableClock(T0)
    cy = customer(db, settings, "cy", email="cy@example.com")
    journey: dict[str, Any] = {"id": 1, "name": "Goodwill", "purpose": "service"}
    for _ in range(2):  # a worker that died after the points but before the step log: the re-run
        perform(db, settings, journey=journey, enrollment_id=7, profile_id=cy, step=POINTS, now=clock())
    with db.read() as session:
        lines = session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.profile_id == cy)).all()
    assert [(line.kind, line.points) for line in lines] == [("adjust", 50)]


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"key": "a", "type": "send_message", "channel": "fax", "body_text": "x"}, "steps[0].channel"),
        ({"key": "a", "type": "send_message", "channel": "sms"}, "steps[0].body_text"),
        ({"key": "a", "type": "send_message", "channel": "email", "body_text": "x"}, "steps[0].subject"),
        ({"key": "a", "type": "add_loyalty_points", "points": 0}, "steps[0].points"),
        ({"key": "a", "type": "add_loyalty_points", "points": "50"}, "steps[0].points"),
        ({"key": "a", "type": "webhook"}, "steps[0].destination"),
        ({"key": "a", "type": "webhook", "destination": 1, "properties": [1]}, "steps[0].properties"),
    ],
)
def test_action_steps_are_checked_naming_the_field(db: Database, step: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as raised:
        create_journey(db, SYSTEM, name="x", trigger={"type": "event", "event": "E"}, steps=[step], now=T0)
    assert raised.value.details == {"field": field}


def test_a_webhook_step_posts_one_signed_payload_per_customer_once(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    """Through a destination (its signing and retries); a re-run of the step after a crash queues
    nothing more, and a deleted destination is the step's outcome, not a crash."""
    import time

    destination_id, secret = destination(db, receiver.url(), events="none", segments="none")
    dee = customer(db, settings, "dee", email="dee@example.com")
    journey: dict[str, Any] = {"id": 3, "name": "Hand over to ERP", "purpose": "service"}
    step = {"key": "erp", "type": "webhook", "destination": destination_id, "properties": {"list": "vip"}}
    now = utcnow()
    for _ in range(2):
        outcome = perform(db, settings, journey=journey, enrollment_id=9, profile_id=dee, step=step, now=now)
        assert outcome == "queued"
    run_worker(db, settings, Clock())
    [(_, headers, body)] = receiver.posts
    assert verify(secret, headers, body, now=time.time())
    sent = json.loads(body)
    assert (sent["type"], sent["journey"], sent["step"], sent["profile_id"]) == (
        "journey_step", "Hand over to ERP", "erp", dee,
    )  # fmt: skip
    assert sent["properties"] == {"list": "vip"} and sent["messageId"]
    gone = {**step, "destination": destination_id + 100}
    assert perform(db, settings, journey=journey, enrollment_id=10, profile_id=dee, step=gone, now=now) == (
        "no such destination"
    )
