"""What Threadline itself records on a customer's timeline attaches to the right customer, however they
are known, and never re-creates an erased one."""

from __future__ import annotations

from tests.factories import lookup_profile, make_source, send, timeline_page
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.ingest import record_customer_event
from threadline.privacy import erase_person
from threadline.storage import Database


def test_an_event_reaches_a_customer_known_only_by_phone(db: Database, settings: Settings) -> None:
    till = make_source(db, "till", "store")
    send(db, settings, till, {"type": "identify", "messageId": "m1", "traits": {"phone": "+1 415 555 0199"}})
    profile = lookup_profile(db, "phone", "+14155550199")
    recorded = record_customer_event(
        db,
        settings,
        profile,
        "Call Logged",
        properties={"minutes": 3},
        message_id="call-1",
        source="Calls",
        channel="call_center",
        at=utcnow(),
    )
    assert recorded
    names = [e["event"] for e in timeline_page(db, profile)["events"]]
    assert "Call Logged" in names
    # Recording it again (a job that ran twice) is a duplicate: still one.
    record_customer_event(
        db,
        settings,
        profile,
        "Call Logged",
        properties={"minutes": 3},
        message_id="call-1",
        source="Calls",
        channel="call_center",
        at=utcnow(),
    )
    assert [e["event"] for e in timeline_page(db, profile)["events"]].count("Call Logged") == 1


def test_an_erased_customer_gets_nothing_recorded(db: Database, settings: Settings) -> None:
    web = make_source(db)
    send(db, settings, web, {"type": "identify", "userId": "u-9", "messageId": "m1"})
    profile = lookup_profile(db, "user_id", "u-9")
    erase_person(db, settings, profile, now=utcnow())
    assert not record_customer_event(
        db,
        settings,
        profile,
        "Email Sent",
        properties={},
        message_id="x-1",
        source="Threadline messaging",
        channel="email",
        at=utcnow(),
    )
