"""Quiet hours in each customer's time zone and frequency caps, through send_message and the worker's
job, with a movable clock and a real SMTP server (aiosmtpd); a journey's held email goes out once, later.
Real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from pydantic import ValidationError
from sqlalchemy import select

from tests import test_journeys as journeys
from tests.conftest import free_port
from tests.test_messaging import (
    Mailbox,
    MovableClock,
    ask,
    customer,
    row,
    run_worker,
    say,
    timeline_events,
    with_relay,
)
from threadline.config import Settings
from threadline.jobs import list_jobs
from threadline.messaging import QUEUED, REFUSED, SENT
from threadline.messaging.quiet_hours import customer_zone, quiet_hold
from threadline.storage import Database
from threadline.storage.models import OutboundMessage

# 2026-03-02 14:00 UTC: 22:00 in Shanghai (quiet), 09:00 in New York (EST, before 8 March's DST).
EVENING_IN_SHANGHAI = datetime(2026, 3, 2, 14, 0)
SHANGHAI_MORNING = datetime(2026, 3, 3, 0, 0)  # 08:00 in Shanghai


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
    return with_relay(settings, mailbox[1]).model_copy(
        update={"quiet_hours": "21:00-08:00", "timezone": "Europe/London"}
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(EVENING_IN_SHANGHAI)


def granted(db: Database, settings: Settings, user_id: str, **traits: str) -> str:
    profile_id = customer(db, settings, user_id, email=f"{user_id}@example.com", first_name=user_id, **traits)
    say(db, profile_id, datetime(2026, 2, 1), "marketing", "all", "granted")
    return profile_id


def recipients(box: Mailbox) -> list[str]:
    return [rcpt[0] for rcpt, _ in box.received]


def test_marketing_waits_for_the_morning_in_each_customers_time_zone(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    li = granted(db, mail, "li", timezone="Asia/Shanghai")
    sam = granted(db, mail, "sam", timezone="America/New_York")
    held = ask(db, mail, li, now=clock())
    at_once = ask(db, mail, sam, now=clock())
    answer = ask(db, mail, li, "service", subject="Your order", body_text="It ships.", now=clock())

    waiting = row(db, held)
    assert (waiting.status, waiting.send_after) == (QUEUED, SHANGHAI_MORNING)
    assert "quiet hours (21:00-08:00 Asia/Shanghai) until 2026-03-03 08:00 their time" in (
        waiting.reason or ""
    )
    assert row(db, at_once).send_after is None
    jobs = {job.payload["message_id"]: job.run_at for job in list_jobs(db, kind="messaging.send")}
    assert jobs[held] == SHANGHAI_MORNING and jobs[at_once] == clock()

    run_worker(db, mail, clock)
    assert sorted(recipients(box)) == ["li@example.com", "sam@example.com"]  # the reply, and New York's
    assert (row(db, answer).status, row(db, at_once).status, row(db, held).status) == (SENT, SENT, QUEUED)

    clock.now = SHANGHAI_MORNING - timedelta(minutes=1)
    run_worker(db, mail, clock)
    assert len(box.received) == 2
    clock.now = SHANGHAI_MORNING
    run_worker(db, mail, clock)
    assert row(db, held).status == SENT and row(db, held).sent_at == SHANGHAI_MORNING
    assert len(box.received) == 3
    clock.advance(days=1)
    run_worker(db, mail, clock)
    assert len(box.received) == 3

    # 02:30 UTC on 3 March is 21:30 in New York: held until 08:00 there, 13:00 UTC.
    clock.now = datetime(2026, 3, 3, 2, 30)
    late = ask(db, mail, sam, now=clock())
    assert row(db, late).send_after == datetime(2026, 3, 3, 13, 0)


def test_a_bad_time_zone_trait_falls_back_to_the_workspaces_without_a_crash(
    db: Database, mail: Settings, clock: MovableClock
) -> None:
    shanghai_workspace = mail.model_copy(update={"timezone": "Asia/Shanghai"})
    mars = granted(db, mail, "mars", timezone="Mars/Olympus_Mons")
    held = ask(db, shanghai_workspace, mars, now=clock())  # 22:00 by the workspace's zone
    assert row(db, held).send_after == SHANGHAI_MORNING
    in_london = ask(db, mail, mars, now=clock())
    assert row(db, in_london).send_after is None  # 14:00 in London
    assert customer_zone({"timezone": 8}, mail.model_copy(update={"timezone": "Nowhere/Atall"})).key == "UTC"
    assert customer_zone({"timezone": " America/New_York "}, mail).key == "America/New_York"
    # Quiet hours within one day, and none for service.
    daytime = mail.model_copy(update={"quiet_hours": "01:00-06:00", "timezone": "UTC"})
    hold = quiet_hold(daytime, "marketing", {}, datetime(2026, 3, 2, 5, 59))
    assert hold is not None and hold.until == datetime(2026, 3, 2, 6, 0)
    assert quiet_hold(daytime, "marketing", {}, datetime(2026, 3, 2, 6, 0)) is None
    assert quiet_hold(daytime, "service", {}, datetime(2026, 3, 2, 3, 0)) is None


def test_a_message_that_reaches_the_worker_in_quiet_hours_is_held_again_and_sent_once(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    li = granted(db, mail, "li", timezone="Asia/Shanghai")
    clock.now = EVENING_IN_SHANGHAI - timedelta(hours=2)  # 20:00 in Shanghai: not quiet yet
    message_id = ask(db, mail, li, now=clock())
    assert row(db, message_id).send_after is None
    clock.now = EVENING_IN_SHANGHAI  # the worker was busy until 22:00
    run_worker(db, mail, clock)
    assert box.received == [] and row(db, message_id).send_after == SHANGHAI_MORNING
    clock.now = SHANGHAI_MORNING
    run_worker(db, mail, clock)
    clock.advance(hours=1)
    run_worker(db, mail, clock)
    assert recipients(box) == ["li@example.com"] and row(db, message_id).status == SENT


def test_frequency_caps_refuse_marketing_over_the_cap_and_never_service(
    db: Database, mail: Settings, clock: MovableClock
) -> None:
    capped = mail.model_copy(update={"quiet_hours": "", "frequency_caps": ["1/1d", "2/7d"]})
    ann = granted(db, capped, "ann", phone="+14155550100")
    start = clock()
    first = ask(db, capped, ann, now=start)
    second = ask(db, capped, ann, now=start + timedelta(hours=1))
    assert row(db, first).status == QUEUED
    refused = row(db, second)
    assert refused.status == REFUSED
    assert refused.reason == (
        "frequency cap: the customer already has 1 marketing, analytics or personalisation message by "
        "email in 1 day (cap 1/1d)"
    )
    refusal = [e for e in timeline_events(db, ann) if e["event"] == "Message Refused"]
    assert refusal[0]["properties"]["reason"] == refused.reason
    assert list_jobs(db, kind="messaging.send")[0].payload["message_id"] == first  # no job for the refusal
    service = ask(
        db, capped, ann, "service", subject="Order", body_text="Shipped", now=start + timedelta(hours=2)
    )
    assert row(db, service).status == QUEUED
    sms = ask(db, capped, ann, channel="sms", subject="", body_text="Sale", now=start + timedelta(hours=2))
    assert row(db, sms).status == QUEUED  # per channel

    assert row(db, ask(db, capped, ann, now=start + timedelta(days=1, minutes=1))).status == QUEUED
    third = row(db, ask(db, capped, ann, now=start + timedelta(days=2, minutes=2)))
    assert third.status == REFUSED and (third.reason or "").endswith("in 7 days (cap 2/7d)")
    assert row(db, ask(db, capped, ann, now=start + timedelta(days=7, minutes=3))).status == QUEUED


def test_the_cap_is_checked_again_when_sending(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    """Two messages asked for before a cap was set (or at the same moment): only one goes out."""
    box, _ = mailbox
    uncapped = mail.model_copy(update={"quiet_hours": ""})
    ann = granted(db, uncapped, "ann")
    first, second = ask(db, uncapped, ann, now=clock()), ask(db, uncapped, ann, now=clock())
    run_worker(db, uncapped.model_copy(update={"frequency_caps": ["1/1d"]}), clock)
    assert (row(db, first).status, row(db, second).status) == (SENT, REFUSED)
    assert (row(db, second).reason or "").startswith("frequency cap")
    assert len(box.received) == 1


def test_pacing_settings_are_checked_when_they_load() -> None:
    assert Settings(quiet_hours=" 21:00 - 08:00 ").quiet_hours == "21:00-08:00"
    assert Settings(frequency_caps="1/1d, 3/7d").frequency_caps == ["1/1d", "3/7d"]  # type: ignore[arg-type]
    for bad in ("9pm-8am", "21:00-21:00", "25:00-08:00"):
        with pytest.raises(ValidationError, match="THREADLINE_QUIET_HOURS"):
            Settings(quiet_hours=bad)
    for caps in ("3 per week", "0/7d", "3/0d"):
        with pytest.raises(ValidationError, match="THREADLINE_FREQUENCY_CAPS"):
            Settings(frequency_caps=caps)  # type: ignore[arg-type]


def test_a_journey_email_asked_for_in_quiet_hours_goes_out_once_in_the_morning(
    db: Database, mail: Settings, mailbox: tuple[Mailbox, int], clock: MovableClock
) -> None:
    box, _ = mailbox
    journey_clock = journeys.MovableClock(EVENING_IN_SHANGHAI - timedelta(hours=2))
    journeys.abandoned_cart(db, journey_clock)
    li = journeys.customer(db, mail, "li", email="li@example.com", first_name="Li", timezone="Asia/Shanghai")
    journeys.consent(db, li, "granted", journey_clock())
    journeys.track(db, mail, "li", "Checkout Started", journey_clock(), products=journeys.CART)
    journeys.run(db, mail, journey_clock)
    journey_clock.now = EVENING_IN_SHANGHAI  # the hour's wait ends at 21:00 in Shanghai
    journeys.run(db, mail, journey_clock)
    with db.read() as session:
        messages = list(session.scalars(select(OutboundMessage)))
    assert [(m.status, m.send_after, m.origin) for m in messages] == [(QUEUED, SHANGHAI_MORNING, "journey")]
    assert box.received == []
    for hours in (4, 6, 10, 30):  # the journey's ticks and the worker through the night and after
        journey_clock.now = EVENING_IN_SHANGHAI + timedelta(hours=hours)
        journeys.run(db, mail, journey_clock)
    assert recipients(box) == ["li@example.com"]
    assert [e.status for e in journeys.enrollments(db)] == ["completed"]
