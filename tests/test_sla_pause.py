"""The resolution clock pauses while a conversation is pending (threadline.service.sla_pause): with an
injected clock, a conversation pending for 3 business hours breaches 3 business hours later than one
never pending, whose due time is unchanged; a pause over the night counts only open hours; the minute
job neither warns nor breaches a paused clock, and stamps a pause it was not told of. The status
changes go through the real paths: an agent's triage and a customer's SMS. Real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

from tests.factories import SYSTEM, timeline_page
from threadline.config import Settings
from threadline.service import (
    business_minutes_between,
    change_conversation,
    check_slas,
    create_policy,
    parse_calendar,
    receive_inbound,
    reply,
)
from threadline.storage import Database
from threadline.storage.models import Conversation

SHANGHAI = {
    "timezone": "Asia/Shanghai",
    "hours": {d: ["09:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
}
T0 = datetime(2026, 3, 3, 2, 0)  # Tuesday 10:00 in Shanghai; 8 business hours later is 18:00 (10:00 UTC)
_numbers = count(100)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A March 2026 time in Shanghai (UTC+8, no summer time) as the naive UTC that is stored."""
    return datetime(2026, 3, day, hour, minute) - timedelta(hours=8)


def standard_policy(db: Database) -> None:
    create_policy(
        db,
        {
            "name": "Standard",
            "first_response_minutes": 60,
            "resolution_minutes": 480,
            "warn_before_minutes": 15,
            "calendar": SHANGHAI,
        },
    )


def customer_writes(db: Database, settings: Settings, phone: str, text: str, at: datetime) -> int:
    received = receive_inbound(
        db,
        settings,
        channel="sms",
        identifiers={"phone": phone},
        thread_key=phone,
        sender=phone,
        body_text=text,
        message_id_header=f"sms-{next(_numbers)}",
        at=at,
    )
    assert received is not None
    return received.conversation_id


def answered(db: Database, settings: Settings, conversation_id: int, at: datetime) -> None:
    """An agent asks the customer for something: the first response (queued: no provider is set)."""
    reply(db, settings, SYSTEM, conversation_id, body_text="Your order number?", author_user_id=None, now=at)


def set_status(db: Database, conversation_id: int, status: str, at: datetime) -> None:
    change_conversation(db, SYSTEM, conversation_id, status=status, now=at)


def conversation(db: Database, conversation_id: int) -> Conversation:
    with db.read() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        session.expunge(row)
        return row


def breaches(db: Database, profile_id: str) -> list[tuple[int, str, str]]:
    return sorted(
        (e["properties"]["conversation_id"], e["properties"]["target"], e["timestamp"][:16])
        for e in timeline_page(db, profile_id)["events"]
        if e["event"] == "SLA Breached"
    )


