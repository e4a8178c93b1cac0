"""The journey editor through HTTP, as a browser without JavaScript posts it, and once in Chromium with
htmx: create, a bad step's error shown next to its field, fix, activate; steps added, moved and removed;
start from a template; the roles that may change journeys. Real SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.factories import make_token
from tests.test_tracker_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_web_pages import csrf_of, sign_in
from threadline.storage import Database
from threadline.storage.models import Journey

BAD_SMS: dict[str, str] = {
    "name": "Welcome by SMS",
    "trigger_type": "event",
    "trigger_event": "Signed Up",
    "step_count": "2",
    "steps-0-type": "wait",
    "steps-0-key": "wait-1",
    "steps-0-hours": "1",
    "steps-1-type": "send_message",
    "steps-1-key": "hello",
    "steps-1-channel": "sms",
    "steps-1-body_text": "",
    "reentry": "once",
    "purpose": "marketing",
    "op": "save",
}


def error_field(html: str) -> str:
    found = re.search(r'class="error" role="alert" data-field="([^"]*)"', html)
    assert found is not None, html
    return found.group(1)


def test_create_see_the_bad_step_fix_it_and_activate(db: Database, http: httpx.Client) -> None:
    make_token(db)
    sign_in(http)
    page = http.get("/journeys/new")
    assert page.status_code == 200 and 'name="trigger_type"' in page.text
    csrf = csrf_of(page.text)

    bad = http.post("/journeys/new", data={**BAD_SMS, "csrf": csrf})
    assert bad.status_code == 400 and error_field(bad.text) == "steps[1].body_text"
    # Next to its field: the error follows the text area of step 2, and the values stay as typed.
    area = bad.text.index('name="steps-1-body_text"')
    assert area < bad.text.index('data-field="steps[1].body_text"') < bad.text.index('name="steps-1-next"')
    assert 'value="Welcome by SMS"' in bad.text and 'aria-invalid="true"' in bad.text
    with db.read() as session:
        assert session.scalars(select(Journey)).all() == []

    fixed = {**BAD_SMS, "steps-1-body_text": "Welcome, {{ traits.first_name }}!", "csrf": csrf}
    saved = http.post("/journeys/new", data=fixed, follow_redirects=False)
    assert saved.status_code == 303
    location = saved.headers["location"]
    journey_id = int(location.split("/")[2].split("?")[0])
    with db.read() as session:
        row = session.get(Journey, journey_id)
        assert row is not None
        assert (row.status, row.trigger, row.steps[1]) == (
            "draft",
            {"type": "event", "event": "Signed Up"},
            {
                "key": "hello",
                "type": "send_message",
                "channel": "sms",
                "body_text": fixed["steps-1-body_text"],
            },
        )

    activated = http.post(f"/journeys/{journey_id}/activate", data={"csrf": csrf}, follow_redirects=False)
    assert activated.status_code == 303
    shown = http.get(f"/journeys/{journey_id}")
    assert re.search(r"data-status>\s*active", shown.text) and 'data-step="hello"' in shown.text
    # Active: the form is read-only until paused, and a save is refused naming the status.
    refused = http.post(f"/journeys/{journey_id}", data=fixed)
    assert refused.status_code == 400 and error_field(refused.text) == "status"
    http.post(f"/journeys/{journey_id}/pause", data={"csrf": csrf})
    renamed = http.post(
        f"/journeys/{journey_id}", data={**fixed, "name": "Welcome SMS"}, follow_redirects=False
    )
    assert renamed.status_code == 303


def test_steps_are_added_moved_and_removed_without_saving(db: Database, http: httpx.Client) -> None:
    make_token(db)
    sign_in(http)
    csrf = csrf_of(http.get("/journeys/new").text)
    form: dict[str, Any] = {**BAD_SMS, "csrf": csrf, "op": "add", "new_step_type": "add_loyalty_points"}
    added = http.post("/journeys/new", data=form)
    assert added.status_code == 200 and 'name="steps-2-points"' in added.text
    assert 'name="steps-2-key" value="add-loyalty-points-3"' in added.text

    moved = http.post("/journeys/new", data={**BAD_SMS, "csrf": csrf, "op": "up-1"})
    assert moved.text.index('value="hello"') < moved.text.index('value="wait-1"')
    removed = http.post("/journeys/new", data={**BAD_SMS, "csrf": csrf, "op": "remove-0"})
    assert 'value="wait-1"' not in removed.text and 'name="steps-0-body_text"' in removed.text
    # A new trigger type shows its own fields (htmx asks for the form alone).
    date = http.post(
        "/journeys/new",
        data={**BAD_SMS, "csrf": csrf, "op": "refresh", "trigger_type": "date"},
        headers={"HX-Request": "true"},
    )
    assert date.text.startswith("<form") and 'name="trigger_offset_days"' in date.text
    with db.read() as session:
        assert session.scalars(select(Journey)).all() == []


def test_start_from_a_template_and_edit_it_as_json(db: Database, http: httpx.Client) -> None:
    make_token(db)
    sign_in(http)
    listing = http.get("/journeys")
    assert 'value="birthday_offer"' in listing.text
    csrf = csrf_of(listing.text)
    made = http.post(
        "/journeys/from-template", data={"csrf": csrf, "template": "birthday_offer"}, follow_redirects=True
    )
    assert made.status_code == 200 and 'name="trigger_trait" value="birthday"' in made.text
    journey_id = int(str(made.url).rstrip("/").split("/")[-1])

    bad_json = http.post(f"/journeys/{journey_id}", data={"csrf": csrf, "op": "save_json", "definition": "{"})
    assert bad_json.status_code == 400 and error_field(bad_json.text) == "definition"
    definition = (
        '{"name": "Birthday", "trigger": {"type": "date", "trait": "birthday", "at_hour": 25},'
        ' "steps": [{"key": "w", "type": "wait", "days": 1}], "reentry": "once"}'
    )
    wrong = http.post(
        f"/journeys/{journey_id}", data={"csrf": csrf, "op": "save_json", "definition": definition}
    )
    assert wrong.status_code == 400 and error_field(wrong.text) == "trigger.at_hour"
    right = definition.replace('"at_hour": 25', '"at_hour": 8')
    saved = http.post(
        f"/journeys/{journey_id}",
        data={"csrf": csrf, "op": "save_json", "definition": right},
        follow_redirects=True,
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    with db.read() as session:
        row = session.get(Journey, journey_id)
        assert row is not None and (row.name, row.trigger["at_hour"]) == ("Birthday", 8)


def test_only_admins_and_managers_change_journeys(db: Database, http: httpx.Client) -> None:
    make_token(db, "agent@example.com", "agent")
    sign_in(http, "agent@example.com")
    listing = http.get("/journeys")
    assert listing.status_code == 200 and "/journeys/from-template" not in listing.text
    assert http.get("/journeys/new").status_code == 403
    refused = http.post("/journeys/new", data={**BAD_SMS, "csrf": csrf_of(listing.text)})
    assert refused.status_code == 403


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}")
def test_in_a_browser_the_editor_adds_a_step_and_shows_the_error_in_place(
    db: Database, server: LiveServer
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    make_token(db)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="en-US")
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server.url}/journeys/new")
            page.fill("input[name=email]", "admin@example.com")
            page.fill("input[name=password]", "correct horse battery")
            page.click("form.login button[type=submit]")
            page.wait_for_url(f"{server.url}/journeys/new")
            page.fill("#journey_name", "Loyal welcome")
            page.fill("#trigger_event", "Signed Up")
            page.select_option("#new_step_type", "add_loyalty_points")
            page.click("button[value=add]")  # htmx swaps the form; the name typed stays
            page.wait_for_selector("input[name='steps-1-points']")
            assert page.input_value("#journey_name") == "Loyal welcome"
            page.fill("input[name='steps-1-points']", "lots")
            page.click("button[value=save]")
            alert = page.wait_for_selector("[data-field='steps[1].points']")
            assert alert is not None and "whole points" in alert.inner_text()
            page.fill("input[name='steps-1-points']", "100")
            page.click("button[value=save]")
            page.wait_for_selector("button[name=activate]")
            page.click("button[name=activate]")
            page.wait_for_selector("[data-status]:has-text('active')")
            assert errors == []
        finally:
            browser.close()
