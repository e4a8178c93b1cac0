"""The web chat widget in a real Chromium: a visitor on the shop's own origin chats through the one
script tag, an agent answers from the inbox's API, and the answer appears in the widget, pushed over
server-sent events. The site and the browser are tests/test_tracker_browser.py's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.factories import lookup_profile, make_source, make_token
from tests.test_tracker_browser import CHROMIUM, Shop, browser  # noqa: F401 (the browser fixture)
from threadline.storage import Database

pytestmark = [pytest.mark.browser]


@pytest.fixture
def shop(browser: Any, server: LiveServer, db: Database) -> Iterator[Shop]:  # noqa: F811
    site = Shop(browser, server, make_source(db, "website", "web").write_key)
    yield site
    site.close()
    assert site.errors == []


def chat_page(shop: Shop, path: str, email: str) -> str:
    shop.pages[path] = (
        "<!doctype html><title>Shop</title><h1>Shoes</h1>"
        f'<script src="{shop.server.url}/static/chat-widget.js" data-write-key="{shop.write_key}" '
        f'data-email="{email}"></script>'
    )
    return shop.origin + path


def test_a_visitor_chats_and_the_agent_answers_from_the_inbox(
    shop: Shop, db: Database, http: httpx.Client
) -> None:
    page = shop.page
    page.goto(chat_page(shop, "/shoes", "grace@example.com"))
    page.click(".tl-chat-button")
    page.fill(".tl-chat-form input", "Do you have these in size 39?")
    page.press(".tl-chat-form input", "Enter")
    # The visitor's line comes back in the stream's history once stored (replacing the one drawn at once).
    page.wait_for_function("() => document.querySelectorAll('.tl-chat-visitor').length === 1", timeout=15_000)

    token = make_token(db, "agent@example.com", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    queue = http.get("/api/v1/conversations", params={"queue": "all", "channel": "chat"}, headers=auth).json()
    [conversation] = queue["conversations"]
    answer = http.post(
        f"/api/v1/conversations/{conversation['id']}/replies",
        json={"body_text": "Yes, size 39 is in stock."},
        headers=auth,
    )
    assert answer.status_code == 201, answer.text

    page.wait_for_selector(".tl-chat-agent", timeout=15_000)
    assert page.inner_text(".tl-chat-agent") == "Yes, size 39 is in stock."
    # The visitor is the tracker's anonymous id (the same localStorage key) and the identified email.
    anonymous = page.evaluate("localStorage.getItem('tl_anon')")
    assert lookup_profile(db, "anonymous_id", anonymous) == lookup_profile(db, "email", "grace@example.com")
    assert conversation["profile_id"] == lookup_profile(db, "email", "grace@example.com")

    # After a reload the widget reopens the same session and shows the whole chat.
    page.reload()
    page.click(".tl-chat-button")
    page.wait_for_function("() => document.querySelectorAll('.tl-chat-line').length === 2", timeout=15_000)
    assert page.inner_text(".tl-chat-agent") == "Yes, size 39 is in stock."
    session = json.loads(page.evaluate(f"localStorage.getItem('tl_chat:{shop.write_key}')"))
    assert session["secret"] and session["session_id"]
