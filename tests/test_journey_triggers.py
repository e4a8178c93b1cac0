"""Journey triggers beyond events: a trait's change (enrolled in the write path's transaction, and not by
a write that changes nothing watched), leaving a segment, and a date trait's anniversary at an hour of
the customer's own day (two time zones, an injected clock). Real SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.factories import SYSTEM, lookup_profile, make_source, send, timeline_page
from tests.test_journeys import MovableClock, enrollments, run
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.journeys import create_from_template, create_journey, set_status
from threadline.segments import create_segment, recompute
from threadline.storage import Database

T0 = datetime(2026, 3, 1, 9, 0)
_MESSAGES = itertools.count()


def identify(db: Database, settings: Settings, user_id: str, at: datetime, **traits: Any) -> str:
    message = {
        "type": "identify",
        "userId": user_id,
        "traits": traits,
        "timestamp": at.isoformat() + "Z",
        "messageId": f"m-{next(_MESSAGES)}",
    }
    send(db, settings, make_source(db, f"crm-{next(_MESSAGES)}"), message)
    return lookup_profile(db, "user_id", user_id)


def journey(db: Database, clock: MovableClock, name: str, trigger: dict[str, Any], **rule: Any) -> int:
    created = create_journey(
        db,
        SYSTEM,
        name=name,
        trigger=trigger,
        steps=[{"key": "note", "type": "record_event", "event": f"{name} Noted"}],
        now=clock(),
        **rule,
    )
    set_status(db, SYSTEM, created.id, "active", now=clock())
    return created.id


def test_a_trait_change_enrols_on_the_change_and_not_on_an_unrelated_write(
    db: Database, settings: Settings
) -> None:
    clock = MovableClock(T0)
    upgrade = journey(db, clock, "Upgrade", {"type": "trait", "trait": "plan", "from": "free", "to": "pro"})
    any_plan = journey(db, clock, "Plan", {"type": "trait", "trait": "plan"}, reentry="every", reentry_days=0)

    ivy = identify(db, settings, "ivy", T0 + timedelta(minutes=1), plan="free", city="Leeds")
    assert [e.context["event"] for e in enrollments(db, journey_id=any_plan)] == [
        {"trait": "plan", "from": None, "to": "free"}  # set for the first time: a change from nothing
    ]
    assert enrollments(db, journey_id=upgrade) == []
    identify(db, settings, "ivy", T0 + timedelta(minutes=2), city="York")  # another trait
    identify(db, settings, "ivy", T0 + timedelta(minutes=3), plan="free")  # the same value again
    assert len(enrollments(db)) == 1

    clock.advance(minutes=5)
    run(db, settings, clock)  # the first enrollment completes, so "every" may enter again
    identify(db, settings, "ivy", T0 + timedelta(minutes=10), plan="pro")
    [entered] = enrollments(db, journey_id=upgrade)
    assert (entered.profile_id, entered.context["event"]) == (
        ivy,
        {"trait": "plan", "from": "free", "to": "pro"},
    )
    assert len(enrollments(db, journey_id=any_plan)) == 2

    clock.advance(minutes=10)
    run(db, settings, clock)
    names = [e["event"] for e in timeline_page(db, ivy)["events"]]
    assert names.count("Upgrade Noted") == 1 and names.count("Plan Noted") == 2


def test_a_trait_change_before_activation_or_in_a_paused_journey_enrols_no_one(
    db: Database, settings: Settings
) -> None:
    clock = MovableClock(T0)
    watching = journey(db, clock, "Tier", {"type": "trait", "trait": "tier"})
    identify(db, settings, "jo", T0 - timedelta(days=1), tier="gold")  # from before the activation
    set_status(db, SYSTEM, watching, "paused", now=clock())
    identify(db, settings, "jo", T0 + timedelta(minutes=1), tier="silver")
    assert enrollments(db) == []


def test_leaving_a_segment_enrols(db: Database, settings: Settings) -> None:
    clock = MovableClock(T0)
    kim = identify(db, settings, "kim", T0 - timedelta(days=1), plan="pro")
    identify(db, settings, "lee", T0 - timedelta(days=1), plan="pro")
    pro = create_segment(
        db,
        SYSTEM,
        name="Pro",
        definition={"type": "trait", "key": "plan", "op": "eq", "value": "pro"},
        now=T0,
    )
    left = journey(db, clock, "Downgraded", {"type": "segment", "segment_id": pro.id, "on": "leave"})
    entered = journey(db, clock, "Upgraded", {"type": "segment", "segment_id": pro.id})
    clock.advance(minutes=1)
    recompute(db, pro.id, now=clock(), settings=settings)
    run(db, settings, clock)
    assert enrollments(db, journey_id=left) == [] and len(enrollments(db, journey_id=entered)) == 2

    identify(db, settings, "kim", clock() + timedelta(minutes=1), plan="free")
    clock.advance(minutes=2)
    recompute(db, pro.id, now=clock(), settings=settings)
    run(db, settings, clock)
    assert [(e.profile_id, e.status) for e in enrollments(db, journey_id=left)] == [(kim, "completed")]
    assert "Downgraded Noted" in [e["event"] for e in timeline_page(db, kim)["events"]]


def test_a_birthday_enrols_at_nine_on_the_day_in_each_customers_time_zone(
    db: Database, settings: Settings
) -> None:
    workspace = settings.model_copy(update={"timezone": "America/New_York"})
    clock = MovableClock(datetime(2026, 3, 14, 0, 0))
    template = create_from_template(db, SYSTEM, "birthday_offer", now=clock())
    assert template.trigger == {"type": "date", "trait": "birthday", "at_hour": 9, "offset_days": 0}
    set_status(db, SYSTEM, template.id, "active", now=clock())
    before = clock() - timedelta(days=10)
    tokyo = identify(
        db, workspace, "aiko", before, birthday="1990-03-15", timezone="Asia/Tokyo", email="a@x.jp"
    )
    new_york = identify(db, workspace, "ben", before, birthday="1985-03-15T00:00:00Z", email="b@x.com")
    identify(db, workspace, "cho", before, birthday="1992-03-16", timezone="Asia/Tokyo", email="c@x.jp")
    identify(db, workspace, "dee", before, email="d@x.com")  # no birthday: never

    def enrolled() -> list[str]:
        return sorted(e.profile_id for e in enrollments(db, journey_id=template.id))

    for moment, expected in [
        (datetime(2026, 3, 14, 23, 30), []),  # 08:30 on the 15th in Tokyo
        (datetime(2026, 3, 15, 0, 5), [tokyo]),  # 09:05 in Tokyo, 20:05 on the 14th in New York
        (datetime(2026, 3, 15, 12, 30), [tokyo]),  # 08:30 in New York (summer time since March 8)
        (datetime(2026, 3, 15, 13, 5), sorted([tokyo, new_york])),  # 09:05 in New York
        (datetime(2026, 3, 15, 13, 40), sorted([tokyo, new_york])),  # once a day, once an hour
    ]:
        clock.now = moment
        run(db, workspace, clock)
        assert enrolled() == expected, moment
    clock.now = datetime(2026, 3, 16, 0, 10)
    run(db, workspace, clock)
    assert len(enrolled()) == 3  # cho, on the 16th in Tokyo


def test_three_days_before_and_a_late_activation(db: Database, settings: Settings) -> None:
    clock = MovableClock(datetime(2026, 5, 7, 12, 0))  # activated after 09:00 UTC on the 7th
    early = journey(
        db, clock, "Before", {"type": "date", "trait": "renewal", "at_hour": 9, "offset_days": -3}
    )
    identify(db, settings, "eve", clock() - timedelta(days=1), renewal="2024-05-10")
    identify(db, settings, "fay", clock() - timedelta(days=1), renewal="2024-05-11")
    run(db, settings, clock)
    assert enrollments(db, journey_id=early) == []  # eve's day began before the journey was on
    clock.now = datetime(2026, 5, 8, 9, 1)
    run(db, settings, clock)
    assert [e.context["event"]["day"] for e in enrollments(db, journey_id=early)] == ["2026-05-08"]


@pytest.mark.parametrize(
    ("trigger", "field"),
    [
        ({"type": "segment", "segment_id": 1, "on": "stay"}, "trigger.on"),
        ({"type": "trait"}, "trigger.trait"),
        ({"type": "date", "trait": "birthday", "at_hour": 24}, "trigger.at_hour"),
        ({"type": "date", "trait": "birthday", "offset_days": 400}, "trigger.offset_days"),
    ],
)
def test_triggers_are_checked_naming_the_field(db: Database, trigger: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as raised:
        create_journey(
            db, SYSTEM, name="x", trigger=trigger, steps=[{"key": "a", "type": "wait", "days": 1}], now=T0
        )
    assert raised.value.details == {"field": field}
