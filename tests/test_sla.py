"""SLAs: business-hours arithmetic (time zones, DST, holidays, starting outside hours), policy matching,
the minute job's ok -> warning -> breached with an injected clock, breach events on the timeline, and
the policy pages and REST for admins only. Real SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.factories import make_source, make_token, send, timeline_page
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.jobs import Worker, handlers, schedules_for
from threadline.service import (
    add_business_minutes,
    apply_policy,
    business_minutes_between,
    check_slas,
    create_policy,
    list_policies,
    parse_calendar,
)
from threadline.storage import Database
from threadline.storage.models import Conversation

SHANGHAI = {
    "timezone": "Asia/Shanghai",
    "hours": {d: ["09:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-10-01", "2026-10-02"],
}
BERLIN = {
    "timezone": "Europe/Berlin",
    "hours": {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
}


def utc(*parts: int) -> datetime:
    return datetime(*parts)  # type: ignore[arg-type]


# --- business hours -------------------------------------------------------------------------------


def test_minutes_within_one_day_in_the_calendars_time_zone() -> None:
    calendar = parse_calendar(SHANGHAI)
    # Tuesday 2026-03-03 10:00 in Shanghai is 02:00 UTC; two business hours later is 12:00 local.
    assert add_business_minutes(utc(2026, 3, 3, 2, 0), 120, calendar) == utc(2026, 3, 3, 4, 0)


def test_the_clock_skips_the_night_and_the_weekend() -> None:
    calendar = parse_calendar(SHANGHAI)
    # Friday 17:30 local (09:30 UTC) + 4 business hours: 30 min on Friday, 3.5 h on Monday -> 12:30 local.
    assert add_business_minutes(utc(2026, 3, 6, 9, 30), 240, calendar) == utc(2026, 3, 9, 4, 30)


def test_starting_outside_hours_counts_from_the_next_opening() -> None:
    calendar = parse_calendar(SHANGHAI)
    # Saturday noon local: the count starts Monday 09:00 local (01:00 UTC).
    assert add_business_minutes(utc(2026, 3, 7, 4, 0), 60, calendar) == utc(2026, 3, 9, 2, 0)
    # 07:00 local on a Wednesday: from 09:00.
    assert add_business_minutes(utc(2026, 3, 3, 23, 0), 30, calendar) == utc(2026, 3, 4, 1, 30)
    # After closing: the next morning.
    assert add_business_minutes(utc(2026, 3, 4, 11, 0), 30, calendar) == utc(2026, 3, 5, 1, 30)


def test_holidays_are_closed() -> None:
    calendar = parse_calendar(SHANGHAI)
    # Wednesday 30 Sep 17:00 local + 2 h: 1 h that day, Thu 1 Oct and Fri 2 Oct are holidays, then the
    # weekend: Monday 5 Oct 10:00 local.
    assert add_business_minutes(utc(2026, 9, 30, 9, 0), 120, calendar) == utc(2026, 10, 5, 2, 0)


def test_summer_time_moves_the_opening_in_utc() -> None:
    calendar = parse_calendar(BERLIN)
    # Friday 27 March 2026 16:00 CET (15:00 UTC) + 2 business hours: 1 h Friday, 1 h Monday 30 March,
    # which is CEST: 10:00 local is 08:00 UTC.
    assert add_business_minutes(utc(2026, 3, 27, 15, 0), 120, calendar) == utc(2026, 3, 30, 8, 0)
    # Business minutes between count the same hours back.
    assert business_minutes_between(utc(2026, 3, 27, 15, 0), utc(2026, 3, 30, 8, 0), calendar) == 120


def test_a_day_open_around_the_clock_is_23_hours_when_the_clocks_go_forward() -> None:
    calendar = parse_calendar({"timezone": "Europe/Berlin", "hours": {"sun": ["00:00", "24:00"]}})
    # Sunday 29 March 2026 00:00 CET = Saturday 23:00 UTC; the day ends at Monday 00:00 CEST = 22:00 UTC.
    start = utc(2026, 3, 28, 23, 0)
    assert business_minutes_between(start, start + timedelta(days=2), calendar) == 23 * 60


def test_an_empty_calendar_counts_every_minute() -> None:
    calendar = parse_calendar({})
    assert add_business_minutes(utc(2026, 3, 7, 23, 0), 90, calendar) == utc(2026, 3, 8, 0, 30)


@pytest.mark.parametrize(
    ("calendar", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"hours": {"mon": ["18:00", "09:00"]}}, "hours"),
        ({"hours": {"funday": ["09:00", "18:00"]}}, "hours"),
        ({"hours": {"mon": ["9am", "18:00"]}}, "hours"),
        ({"hours": {"mon": ["09:00", "18:00"]}, "holidays": ["1 October"]}, "holidays"),
    ],
)
def test_a_broken_calendar_is_refused_naming_the_field(calendar: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as raised:
        parse_calendar(calendar)
    assert raised.value.details == {"field": field}


# --- policies and the minute job ----------------------------------------------------------------

T0 = datetime(2026, 3, 3, 2, 0)  # Tuesday 10:00 in Shanghai


def customer(db: Database, settings: Settings, user_id: str, **traits: Any) -> str:
    from tests.factories import lookup_profile

    source = make_source(db, f"shop-{user_id}")
    send(
        db,
        settings,
        source,
        {"type": "identify", "userId": user_id, "traits": traits, "timestamp": "2026-02-01T00:00:00Z"},
    )
    return lookup_profile(db, "user_id", user_id)


def open_conversation(
    db: Database, profile_id: str, *, at: datetime, channel: str = "email", priority: str = "normal"
) -> int:
    with db.write() as session:
        row = Conversation(
            profile_id=profile_id,
            channel=channel,
            status="open",
            priority=priority,
            tags=[],
            created_at=at,
            updated_at=at,
            last_message_at=at,
            reopened=0,
            sla_state="ok",
        )
        session.add(row)
        session.flush()
        return row.id


def conversation(db: Database, conversation_id: int) -> Conversation:
    with db.read() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        session.expunge(row)
        return row


def policies(db: Database) -> None:
    create_policy(
        db,
        {
            "name": "VIP urgent",
            "position": 1,
            "priority": "urgent",
            "tier": "gold",
            "first_response_minutes": 15,
            "resolution_minutes": 120,
            "warn_before_minutes": 5,
            "calendar": {},
        },
    )
    create_policy(
        db,
        {
            "name": "Chat",
            "position": 2,
            "channel": "chat",
            "first_response_minutes": 5,
            "resolution_minutes": 60,
            "calendar": SHANGHAI,
        },
    )
    create_policy(
        db,
        {
            "name": "Standard",
            "position": 3,
            "first_response_minutes": 60,
            "resolution_minutes": 480,
            "warn_before_minutes": 15,
            "calendar": SHANGHAI,
        },
    )


def test_the_first_matching_policy_by_position_applies(db: Database, settings: Settings) -> None:
    policies(db)
    assert [p.name for p in list_policies(db)] == ["VIP urgent", "Chat", "Standard"]
    gold = customer(db, settings, "u-gold", tier="Gold", email="gold@example.com")
    plain = customer(db, settings, "u-plain", email="plain@example.com")
    cases = {
        open_conversation(db, gold, at=T0, priority="urgent", channel="chat"): ("VIP urgent", 15, 120),
        open_conversation(db, plain, at=T0, priority="urgent", channel="chat"): ("Chat", 5, 60),
        open_conversation(db, gold, at=T0, priority="normal"): ("Standard", 60, 480),
    }
    with db.write() as session:
        for conversation_id, (name, first, resolution) in cases.items():
            row = session.get(Conversation, conversation_id)
            assert row is not None
            applied = apply_policy(session, row)
            assert applied is not None and applied.name == name
            assert row.first_response_due == T0 + timedelta(minutes=first)
            assert row.resolution_due == T0 + timedelta(minutes=resolution)


def test_a_conversation_no_policy_matches_gets_no_due_times(db: Database, settings: Settings) -> None:
    create_policy(
        db, {"name": "Phone only", "channel": "phone", "first_response_minutes": 5, "resolution_minutes": 9}
    )
    profile = customer(db, settings, "u-1", email="one@example.com")
    conversation_id = open_conversation(db, profile, at=T0)
    assert check_slas(db, settings, now=T0)["applied"] == 0
    assert conversation(db, conversation_id).first_response_due is None


def test_the_minute_job_warns_then_breaches_and_puts_the_breach_on_the_timeline(
    db: Database, settings: Settings
) -> None:
    policies(db)
    profile = customer(db, settings, "u-slow", email="slow@example.com")
    conversation_id = open_conversation(db, profile, at=T0)

    # The job gives the conversation its policy (the conversations module may do it when it opens).
    assert check_slas(db, settings, now=T0)["applied"] == 1
    opened = conversation(db, conversation_id)
    assert opened.first_response_due == T0 + timedelta(hours=1) and opened.sla_state == "ok"

    assert check_slas(db, settings, now=T0 + timedelta(minutes=44))["warning"] == 0
    assert check_slas(db, settings, now=T0 + timedelta(minutes=45))["warning"] == 1
    assert conversation(db, conversation_id).sla_state == "warning"

    report = check_slas(db, settings, now=T0 + timedelta(minutes=60))
    assert report["breached"] == 1 and report["breach_events"] == 1
    assert conversation(db, conversation_id).sla_state == "breached"
    # Again: nothing new; the event is recorded once.
    assert check_slas(db, settings, now=T0 + timedelta(minutes=61))["breach_events"] == 0

    events = [e for e in timeline_page(db, profile)["events"] if e["event"] == "SLA Breached"]
    assert len(events) == 1
    assert events[0]["properties"]["conversation_id"] == conversation_id
    assert events[0]["properties"]["target"] == "first_response"
    assert events[0]["timestamp"].startswith("2026-03-03T03:00")


def test_the_first_response_stops_its_clock_and_clears_the_warning(db: Database, settings: Settings) -> None:
    policies(db)
    profile = customer(db, settings, "u-fast", email="fast@example.com")
    conversation_id = open_conversation(db, profile, at=T0)
    check_slas(db, settings, now=T0 + timedelta(minutes=50))
    assert conversation(db, conversation_id).sla_state == "warning"
    with db.write() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        row.first_response_at = row.updated_at = T0 + timedelta(minutes=55)
    # The resolution clock (8 business hours: 18:00 local) is still far: ok again.
    assert check_slas(db, settings, now=T0 + timedelta(hours=2))["breach_events"] == 0
    assert conversation(db, conversation_id).sla_state == "ok"
    # Resolved in time: no breach, ever.
    with db.write() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        row.status, row.resolved_at, row.updated_at = (
            "resolved",
            T0 + timedelta(hours=3),
            T0 + timedelta(hours=3),
        )
    assert check_slas(db, settings, now=T0 + timedelta(days=3))["breach_events"] == 0
    assert conversation(db, conversation_id).sla_state == "ok"


def test_a_reply_after_the_due_time_is_a_breach_even_when_the_job_missed_the_moment(
    db: Database, settings: Settings
) -> None:
    policies(db)
    profile = customer(db, settings, "u-late", email="late@example.com")
    conversation_id = open_conversation(db, profile, at=T0)
    check_slas(db, settings, now=T0)
    with db.write() as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        row.first_response_at = row.updated_at = T0 + timedelta(minutes=90)
        row.status, row.resolved_at = "resolved", T0 + timedelta(minutes=95)
    report = check_slas(db, settings, now=T0 + timedelta(minutes=100))
    assert report == {"applied": 0, "warning": 0, "breached": 1, "breach_events": 1}


def test_the_worker_runs_the_sla_job(db: Database, settings: Settings) -> None:
    policies(db)
    profile = customer(db, settings, "u-worker", email="w@example.com")
    open_conversation(db, profile, at=T0)
    now = [T0]
    kinds = {k: v for k, v in handlers().items() if k.startswith("service.")}
    sla = [s for s in schedules_for(settings) if s.kind == "service.sla"]
    worker = Worker(db, settings, clock=lambda: now[0], kinds=kinds, schedules=sla)
    worker.run_until_idle()
    now[0] = T0 + timedelta(hours=2)
    worker.run_until_idle()
    with db.read() as session:
        assert session.scalar(select(Conversation.sla_state)) == "breached"


# --- pages and REST -----------------------------------------------------------------------------


def test_admins_keep_policies_over_rest_and_agents_cannot(db: Database, http: httpx.Client) -> None:
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'agent@example.com', 'agent')}"}
    body = {"name": "Standard", "first_response_minutes": 60, "resolution_minutes": 480, "calendar": SHANGHAI}
    created = http.post("/api/v1/sla-policies", json=body, headers=admin)
    assert created.status_code == 201, created.text
    policy_id = created.json()["id"]
    assert http.post("/api/v1/sla-policies", json=body, headers=agent).status_code == 403
    assert http.post("/api/v1/sla-policies", json=body, headers=admin).status_code == 409
    broken = {**body, "name": "Broken", "calendar": {"timezone": "Mars/Olympus"}}
    refused = http.post("/api/v1/sla-policies", json=broken, headers=admin)
    assert refused.status_code == 400 and "timezone" in refused.json()["error"]["message"]
    changed = http.put(
        f"/api/v1/sla-policies/{policy_id}", json={**body, "first_response_minutes": 30}, headers=admin
    )
    assert changed.json()["first_response_minutes"] == 30
    assert http.get("/api/v1/sla-policies", headers=agent).json()["policies"][0]["name"] == "Standard"
    assert http.delete(f"/api/v1/sla-policies/{policy_id}", headers=admin).status_code == 204
    assert http.get(f"/api/v1/sla-policies/{policy_id}", headers=admin).status_code == 404


def test_the_settings_page_adds_a_policy_with_business_hours(db: Database, http: httpx.Client) -> None:
    from tests.test_web_pages import csrf_of, sign_in

    make_token(db)
    sign_in(http)
    page = http.get("/settings/sla")
    assert page.status_code == 200
    form = {
        "csrf": csrf_of(page.text),
        "name": "Weekdays",
        "first_response_minutes": "60",
        "resolution_minutes": "480",
        "warn_before_minutes": "15",
        "timezone": "Asia/Shanghai",
        "hours_mon": "09:00-18:00",
        "hours_fri": "09:00-17:00",
        "holidays": "2026-10-01\n2026-10-02",
        "active": "on",
    }
    assert http.post("/settings/sla", data=form).status_code == 303
    [policy] = list_policies(db)
    assert policy.calendar["hours"] == {"mon": ["09:00", "18:00"], "fri": ["09:00", "17:00"]}
    assert policy.calendar["holidays"] == ["2026-10-01", "2026-10-02"] and policy.active
    broken = http.post("/settings/sla", data={**form, "name": "Broken", "hours_mon": "18:00-09:00"})
    assert broken.status_code == 400 and "must open before it closes" in broken.text
