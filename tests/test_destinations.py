"""Destinations: a real local HTTP server receives the signed deliveries the worker makes for ingested
events and segment changes; failures are retried on the clock and dead-lettered; filters, disabling,
the REST API, the page and erasure. Real SQLite and PostgreSQL, a moved clock, no sleeps."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send
from tests.test_web_pages import csrf_of, sign_in
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.destinations import (
    DEAD,
    DELIVERED,
    EVENT_TYPES,
    FAILED,
    JOB_KIND,
    create_destination,
    recent_deliveries,
    retry_dead_letters,
    send_to_destination,
    update_destination,
)
from threadline.ingest import MESSAGE_TYPES
from threadline.jobs import Worker, handlers
from threadline.privacy import erase_person
from threadline.segments import create_segment, recompute
from threadline.storage import Database
from threadline.storage.models import DestinationDelivery


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float, tolerance: int = 300) -> bool:
    """The receiver's check, as docs/destinations.md shows it."""
    timestamp = headers["X-Threadline-Timestamp"]
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Threadline-Signature"], f"sha256={expected}")


@dataclass
class Receiver:
    """What the webhook received, per path; `answers` are the status codes it replies with, in turn
    (then `answer` for ever)."""

    port: int
    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    answer: int = 200

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str = "/hook") -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body in self.posts if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            box.posts.append((self.path, dict(self.headers.items()), body))
            status = box.answers.pop(0) if box.answers else box.answer
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"boom" if status >= 300 else b"ok")

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", box.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = utcnow() + timedelta(seconds=1)  # past what ingestion stamped with the real time

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def run_worker(db: Database, settings: Settings, clock: Clock) -> list[str]:
    worker = Worker(db, settings, clock=clock, kinds={JOB_KIND: handlers()[JOB_KIND]}, schedules=[])
    return [outcome.status for outcome in worker.run_until_idle()]


def destination(db: Database, url: str, **filters: Any) -> tuple[int, str]:
    name = filters.pop("name", "warehouse")
    enabled = filters.pop("enabled", True)
    view, secret = create_destination(db, name=name, url=url, enabled=enabled, filters=filters, now=utcnow())
    return view.id, secret


def track(user: str, event: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "properties": properties}


def deliveries(db: Database, destination_id: int) -> list[DestinationDelivery]:
    with db.read() as session:
        rows = list(
            session.query(DestinationDelivery)
            .filter(DestinationDelivery.destination_id == destination_id)
            .order_by(DestinationDelivery.id)
        )
        session.expunge_all()
        return rows


