"""The service desk's other channels over HTTP, against a live server on both databases: signed
inbound webhooks (SMS, WhatsApp, ...), call records and hand-logged calls, and the web chat's
endpoints, down to the agent's reply reaching the chat's history."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send, timeline_page
from tests.test_service_email import sign_in
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.ingest import list_quarantine
from threadline.service import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    chat_history,
    customer_conversations,
    receive_inbound,
    reply,
    sign,
)
from threadline.storage import Database
from threadline.storage.models import Attachment, Conversation, ConversationMessage


def signed_post(
    http: httpx.Client, path: str, secret: str, payload: Any, *, at: float | None = None
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    stamp = str(int(at if at is not None else time.time()))
    headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, body)}
    return http.post(path, content=body, headers={**headers, "Content-Type": "application/json"})


def sms(text: str, message_id: str, sender: str = "+1 415 555 0134", **extra: Any) -> dict[str, Any]:
    return {
        "channel": "sms",
        "from": sender,
        "to": "+14155550100",
        "text": text,
        "message_id": message_id,
        **extra,
    }


def conversations(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Conversation)) or 0)


def event_names(db: Database, profile_id: str) -> list[str]:
    return [e["event"] for e in timeline_page(db, profile_id, limit=50)["events"]]


@pytest.fixture
def provider_key(db: Database) -> str:
    return make_source(db, "twilio", "sms").write_key


def test_signed_sms_threads_by_the_customers_number(
    db: Database, http: httpx.Client, provider_key: str
) -> None:
    first = signed_post(http, "/webhooks/twilio", provider_key, sms("Is my order shipped?", "SM1"))
    assert first.status_code == 201, first.text
    # The same number written another way, with a picture sent as a link.
    again = sms(
        "Here is the receipt",
        "SM2",
        sender="(415) 555-0134",
        attachments=[{"url": "https://cdn.example/r.jpg"}],
    )
    second = signed_post(http, "/webhooks/twilio", provider_key, again)
    assert second.status_code == 201
    assert second.json()["conversation_id"] == first.json()["conversation_id"]
    profile_id = lookup_profile(db, "phone", "+14155550134")
    [conversation] = customer_conversations(db, SYSTEM, profile_id)[1]
    assert conversation.channel == "sms"
    with db.read() as session:
        stored = session.scalar(
            select(Attachment).where(Attachment.message_id == second.json()["message_id"])
        )
        assert (
            stored is not None and stored.data.decode().strip() == "https://cdn.example/r.jpg"
        )  # kept, not fetched
    # The provider retrying a delivery is a duplicate, not a second message.
    retried = signed_post(http, "/webhooks/twilio", provider_key, sms("Is my order shipped?", "SM1"))
    assert retried.json()["status"] == "duplicate"
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ConversationMessage)) == 2
    assert "Message Received" in event_names(db, profile_id)


def test_unsigned_badly_signed_and_replayed_requests_are_refused(
    db: Database, http: httpx.Client, provider_key: str
) -> None:
    body = json.dumps(sms("hello", "SM9")).encode()
    assert http.post("/webhooks/twilio", content=body).status_code == 401  # unsigned
    assert signed_post(http, "/webhooks/twilio", "not-the-key", body).status_code == 401
    stale = signed_post(http, "/webhooks/twilio", provider_key, body, at=time.time() - 6 * 60)
    assert stale.status_code == 401 and "5 minutes" in stale.json()["error"]["message"]
    # A body changed after signing.
    stamp = str(int(time.time()))
    tampered = http.post(
        "/webhooks/twilio",
        content=body.replace(b"hello", b"HELLO"),
        headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(provider_key, stamp, body)},
    )
    assert tampered.status_code == 401
    # A web source's write key is in every page: it signs nothing. An unknown source looks the same.
    web_key = make_source(db, "website", "web").write_key
    assert signed_post(http, "/webhooks/website", web_key, body).status_code == 401
    assert signed_post(http, "/webhooks/nobody", provider_key, body).status_code == 401
    assert conversations(db) == 0 and list_quarantine(db) == []


def test_a_malformed_body_is_named_and_quarantined(
    db: Database, http: httpx.Client, provider_key: str
) -> None:
    missing = {k: v for k, v in sms("hello", "SM3").items() if k != "from"}
    answer = signed_post(http, "/webhooks/twilio", provider_key, missing)
    assert answer.status_code == 400
    details = answer.json()["error"]["details"]
    assert details["field"] == "from" and details["quarantineId"]
    bad_json = signed_post(http, "/webhooks/twilio", provider_key, b"{not json")
    assert bad_json.status_code == 400 and bad_json.json()["error"]["details"]["field"] == "body"
    wrong_channel = signed_post(http, "/webhooks/twilio", provider_key, sms("hello", "SM4", channel="fax"))
    assert wrong_channel.json()["error"]["details"]["field"] == "channel"
    kept = list_quarantine(db, source="twilio")
    assert len(kept) == 3 and any('"text": "hello"' in q.payload for q in kept)
    assert conversations(db) == 0


def test_a_call_record_finds_the_customer_by_phone(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    website = make_source(db, "website", "web")
    send(
        db, settings, website, {"type": "identify", "userId": "u-7", "traits": {"phone": "+1 (415) 555-0199"}}
    )
    profile_id = lookup_profile(db, "phone", "+14155550199")
    center_key = make_source(db, "call center", "call_center").write_key
    call = {
        "direction": "inbound",
        "number": "415.555.0199",
        "duration_seconds": 125,
        "disposition": "answered",
        "recording_url": "https://calls.example/rec/1.mp3",
        "agent": "li.wei@example.com",
        "call_id": "C-1",
    }
    answer = signed_post(http, "/webhooks/call%20center/calls", center_key, call)
    assert answer.status_code == 201, answer.text
    [conversation] = customer_conversations(db, SYSTEM, profile_id)[1]
    assert conversation.channel == "phone" and conversation.id == answer.json()["conversation_id"]
    timeline = timeline_page(db, profile_id, limit=50)["events"]
    logged = next(e for e in timeline if e["event"] == "Call Logged")
    assert logged["properties"]["duration_seconds"] == 125
    assert logged["properties"]["recording_url"] == "https://calls.example/rec/1.mp3"
    bad = signed_post(http, "/webhooks/call%20center/calls", center_key, {**call, "disposition": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "disposition"

    # An agent logs the callback by hand: the same conversation, threaded by the number.
    token = make_token(db, "agent@example.com", "admin")
    logged_by_hand = http.post(
        "/api/v1/calls",
        json={
            "number": "+14155550199",
            "direction": "outbound",
            "duration_seconds": 40,
            "notes": "Called back",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert logged_by_hand.status_code == 201, logged_by_hand.text
    assert logged_by_hand.json()["conversation_id"] == conversation.id
    assert event_names(db, profile_id).count("Call Logged") == 2


def test_a_customer_who_emailed_and_then_chats_is_one_person(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    received = receive_inbound(
        db,
        settings,
        channel="email",
        identifiers={"email": "ada@example.com"},
        sender="ada@example.com",
        subject="Order 1",
        body_text="Where is my order?",
        message_id_header="<m1@mail.example>",
        at=utcnow(),
    )
    assert received is not None
    write_key = make_source(db, "website", "web").write_key
    assert http.post("/chat/sessions", json={"writeKey": "wrong"}).status_code == 401
    opened = http.post(
        "/chat/sessions", content=json.dumps({"writeKey": write_key})
    )  # text/plain, as the widget
    assert opened.status_code == 201
    chat = opened.json()
    path = f"/chat/sessions/{chat['session_id']}/messages"
    message = {
        "writeKey": write_key,
        "anonymousId": "anon-1",
        "email": "Ada@Example.com",
        "text": "Hi, me again",
    }
    assert http.post(path, json={**message, "secret": "guess"}).status_code == 403
    posted = http.post(path, json={**message, "secret": chat["secret"]})
    assert posted.status_code == 201
    assert http.post(path, json={**message, "secret": chat["secret"], "text": ""}).status_code == 400

    mine = customer_conversations(db, SYSTEM, received.profile_id)[1]
    assert sorted(c.channel for c in mine) == ["chat", "email"]
    assert lookup_profile(db, "anonymous_id", "anon-1") == received.profile_id
    [chat_conversation] = [c for c in mine if c.channel == "chat"]
    reply(
        db,
        settings,
        SYSTEM,
        chat_conversation.id,
        body_text="It ships today",
        author_user_id=None,
        now=utcnow(),
    )
    lines = chat_history(db, chat["session_id"])
    assert [(line.direction, line.text) for line in lines] == [
        ("in", "Hi, me again"),
        ("out", "It ships today"),
    ]
    # The stream refuses a wrong secret before it starts.
    events = f"/chat/sessions/{chat['session_id']}/events"
    assert http.get(events, params={"writeKey": write_key, "secret": "guess"}).status_code == 403


def test_the_stream_sends_the_history_first(db: Database, http: httpx.Client) -> None:
    write_key = make_source(db, "website", "web").write_key
    chat = http.post("/chat/sessions", json={"writeKey": write_key}).json()
    path = f"/chat/sessions/{chat['session_id']}"
    body = {"writeKey": write_key, "secret": chat["secret"], "anonymousId": "anon-2", "text": "Hello"}
    assert http.post(f"{path}/messages", json=body).status_code == 201
    params = {"writeKey": write_key, "secret": chat["secret"]}
    with http.stream("GET", f"{path}/events", params=params) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: history"
        history = json.loads(next(lines).removeprefix("data: "))
    assert [line["text"] for line in history] == ["Hello"]
    assert isinstance(datetime.fromisoformat(history[0]["at"].rstrip("Z")), datetime)


def test_an_agent_logs_a_call_on_the_page(db: Database, http: httpx.Client) -> None:
    make_token(db, "agent@example.com", "agent")
    csrf = sign_in(http, "agent@example.com")
    assert "/calls/new" in http.get("/inbox").text
    form = http.get("/calls/new", params={"number": "+14155550177"})
    assert form.status_code == 200 and "+14155550177" in form.text
    refused = http.post("/calls", data={"csrf": csrf, "number": "12", "direction": "inbound", "minutes": "1"})
    assert refused.status_code == 400 and "number" in refused.text
    fields = {
        "number": "+1 415 555 0177",
        "direction": "outbound",
        "disposition": "voicemail",
        "minutes": "1.5",
    }
    logged = http.post("/calls", data={"csrf": csrf, **fields, "notes": "Left a message"})
    assert logged.status_code == 303 and logged.headers["location"].startswith("/inbox/")
    page = http.get(logged.headers["location"])
    assert page.status_code == 200 and "Left a message" in page.text  # assigned to them: visible
    profile_id = lookup_profile(db, "phone", "+14155550177")
    logged_event = next(
        e for e in timeline_page(db, profile_id, limit=50)["events"] if e["event"] == "Call Logged"
    )
    assert logged_event["properties"]["duration_seconds"] == 90
    assert logged_event["properties"]["agent"] == "agent@example.com"


def test_a_reply_stored_by_another_server_process_reaches_the_stream(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream's process never hears of a reply another process stored (its in-memory streams are its
    own, so publishing is switched off here to be that other process): the stream finds it in the
    database within THREADLINE_CHAT_POLL_SECONDS."""
    from tests.conftest import LiveServer
    from threadline.service import chat_streams

    quick = settings.model_copy(update={"chat_poll_seconds": 0.2})
    write_key = make_source(db, "website", "web").write_key
    with LiveServer(quick, db) as live, httpx.Client(base_url=live.url, timeout=20) as http:
        chat = http.post("/chat/sessions", json={"writeKey": write_key}).json()
        path = f"/chat/sessions/{chat['session_id']}"
        body = {"writeKey": write_key, "secret": chat["secret"], "anonymousId": "anon-3", "text": "Anyone?"}
        assert http.post(f"{path}/messages", json=body).status_code == 201
        with db.read() as session:
            conversation_id = session.scalar(select(Conversation.id).where(Conversation.channel == "chat"))
        params = {"writeKey": write_key, "secret": chat["secret"]}
        with http.stream("GET", f"{path}/events", params=params) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "event: history"
            next(lines)
            monkeypatch.setattr(chat_streams, "publish", lambda *_: None)
            reply(
                db,
                settings,
                SYSTEM,
                conversation_id,
                body_text="Yes, here",
                author_user_id=None,
                now=utcnow(),
            )
            received: list[str] = []
            for line in lines:  # the stream never ends: read until the message came (or the timeout)
                if line.startswith(("event: ", "data: ")):
                    received.append(line)
                if len(received) == 2:
                    break
    assert received[0] == "event: message"
    assert json.loads(received[1].removeprefix("data: "))["text"] == "Yes, here"
