"""The workspace in a real Chromium against a live server and demo data: what the admin and an agent see.

The admin signs in, finds a demo customer by the last digits of a phone number, reads one timeline across
channels (scrolling loads the rest), switches to 中文, and the page still fits a phone; an agent who owns
one customer gets a 404 for another's URL, and the attempt is in the audit log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.factories import make_token
from tests.test_tracker_browser import CHROMIUM, CHROMIUM_ARGS
from threadline.accounts import viewer_for
from threadline.config import Settings
from threadline.demo import generate_demo
from threadline.privacy import search_audit
from threadline.profiles import assign_owner
from threadline.storage import Database
from threadline.storage.models import Profile, User

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]

sync_api = pytest.importorskip("playwright.sync_api")
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def demo(db: Database, settings: Settings) -> list[Profile]:
    """30 demo customers; the live profiles with a phone, most channels first."""
    make_token(db, "admin@example.com", "admin")
    generate_demo(db, settings, customers=30, seed=7, locale="en_US", progress=False)
    with db.read() as session:
        live = session.scalars(select(Profile).where(Profile.merged_into.is_(None))).all()
    with_phone = [p for p in live if (p.traits or {}).get("phone")]
    return sorted(with_phone, key=lambda p: (-len(p.channels or {}), -p.event_count))


def sign_in(browser: Any, server: LiveServer, email: str, **options: Any) -> tuple[Any, list[str]]:
    """A new browser context signed in as `email`, and the list its page's script errors land in."""
    context = browser.new_context(locale="en-US", **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/customers")
    assert "/login" in page.url
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{server.url}/customers")
    return page, errors


def timeline_channels(page: Any) -> set[str]:
    classes: list[str] = page.eval_on_selector_all(
        ".timeline li .icon .ch", "items => items.map(i => i.className)"
    )
    return {c.split("ch-")[1] for c in classes}


def test_admin_finds_a_customer_by_phone_and_reads_one_timeline_in_chinese(
    browser: Any, server: LiveServer, demo: list[Profile], tmp_path: Path
) -> None:
    customer = demo[0]
    digits = customer.traits["phone"][-7:]
    page, errors = sign_in(browser, server, "admin@example.com", viewport={"width": 1280, "height": 900})

    page.fill("input[name=q]", digits)
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"**/customers?q={digits}*")
    page.click(f'a[href="/customers/{customer.id}"]')
    page.wait_for_url(f"**/customers/{customer.id}")
    assert page.locator("h1").first.inner_text().startswith(customer.display_name or "")
    assert len(timeline_channels(page)) >= 3  # one timeline across channels

    # The first page holds 50 events; scrolling to its end brings the rest in place, without a reload.
    first = page.locator(".timeline li").count()
    if customer.event_count > 50:
        # Each page ends in a "more" row that loads the next when it scrolls into view; on a busy
        # machine the row may be revealed before htmx is listening, so scroll to the last one until done.
        deadline = time.monotonic() + 60
        while page.locator(".timeline li:not(.more)").count() < customer.event_count:
            assert time.monotonic() < deadline, "the timeline did not load to its end"
            more = page.locator(".timeline li.more")
            try:
                if more.count():
                    more.last.scroll_into_view_if_needed(timeout=2_000)
            except PlaywrightError:  # replaced by the page it was loading meanwhile: look again
                pass
            page.wait_for_timeout(200)
        assert page.locator(".timeline li:not(.more)").count() == customer.event_count
        assert page.locator(".timeline li.more").count() == 0 and page.url.endswith(customer.id)
    else:
        assert first == customer.event_count
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=tmp_path / "customer-360-en.png")

    page.click("button[name=locale][value=zh_Hans_CN]")
    page.wait_for_selector("html[lang=zh-Hans-CN]")
    assert page.url.endswith(f"/customers/{customer.id}")
    assert page.locator("header nav a").first.inner_text() == "客户"
    headings = page.locator("h2").all_inner_texts()
    assert "时间线" in headings and "属性" in headings

    # A phone-sized screen: everything fits the width, nothing scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=tmp_path / "customer-360-zh-390.png")
    page.locator("#timeline").scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "customer-360-zh-390-timeline.png")
    assert errors == []
    page.context.close()


def test_an_agent_cannot_open_another_customer_by_url(
    browser: Any, server: LiveServer, db: Database, demo: list[Profile]
) -> None:
    mine, theirs = demo[0], demo[1]
    make_token(db, "agent@example.com", "agent")
    with db.read() as session:
        ids = {u.email: u.id for u in session.scalars(select(User))}
    assign_owner(db, viewer_for(db, ids["admin@example.com"], "admin"), [mine.id], ids["agent@example.com"])

    page, errors = sign_in(browser, server, "agent@example.com")
    listed = page.eval_on_selector_all(
        "table.list a[href^='/customers/']", "links => links.map(a => a.getAttribute('href'))"
    )
    assert set(listed) == {f"/customers/{mine.id}"}
    forged = page.goto(f"{server.url}/customers/{theirs.id}")
    assert forged is not None and forged.status == 404
    assert page.locator("h1").inner_text() == "Customer not found"
    assert (theirs.display_name or "") not in page.content()
    denied = search_audit(db, user_email="agent@example.com", action="denied")
    assert [(d.object_id, d.details["out_of_scope"]) for d in denied] == [(theirs.id, True)]
    assert errors == []
    page.context.close()
