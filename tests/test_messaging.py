"""Messaging end to end: consent decides, a real SMTP server (aiosmtpd) receives, the worker's job sends
at most once, the unsubscribe link in the received mail works, the timeline tells, the REST API and the
360 panel stay within the data scope. Real SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

import email
import re
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
from sqlalchemy import func, select, update

from tests.conftest import LiveServer, free_port
from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send, timeline_page
from threadline.accounts import viewer_for
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid
from threadline.jobs import Worker, handlers, list_jobs
from threadline.messaging import (
    FAILED,
    JOB_KIND,
    QUEUED,
    REFUSED,
    SENDING_DISABLED,
    SENT,
    InvalidTemplate,
    delivery_log,
    send_message,
)
from threadline.privacy import consent_state, erase_person, record_consent, search_audit, statement
from threadline.profiles import assign_owner
from threadline.storage import Database
from threadline.storage.models import Event, OutboundMessage, ProcessingRestriction, User

T0 = datetime(2026, 3, 1, 9, 0)


class MovableClock:
    def __init__(self, at: datetime) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Mailbox:
    """What the SMTP server received; `refuse` answers the next RCPTs or DATAs with a code."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    defer_data: int = 0  # answer this many DATAs with 451
    refuse_rcpt: bool = False

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        if self.defer_data:
            self.defer_data -= 1
            return "451 4.3.0 try again later"
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


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


def with_relay(settings: Settings, port: int, public_url: str = "https://crm.shop.example") -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "mail_from": "Shop <news@shop.example>",
            "public_url": public_url,
        }
    )


@pytest.fixture
def mail(settings: Settings, mailbox: tuple[Mailbox, int]) -> Settings:
    return with_relay(settings, mailbox[1])


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


def customer(db: Database, settings: Settings, user_id: str, **traits: str) -> str:
    send(
        db,
        settings,
        make_source(db, f"src-{user_id}"),
        {"type": "identify", "userId": user_id, "traits": traits, "timestamp": "2026-02-01T09:00:00Z"},
    )
    return lookup_profile(db, "user_id", user_id)


def say(db: Database, profile_id: str, at: datetime, purpose: str, channel: str, status: str) -> None:
    record_consent(
        db, SYSTEM, profile_id, [statement(purpose, channel, status)], source="test", now=at, recorded_at=at
    )


def ask(db: Database, settings: Settings, profile_id: str, purpose: str = "marketing", **kw: Any) -> int:
    message = send_message(
        db,
        settings,
        SYSTEM,
        profile_id,
        purpose=purpose,
        subject=kw.pop("subject", "你好 {{ traits.first_name }}"),
        body_text=kw.pop("body_text", "亲爱的 {{ traits.first_name }}，新品上市。"),
        now=kw.pop("now", T0),
        **kw,
    )
    return message.id


def row(db: Database, message_id: int) -> OutboundMessage:
    with db.read() as session:
        found = session.get(OutboundMessage, message_id)
        assert found is not None
        session.expunge(found)
        return found


def run_worker(db: Database, settings: Settings, clock: MovableClock) -> list[str]:
    worker = Worker(db, settings, clock=clock, kinds={JOB_KIND: handlers()[JOB_KIND]}, schedules=[])
    return [outcome.status for outcome in worker.run_until_idle()]


def timeline_events(db: Database, profile_id: str) -> list[dict[str, Any]]:
    return [e for e in timeline_page(db, profile_id)["events"] if e["source"] == "Threadline messaging"]


def test_a_granted_marketing_email_is_sent_once_with_its_headers(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="安")
    say(db, ann, T0 - timedelta(days=1), "marketing", "email", "granted")
    message_id = ask(db, mail, ann)
    assert row(db, message_id).status == QUEUED

    assert run_worker(db, mail, clock) == ["done"]
    sent = row(db, message_id)
    assert sent.status == SENT and sent.sent_at == T0 and sent.attempts == 1
    assert len(box.received) == 1
    recipients, received = box.received[0]
    assert recipients == ["ann@example.com"]
    assert received["Subject"] == "你好 安"  # RFC 2047-encoded on the wire, decoded right
    assert received["Message-ID"] == sent.message_id_header
    assert received["From"] == "Shop <news@shop.example>"
    link = received["List-Unsubscribe"].strip("<>")
    assert link.startswith("https://crm.shop.example/unsubscribe/")
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert text is not None and html is not None
    assert "亲爱的 安，新品上市。" in text.get_content() and link in text.get_content()
    assert "亲爱的 安，新品上市。" in html.get_content() and link in html.get_content()

    events = timeline_events(db, ann)
    assert [(e["event"], e["channel"]) for e in events] == [("Email Sent", "email")]
    assert events[0]["properties"]["outbound_message_id"] == message_id
    assert events[0]["properties"]["purpose"] == "marketing"
    assert events[0]["properties"]["subject"] == "你好 安"

    # The job run again (a retry after a crash once it had sent): nothing goes out twice.
    assert handlers()[JOB_KIND](db, mail, {"message_id": message_id}, clock) == {"sent": 1}
    assert len(box.received) == 1
    assert len(timeline_events(db, ann)) == 1


