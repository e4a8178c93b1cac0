"""Journeys end to end: the abandoned cart with a real SMTP server (aiosmtpd) and a movable clock, exactly
one email across a crash, the whitepaper follow-up task, re-entry rules, entry by segment. Real SQLite
and PostgreSQL."""

from __future__ import annotations

import email
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import func, select

import threadline.journeys.runner as runner
from tests.conftest import free_port
from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send, timeline_page
from tests.test_web_pages import sign_in
from threadline.accounts import create_user
from threadline.config import Settings
from threadline.jobs import Worker, handlers
from threadline.journeys import create_from_template, create_journey, journey_stats, run_journeys, set_status
from threadline.privacy import record_consent, statement
from threadline.profiles import assign_owner
from threadline.segments import create_segment, recompute
from threadline.storage import Database
from threadline.storage.models import JourneyEnrollment, JourneyStepLog, OutboundMessage, Task

T0 = datetime(2026, 3, 1, 9, 0)
_SOURCES = itertools.count()
CART = [{"name": "Blue Mug", "quantity": 2}, {"name": "Tea Towel", "quantity": 1}]


class MovableClock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Mailbox:
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for rcpt, message in self.received if address in rcpt]


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
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox[1],
            "smtp_starttls": False,
            "mail_from": "Shop <news@shop.example>",
            "public_url": "https://crm.shop.example",
        }
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


def customer(db: Database, settings: Settings, user_id: str, **traits: Any) -> str:
    send(
        db,
        settings,
        make_source(db, f"src-{user_id}"),
        {"type": "identify", "userId": user_id, "traits": traits, "timestamp": "2026-02-01T09:00:00Z"},
    )
    return lookup_profile(db, "user_id", user_id)


def track(db: Database, settings: Settings, user_id: str, name: str, at: datetime, **properties: Any) -> None:
    message = {"type": "track", "userId": user_id, "event": name, "timestamp": at.isoformat() + "Z"}
    send(db, settings, make_source(db, f"shop-{next(_SOURCES)}"), {**message, "properties": properties})


def consent(db: Database, profile_id: str, status: str, at: datetime) -> None:
    record_consent(
        db,
        SYSTEM,
        profile_id,
        [statement("marketing", "email", status)],
        source="test",
        now=at,
        recorded_at=at,
    )


def worker(db: Database, settings: Settings, clock: MovableClock) -> Worker:
    kinds = {
        kind: handler for kind, handler in handlers().items() if kind in ("journeys.run", "messaging.send")
    }
    return Worker(db, settings, clock=clock, kinds=kinds, schedules=[])


def run(db: Database, settings: Settings, clock: MovableClock) -> None:
    """One tick of the journeys job, then every email it asked for, through the worker."""
    from threadline.jobs import enqueue

    enqueue(db, "journeys.run", now=clock())
    worker(db, settings, clock).run_until_idle()


def enrollments(db: Database, **where: Any) -> list[JourneyEnrollment]:
    with db.read() as session:
        query = select(JourneyEnrollment).order_by(JourneyEnrollment.id)
        for name, value in where.items():
            query = query.where(getattr(JourneyEnrollment, name) == value)
        return list(session.scalars(query))


def abandoned_cart(db: Database, clock: MovableClock) -> int:
    journey = create_from_template(db, SYSTEM, "abandoned_cart", now=clock())
    set_status(db, SYSTEM, journey.id, "active", now=clock())
    return journey.id