def test_three_business_hours_pending_breach_three_business_hours_later(
    db: Database, settings: Settings
) -> None:
    standard_policy(db)
    paused = customer_writes(db, settings, "+8613800138001", "My parcel is missing", T0)
    never = customer_writes(db, settings, "+8613800138002", "My parcel is missing too", T0)
    for conversation_id in (paused, never):
        answered(db, settings, conversation_id, T0 + timedelta(minutes=30))
        assert conversation(db, conversation_id).resolution_due == local(3, 18)

    # 11:00: the agent waits on the customer; 14:00: the customer answers by SMS, which opens it.
    set_status(db, paused, "pending", local(3, 11))
    assert conversation(db, paused).sla_paused_at == local(3, 11)
    check_slas(db, settings, now=local(3, 12))
    customer_writes(db, settings, "+8613800138001", "It is order 42", local(3, 14))

    moved, unchanged = conversation(db, paused), conversation(db, never)
    assert moved.status == "open" and moved.sla_paused_at is None and moved.sla_paused_minutes == 180
    # 18:00 Tuesday + 3 business hours: Wednesday 12:00 (the night does not count).
    assert moved.resolution_due == local(4, 12)
    assert unchanged.resolution_due is not None and moved.resolution_due is not None
    calendar = parse_calendar(SHANGHAI)
    assert business_minutes_between(unchanged.resolution_due, moved.resolution_due, calendar) == 180
    assert unchanged.resolution_due == local(3, 18) and unchanged.sla_paused_minutes == 0
    assert moved.first_response_due == unchanged.first_response_due == local(3, 11)  # not paused

    check_slas(db, settings, now=local(3, 18))
    assert conversation(db, never).sla_state == "breached"
    assert conversation(db, paused).sla_state == "ok"
    check_slas(db, settings, now=local(4, 11, 45))
    assert conversation(db, paused).sla_state == "warning"
    report = check_slas(db, settings, now=local(4, 12))
    assert report["breached"] == 1 and report["breach_events"] == 1
    assert conversation(db, paused).sla_state == "breached"

    profile_id = conversation(db, paused).profile_id
    # The breach event is at the moved due time: Wednesday 12:00 Shanghai is 04:00 UTC.
    assert breaches(db, profile_id) == [(paused, "resolution", "2026-03-04T04:00")]
    other = conversation(db, never).profile_id
    assert breaches(db, other) == [(never, "resolution", "2026-03-03T10:00")]


def test_a_pause_past_the_due_time_neither_breaches_nor_counts_the_night(
    db: Database, settings: Settings
) -> None:
    standard_policy(db)
    waiting = customer_writes(db, settings, "+8613800138003", "Can I change my address?", T0)
    answered(db, settings, waiting, T0 + timedelta(minutes=10))
    set_status(db, waiting, "pending", local(3, 16))
    check_slas(db, settings, now=local(3, 15, 50))
    # Pending past 18:00, the original due time: no warning, no breach while it waits.
    report = check_slas(db, settings, now=local(3, 19))
    assert report["breach_events"] == 0 and conversation(db, waiting).sla_state == "ok"

    # Resolved from pending at 10:00 Wednesday: paused 16:00-18:00 and 09:00-10:00, 3 business hours,
    # so it was due 12:00 Wednesday and is in time.
    set_status(db, waiting, "resolved", local(4, 10))
    resolved = conversation(db, waiting)
    assert resolved.sla_paused_minutes == 180 and resolved.resolution_due == local(4, 12)
    assert check_slas(db, settings, now=local(4, 13))["breach_events"] == 0
    assert conversation(db, waiting).sla_state == "ok"

    # Set pending once the clock had run out: it breached, and the pause moves nothing.
    late = customer_writes(db, settings, "+8613800138004", "Where is it?", T0)
    answered(db, settings, late, T0 + timedelta(minutes=10))
    set_status(db, late, "pending", local(3, 19))
    assert check_slas(db, settings, now=local(3, 19, 1))["breach_events"] == 1
    set_status(db, late, "open", local(4, 10))
    assert conversation(db, late).resolution_due == local(3, 18)
    assert conversation(db, late).sla_paused_minutes == 0


def test_the_minute_job_stamps_a_pause_it_was_not_told_of(db: Database, settings: Settings) -> None:
    standard_policy(db)
    conversation_id = customer_writes(db, settings, "+8613800138005", "Hello", T0)
    answered(db, settings, conversation_id, T0 + timedelta(minutes=5))
    with db.write() as session:  # as a conversation pending before migration 0024 was
        row = session.get(Conversation, conversation_id)
        assert row is not None
        row.status, row.updated_at = "pending", local(3, 12)
    check_slas(db, settings, now=local(3, 12, 1))
    assert conversation(db, conversation_id).sla_paused_at == local(3, 12)
    customer_writes(db, settings, "+8613800138005", "Still there?", local(3, 13))
    # Paused 12:00-13:00: due 18:00 Tuesday + 1 business hour, Wednesday 10:00.
    assert conversation(db, conversation_id).resolution_due == local(4, 10)