def test_a_send_interrupted_mid_conversation_is_not_sent_again(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    message_id = ask(db, mail, ann, "service")
    # A worker that died while the relay had the message leaves it `sending`, its job to run again.
    with db.write() as session:
        session.execute(
            update(OutboundMessage)
            .where(OutboundMessage.id == message_id)
            .values(status="sending", attempts=1)
        )
    assert handlers()[JOB_KIND](db, mail, {"message_id": message_id}, clock) == {"failed": 1}
    failed = row(db, message_id)
    assert failed.status == FAILED and "may have gone out" in (failed.reason or "")
    assert box.received == []
    assert [e["event"] for e in timeline_events(db, ann)] == ["Email Failed"]


def test_without_consent_the_message_is_refused_and_nothing_reaches_the_relay(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    message_id = ask(db, mail, ann, "marketing")
    refused = row(db, message_id)
    assert refused.status == REFUSED and refused.reason == "the customer never granted marketing"
    assert list_jobs(db, kind="messaging.send") == []  # nothing to send, so no job
    assert run_worker(db, mail, clock) == []
    assert box.received == []
    events = timeline_events(db, ann)
    assert [(e["event"], e["channel"]) for e in events] == [("Message Refused", "email")]
    assert events[0]["properties"]["reason"] == "the customer never granted marketing"


def test_consent_withdrawn_after_queueing_refuses_at_send_time(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    say(db, ann, T0 - timedelta(days=1), "marketing", "email", "granted")
    message_id = ask(db, mail, ann)
    assert row(db, message_id).status == QUEUED
    say(db, ann, T0, "marketing", "all", "withdrawn")
    run_worker(db, mail, clock)
    refused = row(db, message_id)
    assert refused.status == REFUSED and "withdrawn" in (refused.reason or "")
    assert box.received == []
    assert [e["event"] for e in timeline_events(db, ann)] == ["Message Refused"]


def test_restricted_processing_refuses_even_with_consent(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    say(db, ann, T0 - timedelta(days=1), "marketing", "email", "granted")
    queued = ask(db, mail, ann)
    with db.write() as session:
        session.add(ProcessingRestriction(profile_id=ann, since=T0, request_id=None, set_by=None))
    refused_now = ask(db, mail, ann, "service")  # even a service message
    assert row(db, refused_now).status == REFUSED
    assert row(db, refused_now).reason == "the customer's processing is restricted"
    run_worker(db, mail, clock)  # the one queued before the restriction is refused at send time
    assert row(db, queued).status == REFUSED
    assert box.received == []


def test_a_service_message_needs_no_statement_and_has_no_footer(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    message_id = ask(
        db, mail, ann, "service", subject="Your order", body_text="It ships today, {{ traits.first_name }}."
    )
    run_worker(db, mail, clock)
    assert row(db, message_id).status == SENT
    _, received = box.received[0]
    text = received.get_body(("plain",))
    assert text is not None and "It ships today, Ann." in text.get_content()
    assert "unsubscribe" not in text.get_content().lower()
    assert received["List-Unsubscribe"]  # the header is on every message


def test_the_unsubscribe_link_in_the_received_mail_withdraws_consent(
    db: Database, settings: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, port = mailbox
    with LiveServer(settings, db) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        mail = with_relay(settings, port, public_url=live.url)
        ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
        say(db, ann, T0 - timedelta(days=1), "marketing", "email", "granted")
        ask(db, mail, ann)
        run_worker(db, mail, clock)
        _, received = box.received[0]
        link = received["List-Unsubscribe"].strip("<>")
        assert link.startswith(f"{live.url}/unsubscribe/")
        # What a mail client's unsubscribe button does (RFC 8058): no login, no cookie.
        answer = http.post(link, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200
    assert consent_state(db, ann, viewer=SYSTEM)["state"]["marketing"]["email"]["status"] == "withdrawn"
    again = ask(db, mail, ann)
    assert row(db, again).status == REFUSED and "withdrawn" in (row(db, again).reason or "")
    run_worker(db, mail, clock)
    assert len(box.received) == 1


def test_templates_and_fields_are_checked_naming_the_field(db: Database, mail: Settings) -> None:
    ann = customer(db, mail, "ann", email="ann@example.com")
    with pytest.raises(InvalidTemplate) as bad:
        ask(db, mail, ann, "service", subject="Hi", body_text="Hello {{ traits.first_name }}")
    assert bad.value.field == "body_text" and "first_name" in bad.value.reason
    assert ask(
        db, mail, ann, "service", subject="Hi", body_text="Hello {{ traits.first_name | default('there') }}"
    )
    with pytest.raises(InvalidTemplate) as bad:
        ask(db, mail, ann, "service", subject="Hi {{ traits.email ")
    assert bad.value.field == "subject"
    with pytest.raises(InvalidTemplate) as bad:
        ask(db, mail, ann, "service", subject="{{ ''.__class__.__mro__ }}")  # the sandbox
    assert bad.value.field == "subject"
    with pytest.raises(Invalid) as wrong:
        ask(db, mail, ann, "spam")
    assert wrong.value.details == {"field": "purpose"}
    with pytest.raises(Invalid) as wrong:
        ask(db, mail, ann, "service", channel="fax")
    assert wrong.value.details == {"field": "channel"}
    with pytest.raises(Invalid) as wrong:
        ask(db, mail, ann, "service", subject="Hi", body_text="  ")
    assert wrong.value.details == {"field": "body_text"}
    bob = customer(db, mail, "bob", first_name="Bob")  # no email at all
    with pytest.raises(Invalid) as wrong:
        ask(db, mail, bob, "service", subject="Hi", body_text="x")
    assert wrong.value.details == {"field": "channel"}
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 1


def test_with_sending_disabled_messages_stay_queued_saying_why(
    db: Database, settings: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    assert settings.smtp_host == ""
    ann = customer(db, settings, "ann", email="ann@example.com", first_name="Ann")
    message_id = ask(db, settings, ann, "service")
    assert (row(db, message_id).status, row(db, message_id).reason) == (QUEUED, SENDING_DISABLED)
    assert handlers()[JOB_KIND](db, settings, {"message_id": message_id}, clock) == {"disabled": 1}
    assert (row(db, message_id).status, row(db, message_id).reason) == (QUEUED, SENDING_DISABLED)
    assert box.received == []


def test_a_deferring_relay_is_tried_again_and_a_refusing_one_fails(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    box.defer_data = 1
    message_id = ask(db, mail, ann, "service")
    assert run_worker(db, mail, clock) == ["queued"]  # the job, again, after its backoff
    waiting = row(db, message_id)
    assert waiting.status == QUEUED and "451" in (waiting.reason or "") and waiting.attempts == 1
    clock.advance(seconds=mail.job_retry_seconds + 1)
    assert run_worker(db, mail, clock) == ["done"]
    assert row(db, message_id).status == SENT and row(db, message_id).attempts == 2
    assert len(box.received) == 1

    box.refuse_rcpt = True
    refused = ask(db, mail, ann, "service", now=clock())
    assert run_worker(db, mail, clock) == ["done"]
    failed = row(db, refused)
    assert failed.status == FAILED and "550" in (failed.reason or "")
    assert [e["event"] for e in timeline_events(db, ann)][:1] == ["Email Failed"]


def test_erasure_removes_the_messages(db: Database, mail: Settings, clock: MovableClock) -> None:
    ann = customer(db, mail, "ann", email="ann@example.com", first_name="Ann")
    ask(db, mail, ann, "service")
    erase_person(db, mail, ann, now=T0)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 0
    assert run_worker(db, mail, clock) == ["done"]  # its job finds nothing to send


# -- REST and the 360 panel, within data scopes ----------------------------------------------------------
class World:
    """Two agents with a customer each, and an analyst (as in test_scopes.py)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.tokens = {
            name: make_token(db, f"{name}@example.com", name.rstrip("12"))
            for name in ("admin", "agent1", "agent2", "analyst")
        }
        with db.read() as session:
            self.ids = {u.email.split("@")[0]: u.id for u in session.scalars(select(User))}
        self.customers = {
            n: customer(db, settings, f"c{n}", email=f"c{n}@example.com", first_name=f"C{n}") for n in (1, 2)
        }
        admin = viewer_for(db, self.ids["admin"], "admin")
        assign_owner(db, admin, [self.customers[1]], self.ids["agent1"])
        assign_owner(db, admin, [self.customers[2]], self.ids["agent2"])

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return World(db, settings)


def test_rest_sends_within_the_scope_and_lists_the_delivery_log(world: World, http: httpx.Client) -> None:
    mine, theirs = world.customers[1], world.customers[2]
    agent = world.bearer("agent1")
    body = {"purpose": "service", "subject": "Hi {{ traits.first_name }}", "body_text": "Your order ships."}
    created = http.post(f"/api/v1/profiles/{mine}/messages", json=body, headers=agent)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "queued" and created.json()["to_address"] == "c1@example.com"
    assert created.json()["subject"] == "Hi C1"

    refused = http.post(
        f"/api/v1/profiles/{mine}/messages", json={**body, "purpose": "marketing"}, headers=agent
    )
    assert refused.status_code == 201 and refused.json()["status"] == "refused" and refused.json()["refused"]
    assert refused.json()["reason"] == "the customer never granted marketing"

    bad = http.post(
        f"/api/v1/profiles/{mine}/messages",
        json={**body, "body_text": "{{ traits.nickname }}"},
        headers=agent,
    )
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "body_text"

    # Another agent's customer is not there for this agent: 404 for sending and reading alike.
    assert http.post(f"/api/v1/profiles/{theirs}/messages", json=body, headers=agent).status_code == 404
    assert http.get(f"/api/v1/profiles/{theirs}/messages", headers=agent).status_code == 404
    # Analysts read everything but change nothing, and see no personal data in clear.
    analyst = world.bearer("analyst")
    assert http.post(f"/api/v1/profiles/{mine}/messages", json=body, headers=analyst).status_code == 403
    seen = http.get(f"/api/v1/profiles/{mine}/messages", headers=analyst).json()["messages"]
    assert [m["status"] for m in seen] == ["refused", "queued"]
    assert seen[1]["to_address"] == "c***@example.com" and seen[1]["body_text"] is None

    log = http.get(f"/api/v1/profiles/{mine}/messages", headers=agent).json()
    assert log["profile_id"] == mine and log["messages"][1]["body_text"] == "Your order ships."

    audited = search_audit(world.db, user_email="agent1@example.com", action="message")
    assert {a.details["status"] for a in audited} == {"queued", "refused"}
    assert all("example.com" not in repr(a.details) and "ships" not in repr(a.details) for a in audited)
    assert search_audit(world.db, user_email="agent1@example.com", action="denied")


def sign_in(http: httpx.Client, email: str) -> str:
    form = http.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    http.post("/login", data={"email": email, "password": "correct horse battery", "csrf": csrf.group(1)})
    page_csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/customers").text)
    assert page_csrf
    return page_csrf.group(1)


def test_the_360_panel_shows_the_decisions_sends_and_lists(
    world: World, http: httpx.Client, settings: Settings
) -> None:
    mine, theirs = world.customers[1], world.customers[2]
    say(world.db, mine, T0, "marketing", "email", "granted")
    csrf = sign_in(http, "agent1@example.com")
    page = http.get(f"/customers/{mine}")
    assert f'hx-get="/customers/{mine}/messages"' in page.text

    htmx = {"HX-Request": "true"}
    panel = http.get(f"/customers/{mine}/messages", headers=htmx)
    assert panel.status_code == 200 and "Send an email" in panel.text
    assert "may be sent: the customer granted it" in panel.text
    assert "refused: the customer never granted it" in panel.text  # analytics, personalisation

    sent = http.post(
        f"/customers/{mine}/messages",
        data={
            "csrf": csrf,
            "purpose": "marketing",
            "subject": "News for {{ traits.first_name }}",
            "body_text": "Hi",
        },
        headers=htmx,
    )
    assert sent.status_code == 200 and "The email is queued" in sent.text and "News for C1" in sent.text
    wrong = http.post(
        f"/customers/{mine}/messages",
        data={"csrf": csrf, "purpose": "service", "subject": "Hi {{ traits.nickname }}", "body_text": "x"},
        headers=htmx,
    )
    assert "subject: the customer has no trait" in wrong.text
    assert http.get(f"/customers/{theirs}/messages", headers=htmx).status_code == 404
    _, messages = delivery_log(world.db, mine, viewer=SYSTEM)
    assert [(m.purpose, m.status, m.created_by) for m in messages] == [
        ("marketing", "queued", world.ids["agent1"])
    ]
    with world.db.read() as session:
        names = list(session.scalars(select(Event.name).where(Event.profile_id == mine)))
    assert "Message Refused" not in names


def test_an_agent_without_edit_cannot_send(db: Database, settings: Settings) -> None:
    ann = customer(db, settings, "ann", email="ann@example.com")
    make_token(db, "viewer@example.com", "analyst")
    with db.read() as session:
        analyst_id = session.scalar(select(User.id).where(User.email == "viewer@example.com"))
    assert analyst_id is not None
    with pytest.raises(Forbidden):
        send_message(
            db,
            settings,
            viewer_for(db, analyst_id, "analyst"),
            ann,
            purpose="service",
            subject="Hi",
            body_text="x",
            now=T0,
        )