def test_an_ingested_track_event_arrives_signed_through_the_worker(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    destination_id, secret = destination(db, receiver.url(), segments="none")
    send(db, settings, make_source(db), track("ann", "Order Completed", revenue=42.5, currency="EUR"))
    assert receiver.posts == []  # queued with the event, sent by the worker: never inline
    clock = Clock()
    assert run_worker(db, settings, clock) == ["done"]

    [(path, headers, body)] = receiver.posts
    assert path == "/hook"
    assert verify(secret, headers, body, now=time.time())
    assert not verify("whsec_another", headers, body, now=time.time())
    sent = json.loads(body)
    assert sent["type"] == "track" and sent["event"] == "Order Completed" and sent["userId"] == "ann"
    assert sent["properties"] == {"revenue": 42.5, "currency": "EUR"}
    assert sent["profileId"] == lookup_profile(db, "user_id", "ann")
    assert sent["messageId"] and sent["timestamp"].endswith("Z") and sent["source"] == "website"
    assert headers["X-Threadline-Delivery"] == str(deliveries(db, destination_id)[0].id)
    [row] = recent_deliveries(db, destination_id)
    assert (row.status, row.attempts, row.last_status_code) == (DELIVERED, 1, 200)
    assert run_worker(db, settings, clock) == [] and len(receiver.posts) == 1


def test_the_ingestion_api_forwards_too(
    db: Database, settings: Settings, receiver: Receiver, http: httpx.Client
) -> None:
    destination(db, receiver.url(), segments="none")
    key = make_source(db).write_key
    response = http.post("/v1/identify", json={"userId": "bo", "traits": {"plan": "pro"}}, auth=(key, ""))
    assert response.status_code == 200, response.text
    run_worker(db, settings, Clock())
    [sent] = receiver.bodies()
    assert sent["type"] == "identify" and sent["traits"] == {"plan": "pro"} and sent["userId"] == "bo"


def test_a_segment_entry_arrives_signed(db: Database, settings: Settings, receiver: Receiver) -> None:
    source = make_source(db)
    send(db, settings, source, {"type": "identify", "userId": "cy", "traits": {"plan": "pro"}})
    pro = create_segment(
        db,
        SYSTEM,
        name="Pro",
        definition={"type": "trait", "key": "plan", "op": "eq", "value": "pro"},
        now=utcnow(),
    )
    _, secret = destination(db, receiver.url(), events="none", segments=[pro.id], segment_changes=["entered"])
    clock = Clock()
    recompute(db, pro.id, now=clock(), settings=settings)
    run_worker(db, settings, clock)

    [(_, headers, body)] = (
        receiver.posts
    )  # only the entry: the timeline's "Segment Entered" is not sent twice
    assert verify(secret, headers, body, now=time.time())
    sent = json.loads(body)
    assert sent["type"] == "segment_entered" and sent["segment"] == {"id": pro.id, "name": "Pro"}
    assert sent["profile_id"] == lookup_profile(db, "user_id", "cy") and sent["at"].endswith("Z")

    # Leaving is not wanted by this destination.
    send(db, settings, source, {"type": "identify", "userId": "cy", "traits": {"plan": "free"}})
    recompute(db, pro.id, now=clock(), settings=settings)
    run_worker(db, settings, clock)
    assert len(receiver.posts) == 1


def test_two_failures_then_delivered_on_the_third_attempt(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    destination_id, _ = destination(db, receiver.url())
    receiver.answers = [500, 500]
    send(db, settings, make_source(db), track("di", "Signed Up"))
    clock = Clock()
    run_worker(db, settings, clock)
    [row] = deliveries(db, destination_id)
    assert (row.status, row.attempts, row.last_status_code) == (FAILED, 1, 500)
    assert row.last_error is not None and "500" in row.last_error
    assert row.next_attempt_at == clock() + timedelta(minutes=1)

    clock.advance(timedelta(seconds=59))
    assert run_worker(db, settings, clock) == [] and len(receiver.posts) == 1  # not before its time
    clock.advance(timedelta(seconds=1))
    run_worker(db, settings, clock)
    [row] = deliveries(db, destination_id)
    assert (row.status, row.attempts, row.next_attempt_at) == (FAILED, 2, clock() + timedelta(minutes=5))
    clock.advance(timedelta(minutes=5))
    run_worker(db, settings, clock)
    [row] = deliveries(db, destination_id)
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (DELIVERED, 3, 200, None)
    assert len(receiver.posts) == 3
    assert len({body for _, _, body in receiver.posts}) == 1  # the same payload each time


def test_always_failing_ends_dead_and_a_retry_by_hand_delivers(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    settings = settings.model_copy(update={"destination_max_attempts": 3})
    destination_id, _ = destination(db, receiver.url())
    receiver.answer = 503
    send(db, settings, make_source(db), track("ed", "Signed Up"))
    clock = Clock()
    for _ in range(5):
        run_worker(db, settings, clock)
        clock.advance(timedelta(days=1))
    [row] = deliveries(db, destination_id)
    assert (row.status, row.attempts, row.next_attempt_at) == (DEAD, 3, None)
    assert len(receiver.posts) == 3

    receiver.answer = 204
    assert retry_dead_letters(db, destination_id, now=clock()) == 1
    run_worker(db, settings, clock)
    [row] = deliveries(db, destination_id)
    assert (row.status, row.last_status_code) == (DELIVERED, 204) and len(receiver.posts) == 4


def test_an_unreachable_destination_is_retried_and_costs_one_timeout_per_run(
    db: Database, settings: Settings
) -> None:
    destination_id, _ = destination(db, f"http://127.0.0.1:{free_port()}/nobody")
    send(db, settings, make_source(db), track("fi", "A"), track("fi", "B"), track("fi", "C"))
    run_worker(db, settings, Clock())
    rows = deliveries(db, destination_id)
    assert [r.status for r in rows] == [FAILED] * 3
    assert [r.attempts for r in rows] == [1, 0, 0]  # after the first failed, the others waited with it
    assert rows[0].last_status_code is None and "could not deliver" in (rows[0].last_error or "")
    assert len({r.next_attempt_at for r in rows}) == 1


def test_disabled_gets_nothing_and_a_filter_gets_only_its_events(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    destination(db, receiver.url("/all"), name="all")
    off, _ = destination(db, receiver.url("/off"), name="off", enabled=False)
    destination(db, receiver.url("/orders"), name="orders", events=["Order Completed"])
    destination(db, receiver.url("/identify"), name="identify", event_types=["identify"])
    source = make_source(db)
    send(
        db,
        settings,
        source,
        track("gu", "Product Viewed"),
        track("gu", "Order Completed", revenue=10),
        {"type": "identify", "userId": "gu", "traits": {"plan": "pro"}},
    )
    clock = Clock()
    run_worker(db, settings, clock)
    assert [b.get("event", b["type"]) for b in receiver.bodies("/all")] == [
        "Product Viewed",
        "Order Completed",
        "identify",
    ]
    assert [b["event"] for b in receiver.bodies("/orders")] == ["Order Completed"]
    assert [b["type"] for b in receiver.bodies("/identify")] == ["identify"]
    assert receiver.bodies("/off") == [] and deliveries(db, off) == []

    # Disabled after events were queued for it: they wait, and go once it is enabled again.
    update_destination(db, off, now=utcnow(), enabled=True)
    send(db, settings, source, track("gu", "Late"))
    update_destination(db, off, now=utcnow(), enabled=False)
    run_worker(db, settings, clock)
    assert receiver.bodies("/off") == []


def test_event_types_match_the_ingest_message_types() -> None:
    assert set(EVENT_TYPES) == set(MESSAGE_TYPES)


def test_erasure_removes_the_persons_payloads(db: Database, settings: Settings, receiver: Receiver) -> None:
    destination_id, _ = destination(db, receiver.url())
    source = make_source(db)
    send(
        db,
        settings,
        source,
        track("hal", "Order Completed", email="hal@example.com"),
        track("ivy", "Signed Up"),
    )
    hal = lookup_profile(db, "user_id", "hal")
    report = erase_person(db, settings, hal, now=utcnow())
    assert report is not None
    rows = deliveries(db, destination_id)
    assert [r.profile_id for r in rows] == [lookup_profile(db, "user_id", "ivy")]
    assert "hal@example.com" not in json.dumps([r.payload for r in rows])


# -- REST and the page -------------------------------------------------------------------------------


def test_api_creates_shows_the_secret_once_validates_and_is_admins_only(
    db: Database, settings: Settings, receiver: Receiver, http: httpx.Client
) -> None:
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'agent@example.com', 'agent')}"}
    body = {"name": "Warehouse", "url": receiver.url(), "events": ["Order Completed"], "segments": "none"}
    created = http.post("/api/v1/destinations", json=body, headers=admin)
    assert created.status_code == 201, created.text
    secret = created.json()["signing_secret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    destination_id = created.json()["id"]
    shown = http.get(f"/api/v1/destinations/{destination_id}", headers=admin).json()
    assert secret not in json.dumps(shown) and shown["signing_secret"] == f"whsec_…{secret[-4:]}"
    assert shown["events"] == ["Order Completed"] and shown["segments"] == "none"
    listed = http.get("/api/v1/destinations", headers=admin).json()["destinations"]
    assert [d["stats"] for d in listed] == [{"delivered": 0, "pending": 0, "failed": 0, "dead": 0}]

    for wrong, name in [
        ({"url": "ftp://files.example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"name": ""}, "name"),
        ({"events": 5}, "events"),
        ({"event_types": ["clicks"]}, "event_types[0]"),
        ({"segments": [999]}, "segments[0]"),
        ({"segment_changes": ["joined"]}, "segment_changes[0]"),
    ]:
        answer = http.post("/api/v1/destinations", json={**body, "name": "Other", **wrong}, headers=admin)
        assert answer.status_code == 400, (wrong, answer.text)
        assert answer.json()["error"]["details"]["field"] == name
        assert answer.json()["error"]["message"].startswith(f"{name}: ")
    again = http.post("/api/v1/destinations", json=body, headers=admin)
    assert again.status_code == 409 and again.json()["error"]["details"]["field"] == "name"

    assert http.get("/api/v1/destinations", headers=agent).status_code == 403
    assert http.post("/api/v1/destinations", json={**body, "name": "Mine"}, headers=agent).status_code == 403
    assert http.delete(f"/api/v1/destinations/{destination_id}", headers=agent).status_code == 403

    test = http.post(f"/api/v1/destinations/{destination_id}/test", headers=admin)
    assert test.status_code == 202
    run_worker(db, settings, Clock())
    [sent] = receiver.bodies()
    assert sent["event"] == "Threadline Test Event"  # whatever its filters say
    log = http.get(f"/api/v1/destinations/{destination_id}/deliveries", headers=admin).json()["deliveries"]
    assert [(d["status"], d["last_status_code"], d["kind"]) for d in log] == [("delivered", 200, "test")]
    assert http.post(f"/api/v1/destinations/{destination_id}/retry", headers=admin).json() == {"retried": 0}

    changed = http.patch(f"/api/v1/destinations/{destination_id}", json={"enabled": False}, headers=admin)
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert changed.json()["events"] == ["Order Completed"]  # other fields kept
    assert http.delete(f"/api/v1/destinations/{destination_id}", headers=admin).status_code == 204
    assert http.get(f"/api/v1/destinations/{destination_id}", headers=admin).status_code == 404
    audit = http.get(f"/api/v1/audit?object_id={destination_id}&limit=50", headers=admin).json()["entries"]
    mine = [(e["action"], e["object_type"]) for e in audit if e["object_type"] == "destination"]
    assert mine == [
        ("delete", "destination"),
        ("update", "destination"),
        ("retry", "destination"),
        ("test", "destination"),
        ("create", "destination"),
    ]
    assert secret not in json.dumps(audit)


def test_page_lists_creates_and_acts_for_admins_only(
    db: Database, settings: Settings, receiver: Receiver, http: httpx.Client
) -> None:
    make_token(db)
    make_token(db, "agent@example.com", "agent")
    sign_in(http, "agent@example.com")
    assert http.get("/settings/destinations").status_code == 403
    http.cookies.clear()
    sign_in(http)
    page = http.get("/settings/destinations")
    assert page.status_code == 200 and "Destinations" in page.text
    form = {
        "csrf": csrf_of(page.text),
        "name": "Warehouse",
        "url": "gopher://x",
        "enabled": "on",
        "events_mode": "names",
        "event_names": "Order Completed\nRefund Issued",
        "segments_mode": "none",
        "segment_changes": ["entered", "left"],
    }
    bad = http.post("/settings/destinations", data=form)
    assert bad.status_code == 400 and "url: must be an http or https URL" in bad.text
    created = http.post("/settings/destinations", data={**form, "url": receiver.url()})
    assert created.status_code == 201
    secret = created.text.split('id="signing-secret">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    [view] = http.get(
        "/api/v1/destinations", headers={"Authorization": f"Bearer {make_token(db, 'b@example.com')}"}
    ).json()["destinations"]
    assert view["events"] == ["Order Completed", "Refund Issued"] and view["segments"] == "none"
    shown = http.get(f"/settings/destinations/{view['id']}")
    assert secret not in shown.text and f"whsec_…{secret[-4:]}" in shown.text
    csrf = csrf_of(shown.text)
    assert http.post(f"/settings/destinations/{view['id']}/test", data={"csrf": csrf}).status_code == 303
    run_worker(db, settings, Clock())
    shown = http.get(f"/settings/destinations/{view['id']}")
    assert "delivery-delivered" in shown.text and "Threadline Test Event" in shown.text
    assert http.post(f"/settings/destinations/{view['id']}/disable", data={"csrf": csrf}).status_code == 303
    assert "Enable" in http.get(f"/settings/destinations/{view['id']}").text
    assert http.post(f"/settings/destinations/{view['id']}/delete", data={"csrf": csrf}).status_code == 303
    assert "No destinations yet" in http.get("/settings/destinations").text


def test_a_journey_step_can_send_one_payload_to_one_destination(
    db: Database, settings: Settings, receiver: Receiver
) -> None:
    destination_id, secret = destination(db, receiver.url(), events="none", segments="none")
    with db.write() as session:
        delivery_id = send_to_destination(
            session.connection(),
            destination_id,
            {"type": "journey_step", "journey": "Welcome", "profile_id": "p-1"},
            profile_id=None,
            name="Welcome",
            now=utcnow(),
        )
    run_worker(db, settings, Clock())
    [(_, headers, body)] = receiver.posts
    assert verify(secret, headers, body, now=time.time()) and headers["X-Threadline-Delivery"] == str(
        delivery_id
    )
    assert json.loads(body)["journey"] == "Welcome"
