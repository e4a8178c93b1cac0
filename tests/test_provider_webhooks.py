"""Outbound SMS (and WhatsApp, WeChat, social) through the provider webhook: a real local HTTP server
captures the signed POSTs; consent decides as for email, at most once as for email, and an agent's
reply on an SMS conversation reaches the provider. Real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import free_port
from tests.factories import SYSTEM, lookup_profile, make_source, send, timeline_page
from threadline.config import Settings
from threadline.jobs import Worker, handlers
from threadline.messaging import FAILED, JOB_KIND, QUEUED, REFUSED, SENT, send_message
from threadline.messaging.providers import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from threadline.privacy import record_consent, statement
from threadline.service import receive_inbound, reply
from threadline.storage import Database
from threadline.storage.models import OutboundMessage

T0 = datetime(2026, 3, 1, 9, 0)
SECRET = "provider-secret-for-tests"


@dataclass
class Provider:
    """What the provider received; `answer` is the status it replies with."""

    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answer: int = 200


@pytest.fixture
def provider() -> Iterator[tuple[Provider, int]]:
    box = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            box.posts.append((dict(self.headers.items()), body))
            self.send_response(box.answer)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true}')

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box, port
    finally:
        server.shutdown()
        server.server_close()


def with_provider(settings: Settings, port: int) -> Settings:
    url = f"http://127.0.0.1:{port}/send"
    return settings.model_copy(
        update={"sms_webhook_url": url, "whatsapp_webhook_url": url, "provider_webhook_secret": SECRET}
    )


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def run_worker(db: Database, settings: Settings) -> list[str]:
    worker = Worker(db, settings, clock=Clock(), kinds={JOB_KIND: handlers()[JOB_KIND]}, schedules=[])
    return [outcome.status for outcome in worker.run_until_idle()]


def customer(db: Database, settings: Settings, user_id: str, **traits: str) -> str:
    message = {"type": "identify", "userId": user_id, "traits": traits, "timestamp": "2026-02-01T09:00:00Z"}
    send(db, settings, make_source(db, f"src-{user_id}"), message)
    return lookup_profile(db, "user_id", user_id)


def grant(db: Database, profile_id: str, purpose: str, channel: str) -> None:
    at = T0 - timedelta(days=1)
    record_consent(
        db,
        SYSTEM,
        profile_id,
        [statement(purpose, channel, "granted")],
        source="test",
        now=at,
        recorded_at=at,
    )


def text_message(db: Database, settings: Settings, profile_id: str, **kw: Any) -> int:
    return send_message(
        db,
        settings,
        SYSTEM,
        profile_id,
        purpose=kw.pop("purpose", "marketing"),
        subject="",
        body_text="你好 {{ traits.first_name }}，新品上市。",
        channel=kw.pop("channel", "sms"),
        now=T0,
        **kw,
    ).id


def row(db: Database, message_id: int) -> OutboundMessage:
    with db.read() as session:
        found = session.get(OutboundMessage, message_id)
        assert found is not None
        session.expunge(found)
        return found


def test_a_granted_sms_is_posted_once_signed(
    db: Database, settings: Settings, provider: tuple[Provider, int]
) -> None:
    box, port = provider
    sms = with_provider(settings, port)
    ann = customer(db, sms, "ann", phone="+8613800138000", first_name="安")
    grant(db, ann, "marketing", "sms")
    message_id = text_message(db, sms, ann)
    assert row(db, message_id).status == QUEUED

    assert run_worker(db, sms) == ["done"]
    sent = row(db, message_id)
    assert sent.status == SENT and sent.attempts == 1
    [(headers, body)] = box.posts
    assert json.loads(body) == {
        "to": "+8613800138000",
        "text": "你好 安，新品上市。\n回复退订不再接收",  # a marketing text: the opt-out footer
        "channel": "sms",
        "message_id": f"threadline-{message_id}",
    }
    assert headers[SIGNATURE_HEADER] == sign(SECRET, headers[TIMESTAMP_HEADER], body)
    assert headers[SIGNATURE_HEADER] != sign("another secret", headers[TIMESTAMP_HEADER], body)
    events = [e for e in timeline_page(db, ann)["events"] if e["event"] == "Message Sent"]
    assert [(e["channel"], e["properties"]["channel"]) for e in events] == [("sms", "sms")]

    assert run_worker(db, sms) == []  # nothing left: a message goes out once
    assert len(box.posts) == 1


def test_without_consent_nothing_is_posted(
    db: Database, settings: Settings, provider: tuple[Provider, int]
) -> None:
    box, port = provider
    sms = with_provider(settings, port)
    bob = customer(db, sms, "bob", phone="+8613900139000", first_name="Bob")
    grant(db, bob, "marketing", "email")  # consent on email is not consent on SMS
    refused = text_message(db, sms, bob)
    assert row(db, refused).status == REFUSED

    # Granted when asked, withdrawn before the worker sends: the second check refuses it.
    grant(db, bob, "marketing", "whatsapp")
    queued = text_message(db, sms, bob, channel="whatsapp")
    assert row(db, queued).status == QUEUED
    later = T0 - timedelta(hours=1)
    record_consent(
        db,
        SYSTEM,
        bob,
        [statement("marketing", "whatsapp", "withdrawn")],
        source="t",
        now=later,
        recorded_at=later,
    )
    run_worker(db, sms)
    assert row(db, queued).status == REFUSED
    assert box.posts == []


def test_a_provider_error_fails_and_is_not_retried(
    db: Database, settings: Settings, provider: tuple[Provider, int]
) -> None:
    box, port = provider
    box.answer = 500
    sms = with_provider(settings, port)
    cai = customer(db, sms, "cai", phone="+8613700137000", first_name="蔡")
    message_id = text_message(db, sms, cai, purpose="service")
    assert run_worker(db, sms) == ["done"]
    failed = row(db, message_id)
    assert failed.status == FAILED and failed.attempts == 1 and "500" in (failed.reason or "")
    assert len(box.posts) == 1  # the provider may have sent it: at most once


def test_a_provider_that_cannot_be_reached_is_tried_again(db: Database, settings: Settings) -> None:
    sms = with_provider(settings, free_port())  # nothing listens there: connection refused
    dan = customer(db, sms, "dan", phone="+8613600136000", first_name="Dan")
    message_id = text_message(db, sms, dan, purpose="service")
    run_worker(db, sms)
    deferred = row(db, message_id)
    assert deferred.status == QUEUED and deferred.attempts == 1
    assert "could not reach the provider" in (deferred.reason or "")


def test_without_a_provider_url_the_sms_waits(db: Database, settings: Settings) -> None:
    eve = customer(db, settings, "eve", phone="+8613500135000", first_name="Eve")
    message_id = text_message(db, settings, eve, purpose="service")
    waiting = row(db, message_id)
    assert waiting.status == QUEUED and "THREADLINE_SMS_WEBHOOK_URL" in (waiting.reason or "")


def test_an_agents_sms_reply_reaches_the_provider(
    db: Database, settings: Settings, provider: tuple[Provider, int]
) -> None:
    box, port = provider
    sms = with_provider(settings, port)
    received = receive_inbound(
        db,
        sms,
        channel="sms",
        identifiers={"phone": "+14155550134"},
        thread_key="+14155550134",
        sender="+14155550134",
        body_text="Is my order shipped?",
        message_id_header="sms-SM1",
        at=T0,
    )
    assert received is not None
    reply(
        db,
        sms,
        SYSTEM,
        received.conversation_id,
        body_text="It ships today {{ not a template }}",
        author_user_id=None,
        now=T0,
    )
    assert run_worker(db, sms) == ["done"]
    [(headers, body)] = box.posts
    posted = json.loads(body)
    assert posted["to"] == "+14155550134" and posted["channel"] == "sms"
    assert posted["text"] == "It ships today {{ not a template }}"  # as the agent wrote it
    assert headers[SIGNATURE_HEADER] == sign(SECRET, headers[TIMESTAMP_HEADER], body)
