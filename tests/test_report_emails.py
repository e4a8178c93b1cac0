"""Scheduled Insight reports: each recipient's copy once a week at its hour in their time zone, through a
real SMTP server (aiosmtpd), with the figures of their own data scope; the settings page."""

# ruff: noqa: F811  (pytest fixtures imported from other test modules are parameters here)
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from tests.test_insight import shop  # noqa: F401  (the hand-made data set, a fixture)
from tests.test_messaging import Mailbox, mailbox, with_relay  # noqa: F401  (a fixture)
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import list_users
from threadline.analytics import list_report_schedules, save_report_schedule, send_scheduled_reports
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.jobs import Worker, schedules_for
from threadline.storage import Database

MONDAY = datetime(2024, 4, 1)  # the report covers March 2024 (31 days up to yesterday)


def user_ids(db: Database) -> dict[str, int]:
    return {u.email: u.id for u in list_users(db)}


def copies(box: Mailbox) -> dict[str, Any]:
    return {rcpt[0]: message for rcpt, message in box.received}


def test_each_recipient_gets_their_own_scope_once_a_week_at_their_hour(
    db: Database,
    settings: Settings,
    shop: dict[str, Any],
    mailbox: tuple[Mailbox, int],
) -> None:
    box, port = mailbox
    relay = with_relay(settings, port).model_copy(update={"timezone": "UTC"})
    users = user_ids(db)
    save_report_schedule(
        db,
        name="Weekly overview",
        pages=["overview"],
        recipients=[users["admin@example.com"], users["agent@example.com"]],
        weekday=0,
        hour=8,
        days=31,
        user_id=users["admin@example.com"],
        now=MONDAY,
    )
    assert send_scheduled_reports(db, relay, now=MONDAY + timedelta(hours=7, minutes=59))["sent"] == 0
    at_eight = MONDAY + timedelta(hours=8, minutes=25)
    schedules = [s for s in schedules_for(relay) if s.kind == "analytics.report-emails"]
    outcomes = Worker(db, relay, clock=lambda: at_eight, schedules=schedules).run_until_idle()
    assert [(o.kind, o.status) for o in outcomes] == [("analytics.report-emails", "done")]
    got = copies(box)
    assert set(got) == {"admin@example.com", "agent@example.com"}
    admin, agent = got["admin@example.com"], got["agent@example.com"]
    assert admin["Subject"] == "Weekly overview (2024-03-01 to 2024-03-31)"
    admin_text = admin.get_body(("plain",)).get_content()
    agent_text = agent.get_body(("plain",)).get_content()
    # March: everyone's revenue 320 (alice 50 + 70, bob 200); the agent owns bob and dave: 200.
    assert re.search(r"^revenue +320\.00$", admin_text, re.M)
    assert re.search(r"^revenue +200\.00$", agent_text, re.M)
    [attachment] = list(agent.iter_attachments())
    assert attachment.get_filename() == "Weekly overview 2024-03-31.xlsx"
    book = load_workbook(io.BytesIO(attachment.get_content()))
    customers = [tuple(r) for r in book["customers"].iter_rows(values_only=True)]
    assert customers == [("measure", "customers"), ("total", 2), ("new", 1), ("active", 1)]

    # Once a week: later runs the same week send nothing; the next Monday sends again.
    assert send_scheduled_reports(db, relay, now=at_eight + timedelta(hours=30))["sent"] == 0
    assert send_scheduled_reports(db, relay, now=at_eight + timedelta(days=7))["sent"] == 2
    assert len(box.received) == 4


def test_a_recipient_in_shanghai_gets_it_at_eight_there(
    db: Database,
    settings: Settings,
    shop: dict[str, Any],
    mailbox: tuple[Mailbox, int],
) -> None:
    from sqlalchemy import update

    from threadline.storage.models import User

    box, port = mailbox
    relay = with_relay(settings, port).model_copy(update={"timezone": "UTC"})
    users = user_ids(db)
    with db.write() as session:
        agent = update(User).where(User.email == "agent@example.com")
        session.execute(agent.values(timezone="Asia/Shanghai"))
    save_report_schedule(
        db, name="Cohorts", pages=["cohorts"], recipients=[users["agent@example.com"]], weekday=0, hour=8,
        user_id=None, now=MONDAY,
    )  # fmt: skip
    # 00:30 UTC on Monday is 08:30 in Shanghai.
    assert send_scheduled_reports(db, relay, now=MONDAY + timedelta(minutes=30))["sent"] == 1
    assert [rcpt for rcpt, _ in box.received] == [["agent@example.com"]]


def test_bad_schedules_name_the_field(db: Database, shop: dict[str, Any]) -> None:
    admin = user_ids(db)["admin@example.com"]
    good: dict[str, Any] = {"name": "R", "pages": ["overview"], "recipients": [admin], "weekday": 0}
    good["hour"] = 8
    for change, field in (
        ({"name": " "}, "name"),
        ({"pages": []}, "pages"),
        ({"pages": ["overview", "secrets"]}, "pages"),
        ({"recipients": [99999]}, "recipients"),
        ({"recipients": ["x"]}, "recipients"),
        ({"weekday": 7}, "weekday"),
        ({"hour": "25"}, "hour"),
        ({"days": 0}, "days"),
    ):
        with pytest.raises(Invalid) as problem:
            save_report_schedule(db, **{**good, **change}, user_id=admin, now=MONDAY)
        assert problem.value.details == {"field": field}, change
    assert list_report_schedules(db) == []


def test_the_settings_page(http: httpx.Client, db: Database, shop: dict[str, Any]) -> None:
    users = user_ids(db)
    sign_in(http)
    page = http.get("/settings/reports")
    assert page.status_code == 200 and "No scheduled reports yet." in page.text
    form = {
        "csrf": csrf_of(page.text),
        "name": "Monday numbers",
        "pages": ["overview", "portrait"],
        "recipients": [str(users["agent@example.com"])],
        "weekday": "0",
        "hour": "9",
        "days": "7",
    }
    saved = http.post("/settings/reports", data=form)
    assert saved.status_code == 303
    listed = http.get(saved.headers["location"]).text
    assert "Monday numbers" in listed and "Report saved." in listed
    [schedule] = list_report_schedules(db)
    assert schedule.pages == ("overview", "portrait") and schedule.hour == 9
    bad = http.post("/settings/reports", data={**form, "hour": "24"})
    assert bad.status_code == 400 and "hour: a whole number from 0 to 23" in bad.text
    assert 'value="Monday numbers"' in bad.text  # what was typed stays
    # No relay in these settings: "send me a copy" says sending is off instead of failing.
    sent = http.post(f"/settings/reports/{schedule.id}/send", data={"csrf": form["csrf"]})
    assert "Sending is off" in http.get(sent.headers["location"]).text
    gone = http.post(f"/settings/reports/{schedule.id}/delete", data={"csrf": form["csrf"]})
    assert gone.status_code == 303 and list_report_schedules(db) == []

    http.cookies.clear()
    sign_in(http, "agent@example.com")
    assert http.get("/settings/reports").status_code == 403
    refused = http.post("/settings/reports", data={**form, "csrf": csrf_of(http.get("/customers").text)})
    assert refused.status_code == 403 and list_report_schedules(db) == []
