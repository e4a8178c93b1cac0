"""Tasks and the schedule: tasks linked to records within the scope, the calendar range and to-do lists,
the header's badge, the iCalendar feed (structure checked with the standard library; a revoked link 404s),
and the daily digest received by a real SMTP server (aiosmtpd) through the worker. Both databases, an
injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import LiveServer, free_port
from tests.test_follow_ups import account
from tests.test_messaging import Mailbox, with_relay
from threadline.accounts import create_token, create_user, viewer_for
from threadline.config import Settings
from threadline.errors import Invalid, NotFound
from threadline.jobs import Worker, schedules_for
from threadline.sales import (
    create_task,
    get_task,
    issue_calendar_token,
    list_tasks,
    record_follow_up,
    reminder_count,
    schedule_items,
    send_digests,
    to_do,
    update_task,
    view_range,
    zone,
)
from threadline.storage import Database

T0 = datetime(2026, 3, 2, 9, 0)  # a Monday


@pytest.fixture
def reps(db: Database) -> dict[str, int]:
    return {
        name: create_user(db, f"{name}@example.com", role, "correct horse battery", now=T0).id
        for name, role in (("ann", "agent"), ("bo", "agent"), ("root", "admin"))
    }


def test_tasks_within_the_scope_and_the_calendar_range(
    db: Database, settings: Settings, reps: dict[str, int]
) -> None:
    ann, bo = viewer_for(db, reps["ann"], "agent"), viewer_for(db, reps["bo"], "agent")
    mine = account(db, "Mine", reps["ann"])
    theirs = account(db, "Theirs", reps["bo"])
    task = create_task(
        db,
        ann,
        title="Send the quote",
        due_at=T0 + timedelta(days=2),
        priority="high",
        related_type="account",
        related_id=str(mine),
        now=T0,
    )
    assert task.assignee_id == reps["ann"]
    with pytest.raises(Invalid) as error:
        create_task(db, ann, title="x", related_type="account", related_id=str(theirs), now=T0)
    assert error.value.details == {"field": "related_id"}
    with pytest.raises(Invalid) as error:
        create_task(db, ann, title="x", assignee_id=reps["bo"], now=T0)
    assert error.value.details == {"field": "assignee_id"}
    with pytest.raises(Invalid) as error:
        create_task(db, ann, title="x", priority="urgent", now=T0)
    assert error.value.details == {"field": "priority"}
    with pytest.raises(NotFound):
        get_task(db, bo, task.id)
    assert list_tasks(db, bo) == []
    record_follow_up(
        db,
        settings,
        ann,
        subject_type="account",
        subject_id=str(mine),
        method="phone",
        content="hi",
        next_contact_at=T0 + timedelta(days=1),
        now=T0,
    )
    first, after = view_range("week", (T0 + timedelta(days=3)).date())
    assert (first.isoformat(), after.isoformat()) == ("2026-03-02", "2026-03-09")
    assert view_range("month", T0.date()) == (datetime(2026, 2, 23).date(), datetime(2026, 4, 6).date())
    items = schedule_items(db, reps["ann"], T0 + timedelta(hours=1), T0 + timedelta(days=7))
    assert [(i.kind, i.title) for i in items] == [("reminder", "Mine"), ("task", "Send the quote")]
    # To do on day 3: the reminder (day 1) is overdue, the task is due today; done tasks leave the badge.
    day3 = T0 + timedelta(days=2, hours=-1)
    todo = to_do(db, reps["ann"], now=day3, tz=zone("UTC"))
    assert [i.kind for i in todo.overdue] == ["reminder"] and [i.kind for i in todo.today] == ["task"]
    assert reminder_count(db, reps["ann"], now=day3, tz=zone("UTC")) == 2
    done = update_task(db, ann, task.id, {"status": "done"}, now=day3)
    assert done.done_at == day3
    assert reminder_count(db, reps["ann"], now=day3, tz=zone("UTC")) == 1
    # A newer follow-up on the record settles the reminder.
    record_follow_up(
        db,
        settings,
        ann,
        subject_type="account",
        subject_id=str(mine),
        method="email",
        content="sent",
        now=day3,
    )
    assert reminder_count(db, reps["ann"], now=day3, tz=zone("UTC")) == 0


@pytest.fixture
def sink() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def unfold(text: str) -> list[str]:
    assert text.endswith("\r\n")
    raw = text.split("\r\n")[:-1]
    for line in raw:
        assert len(line.encode()) <= 75, line
    lines: list[str] = []
    for line in raw:
        if line.startswith(" "):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    return lines


def test_the_ics_feed_parses_and_a_revoked_link_404s(
    db: Database, settings: Settings, reps: dict[str, int]
) -> None:
    ann = viewer_for(db, reps["ann"], "agent")
    mine = account(
        db, "A customer with a rather long name, to make the summary line fold; 长名字客户", reps["ann"]
    )
    record_follow_up(
        db,
        settings,
        ann,
        subject_type="account",
        subject_id=str(mine),
        method="phone",
        content="hi",
        next_contact_at=T0 + timedelta(days=1),
        now=T0,
    )
    create_task(db, ann, title="Quote, revised; again", due_at=T0 + timedelta(days=2), now=T0)
    token = create_token(db, "ann@example.com", now=T0)
    with LiveServer(settings, db, clock=lambda: T0) as live, httpx.Client(base_url=live.url) as http:
        made = http.post("/api/v1/calendar-token", headers={"Authorization": f"Bearer {token}"})
        assert made.status_code == 201
        feed = made.json()["token"]
        response = http.get(f"/calendar/{feed}.ics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/calendar")
        lines = unfold(response.text)
        assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
        assert "VERSION:2.0" in lines and any(line.startswith("PRODID:") for line in lines)
        event = lines[lines.index("BEGIN:VEVENT") : lines.index("END:VEVENT")]
        props = dict(line.split(":", 1) for line in event[1:])
        assert props["DTSTART"] == "20260303T090000Z" and props["UID"].startswith("follow-up-")
        assert {"DTSTAMP", "DTEND", "SUMMARY"} <= set(props) and "长名字客户" in props["SUMMARY"]
        todo = lines[lines.index("BEGIN:VTODO") : lines.index("END:VTODO")]
        todo_props = dict(line.split(":", 1) for line in todo[1:])
        assert (
            todo_props["DUE"] == "20260304T090000Z" and todo_props["SUMMARY"] == "Quote\\, revised\\; again"
        )
        assert todo_props["STATUS"] == "NEEDS-ACTION"
        # The UID stays the same from one fetch to the next.
        assert unfold(http.get(f"/calendar/{feed}.ics").text) == lines
        assert (
            http.delete("/api/v1/calendar-token", headers={"Authorization": f"Bearer {token}"}).status_code
            == 204
        )
        assert http.get(f"/calendar/{feed}.ics").status_code == 404
        assert http.get(f"/calendar/{issue_calendar_token(db, reps['ann'], now=T0)}.ics").status_code == 200
        assert http.get(f"/calendar/{feed}x.ics").status_code == 404


def test_the_digest_reaches_a_real_smtp_server_once_a_day(
    db: Database, settings: Settings, reps: dict[str, int], sink: tuple[Mailbox, int]
) -> None:
    box, port = sink
    relay = with_relay(settings, port).model_copy(update={"timezone": "UTC"})
    ann = viewer_for(db, reps["ann"], "agent")
    mine = account(db, "Digest Co", reps["ann"])
    record_follow_up(
        db,
        relay,
        ann,
        subject_type="account",
        subject_id=str(mine),
        method="phone",
        content="hi",
        next_contact_at=T0 + timedelta(days=1, hours=1),
        now=T0,
    )
    early = T0 + timedelta(days=1) - timedelta(hours=3)  # 06:00: before the morning digest
    assert send_digests(db, relay, now=early)["sent"] == 0
    morning = T0 + timedelta(days=1) - timedelta(hours=1, minutes=40)  # 07:20
    schedules = [s for s in schedules_for(relay) if s.kind == "sales.digest"]
    outcomes = Worker(db, relay, clock=lambda: morning, schedules=schedules).run_until_idle()
    assert [o.status for o in outcomes] == ["done"]
    assert [rcpt for rcpt, _ in box.received] == [["ann@example.com"]]
    body = box.received[0][1].get_content()
    assert "Follow up today (1):" in body and "Digest Co" in body
    assert send_digests(db, relay, now=morning + timedelta(hours=1))["sent"] == 0  # once a day
    assert len(box.received) == 1


def test_the_pages_a_rep_uses(db: Database, settings: Settings, reps: dict[str, int]) -> None:
    from tests.test_follow_ups import customer
    from tests.test_web_pages import csrf_of, sign_in

    profile = customer(db, settings, "eve@shop.example")
    account(db, "Pool Co", None, in_pool_since=T0)
    with LiveServer(settings, db, clock=lambda: T0) as live, httpx.Client(base_url=live.url) as http:
        sign_in(http, "root@example.com")
        panel = http.get(f"/customers/{profile}/follow-ups", headers={"HX-Request": "true"})
        assert panel.status_code == 200 and "Record follow-up" in panel.text
        form = {
            "csrf": csrf_of(panel.text),
            "method": "phone",
            "content": "Called Eve",
            "next_contact_at": "2026-03-03T10:00",
        }
        recorded = http.post(f"/customers/{profile}/follow-ups", data=form, headers={"HX-Request": "true"})
        assert "Called Eve" in recorded.text
        for page in (
            "/schedule?view=month",
            "/schedule?view=day&day=2026-03-03",
            "/todo",
            "/tasks",
            "/pool",
            "/schedule/badge",
        ):
            assert http.get(page).status_code == 200, page
        # Tomorrow's reminder is on this week's calendar, linked to the customer; nothing is due today.
        assert f'href="/customers/{profile}"' in http.get("/schedule?view=week").text
        assert ">0</a>" in http.get("/schedule/badge").text
        pool = http.get("/pool")
        assert "Pool Co" in pool.text