def test_abandoned_cart_mails_only_who_left_the_cart_and_may_be_mailed(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    journey_id = abandoned_cart(db, clock)
    alice = customer(db, mail, "alice", email="alice@example.com", first_name="Alice")
    bob = customer(db, mail, "bob", email="bob@example.com", first_name="Bob")
    carol = customer(db, mail, "carol", email="carol@example.com", first_name="Carol")
    for profile_id in (alice, bob, carol):
        consent(db, profile_id, "granted", T0)
    for user_id in ("alice", "bob", "carol"):
        track(db, mail, user_id, "Checkout Started", T0 + timedelta(minutes=1), products=CART)

    clock.advance(minutes=2)
    run(db, mail, clock)
    assert len(enrollments(db, journey_id=journey_id, status="active")) == 3
    assert box.received == []  # the wait has not passed

    track(db, mail, "bob", "Order Completed", T0 + timedelta(minutes=20), total=30)
    consent(db, carol, "withdrawn", T0 + timedelta(minutes=25))
    clock.advance(minutes=40)
    run(db, mail, clock)
    assert box.received == []

    clock.advance(minutes=25)  # past the hour after the checkout
    run(db, mail, clock)
    assert [rcpt for rcpt, _ in box.received] == [["alice@example.com"]]
    body = box.to("alice@example.com")[0].get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Hello Alice" in text and "- Blue Mug x 2" in text and "- Tea Towel x 1" in text

    by_profile = {e.profile_id: e for e in enrollments(db, journey_id=journey_id)}
    assert (by_profile[alice].status, by_profile[bob].status, by_profile[bob].outcome) == (
        "completed",
        "exited",
        "converted",
    )
    with db.read() as session:
        carols = session.scalars(select(OutboundMessage).where(OutboundMessage.profile_id == carol)).all()
        assert [m.status for m in carols] == ["refused"]
        logged = session.scalar(
            select(JourneyStepLog.outbound_message_id).where(
                JourneyStepLog.enrollment_id == by_profile[alice].id, JourneyStepLog.step_key == "cart-email"
            )
        )
    assert logged is not None
    stats = journey_stats(db, [journey_id])[journey_id]
    assert (stats["enrolled"], stats["converted"], stats["done_step"]["cart-email"]) == (3, 1, 2)

    clock.advance(days=1)
    run(db, mail, clock)
    assert len(box.received) == 1


def test_a_crash_around_the_send_never_mails_twice(
    db: Database,
    mail: Settings,
    mailbox: tuple[Mailbox, int],
    clock: MovableClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    box, _ = mailbox
    abandoned_cart(db, clock)
    for user_id in ("alice", "dave"):
        profile_id = customer(db, mail, user_id, email=f"{user_id}@example.com")
        consent(db, profile_id, "granted", T0)
        track(db, mail, user_id, "Checkout Started", T0 + timedelta(minutes=1), products=CART)
    clock.advance(hours=2)

    real_record, real_send = runner.record_step, runner.send_message
    crashes: list[str] = []

    def dies_before_commit(*args: Any, **kwargs: Any) -> None:
        real_record(*args, **kwargs)  # the step is written in the send's transaction, not yet committed
        if args[3] == 1 and not crashes:
            crashes.append("before commit")
            raise RuntimeError("worker killed")

    monkeypatch.setattr(runner, "record_step", dies_before_commit)
    with pytest.raises(RuntimeError):
        run_journeys(db, mail, now=clock())
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 0  # rolled back together
    monkeypatch.setattr(runner, "record_step", real_record)

    def dies_after_commit(*args: Any, **kwargs: Any) -> Any:
        real_send(*args, **kwargs)  # the message and its step commit
        raise RuntimeError("worker killed after the send was asked for")

    monkeypatch.setattr(runner, "send_message", dies_after_commit)
    clock.advance(minutes=6)  # past the claim's lease
    with pytest.raises(RuntimeError):
        run_journeys(db, mail, now=clock())
    monkeypatch.setattr(runner, "send_message", real_send)

    for _ in range(3):  # restarts, leases running out
        clock.advance(minutes=6)
        run(db, mail, clock)
    assert sorted(rcpt[0] for rcpt, _ in box.received) == ["alice@example.com", "dave@example.com"]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 2
        assert session.scalar(select(func.count()).select_from(JourneyStepLog)) == 4
    assert {e.status for e in enrollments(db)} == {"completed"}


def test_whitepaper_follow_up_creates_a_task_for_the_owner_after_seven_days(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    owner = create_user(db, "owner@example.com", "agent", "correct horse battery", now=T0)
    journey = create_from_template(db, SYSTEM, "whitepaper_follow_up", now=clock())
    set_status(db, SYSTEM, journey.id, "active", now=clock())
    erin = customer(db, settings, "erin", email="erin@example.com")
    assign_owner(db, SYSTEM, [erin], owner.id)
    track(db, settings, "erin", "Whitepaper Downloaded", T0 + timedelta(minutes=5), title="CDP guide")

    clock.advance(days=6, hours=23)
    run(db, settings, clock)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 0
    clock.advance(hours=1, minutes=10)  # seven days after the download
    run(db, settings, clock)
    with db.read() as session:
        tasks = session.scalars(select(Task)).all()
    assert [(t.assignee_id, t.related_type, t.related_id) for t in tasks] == [(owner.id, "profile", erin)]
    names = [e["event"] for e in timeline_page(db, erin)["events"]]
    assert "Follow-up Task Created" in names


def _tagging(db: Database, clock: MovableClock, **rule: Any) -> int:
    journey = create_journey(
        db,
        SYSTEM,
        name=f"Tag {rule}",
        trigger={"type": "event", "event": "Signed Up", "where": {"plan": "pro"}},
        steps=[{"key": "tag", "type": "add_tag", "tag": "pro signup"}],
        now=clock(),
        **rule,
    )
    set_status(db, SYSTEM, journey.id, "active", now=clock())
    return journey.id


def test_reentry_rules_and_property_filters(db: Database, settings: Settings, clock: MovableClock) -> None:
    once = _tagging(db, clock, reentry="once")
    daily = _tagging(db, clock, reentry="every", reentry_days=1)
    frank = customer(db, settings, "frank", email="frank@example.com")
    track(db, settings, "frank", "Signed Up", T0 + timedelta(minutes=1), plan="free")  # filtered out
    for hours in (0.1, 2, 25):
        track(db, settings, "frank", "Signed Up", T0 + timedelta(hours=hours), plan="pro")
        clock.now = T0 + timedelta(hours=hours, minutes=1)
        run(db, settings, clock)
    assert len(enrollments(db, journey_id=once)) == 1
    assert len(enrollments(db, journey_id=daily)) == 2  # the 2-hour one came within the day
    assert {e.status for e in enrollments(db)} == {"completed"}
    with db.read() as session:
        from threadline.storage.models import Profile

        profile = session.get(Profile, frank)
        assert profile is not None and "pro signup" in profile.tags


def test_entering_a_segment_enrols(db: Database, settings: Settings, clock: MovableClock) -> None:
    gina = customer(db, settings, "gina", email="gina@example.com", plan="pro")
    customer(db, settings, "hal", email="hal@example.com", plan="free")
    pro = create_segment(
        db,
        SYSTEM,
        name="Pro",
        definition={"type": "trait", "key": "plan", "op": "eq", "value": "pro"},
        now=T0,
    )
    journey = create_journey(
        db,
        SYSTEM,
        name="Pro welcome",
        trigger={"type": "segment", "segment_id": pro.id},
        steps=[{"key": "note", "type": "record_event", "event": "Pro Welcome Noted"}],
        now=clock(),
    )
    set_status(db, SYSTEM, journey.id, "active", now=clock())
    clock.advance(minutes=1)
    recompute(db, pro.id, now=clock(), settings=settings)
    run(db, settings, clock)
    assert [(e.profile_id, e.status) for e in enrollments(db, journey_id=journey.id)] == [(gina, "completed")]
    assert "Pro Welcome Noted" in [e["event"] for e in timeline_page(db, gina)["events"]]


def test_rest_creates_from_a_template_and_the_page_shows_the_figures(
    db: Database, http: httpx.Client
) -> None:
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'agent@example.com', 'agent')}"}
    assert "abandoned_cart" in http.get("/api/v1/journeys/templates", headers=agent).json()["templates"]
    assert (
        http.post("/api/v1/journeys", json={"template": "abandoned_cart"}, headers=agent).status_code == 403
    )
    created = http.post("/api/v1/journeys", json={"template": "abandoned_cart"}, headers=admin)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    journey_id = created.json()["id"]
    bad = http.post(
        "/api/v1/journeys", json={"name": "x", "trigger": {"type": "nope"}, "steps": []}, headers=admin
    )
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "trigger.type"
    active = http.post(f"/api/v1/journeys/{journey_id}/activate", headers=admin).json()
    assert active["status"] == "active" and active["stats"]["enrolled"] == 0
    listed = http.get("/api/v1/journeys", headers=agent).json()["journeys"]
    assert [j["name"] for j in listed] == ["Abandoned cart"]
    assert http.post(f"/api/v1/journeys/{journey_id}/pause", headers=admin).json()["status"] == "paused"

    sign_in(http)
    page = http.get("/journeys")
    assert page.status_code == 200
    assert (
        'href="/journeys"' in page.text
        and "Abandoned cart" in page.text
        and 'data-step="cart-email"' in page.text
    )
    assert "<script>" not in page.text
