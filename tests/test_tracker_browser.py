"""The first-party web tracker (threadline.js) in a real Chromium, posting cross-origin to a live server.

The shop's pages are served by a tiny http.server of their own at http://shop.localhost:<port>, a different
origin from the Threadline server on 127.0.0.1, so every request goes through the browser's CORS checks.
(A page fulfilled by Playwright would be refused by Chromium's local network access checks instead.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.factories import make_source, make_token
from threadline.storage import Database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]

sync_api = pytest.importorskip("playwright.sync_api")
CORS = {"access-control-allow-origin": "*", "content-type": "application/json"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Shop:
    """A customer's site on its own origin, with the tracker loaded from the Threadline server."""

    def __init__(self, browser: Any, server: LiveServer, write_key: str) -> None:
        self.server, self.write_key = server, write_key
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                html = pages.get(self.path.split("?")[0])
                body = (html or "not found").encode()
                self.send_response(200 if html else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.site = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.site.serve_forever, daemon=True).start()
        self.origin = (
            f"http://shop.localhost:{self.site.server_address[1]}"  # Chromium maps *.localhost to loopback
        )
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def tracked_page(self, path: str, calls: str, title: str = "Shop") -> str:
        options = json.dumps({"host": self.server.url, "flushInterval": 100})
        self.pages[path] = (
            f"<!doctype html><title>{title}</title>"
            f'<script src="{self.server.url}/static/threadline.js"></script>'
            f"<script>threadline.init({json.dumps(self.write_key)}, {options});{calls}</script>"
        )
        return self.origin + path

    def delivered(self) -> None:
        """Waits until the tracker's queue is empty: the server answered for every message."""
        queue = f"tl_queue:{self.write_key}"
        self.page.wait_for_function(f"() => !localStorage.getItem('{queue}')", timeout=15_000)

    def anonymous_id(self) -> str:
        anon: str = self.page.evaluate("threadline.anonymousId()")
        return anon

    def close(self) -> None:
        self.context.close()
        self.site.shutdown()
        self.site.server_close()


@pytest.fixture
def write_key(db: Database) -> str:
    return make_source(db, "website", "web").write_key


@pytest.fixture
def shop(browser: Any, server: LiveServer, write_key: str) -> Iterator[Shop]:
    site = Shop(browser, server, write_key)
    yield site
    site.close()
    assert site.errors == []


@pytest.fixture
def api(http: httpx.Client, db: Database) -> httpx.Client:
    http.headers["Authorization"] = f"Bearer {make_token(db)}"
    return http


def events_of(api: httpx.Client, **identifier: str) -> tuple[str, list[dict[str, Any]]]:
    found = api.get("/api/v1/profiles/lookup", params=identifier)
    assert found.status_code == 200, found.text
    profile_id = found.json()["id"]
    timeline = api.get(f"/api/v1/profiles/{profile_id}/events", params={"limit": 200})
    assert timeline.status_code == 200, timeline.text
    return profile_id, timeline.json()["events"]


def test_anonymous_visit_then_identify_lands_on_one_profile(shop: Shop, api: httpx.Client) -> None:
    product = shop.tracked_page(
        "/products/a1",
        'threadline.page(); threadline.track("Product Viewed", {sku: "A1", price: 19.5});',
        title="Blue mug",
    )
    shop.page.goto(product)
    shop.delivered()
    anon = shop.anonymous_id()
    assert shop.page.evaluate("localStorage.getItem('tl_anon')") == anon
    cookie = next(c for c in shop.context.cookies(shop.origin) if c["name"] == "tl_anon")
    assert cookie["value"] == anon and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert cookie["expires"] > shop.page.evaluate("Date.now() / 1000 + 360 * 86400")

    shop.page.evaluate('threadline.identify("user-42", {email: "Ada@Example.com", name: "Ada Lovelace"})')
    shop.delivered()
    shop.page.reload()
    shop.delivered()
    assert shop.anonymous_id() == anon

    # Clearing either store alone keeps the visitor: the other one brings the anonymous id back.
    shop.page.evaluate("localStorage.removeItem('tl_anon')")
    shop.page.reload()
    shop.delivered()
    assert shop.anonymous_id() == anon
    shop.context.clear_cookies()
    shop.page.reload()
    shop.delivered()
    assert shop.anonymous_id() == anon

    profile_id, events = events_of(api, user_id="user-42")
    assert events_of(api, anonymous_id=anon)[0] == profile_id
    assert events_of(api, email="ada@example.com")[0] == profile_id
    assert sorted(e["type"] for e in events) == ["identify"] + ["page"] * 4 + ["track"] * 4  # four page loads
    assert {e["channel"] for e in events} == {"web"}
    assert {e["anonymous_id"] for e in events} == {anon}
    assert len({e["message_id"] for e in events}) == len(events)
    # After identify, the stored userId rides on every later message, including after a reload.
    assert [e["user_id"] for e in events if e["type"] == "page"][:3] == ["user-42"] * 3

    viewed = next(e for e in events if e["type"] == "track")
    assert viewed["event"] == "Product Viewed" and viewed["properties"] == {"sku": "A1", "price": 19.5}
    context = viewed["context"]
    assert context["library"]["name"] == "threadline.js"
    assert context["page"]["path"] == "/products/a1" and context["page"]["url"] == product
    assert context["page"]["title"] == "Blue mug"
    assert "Chrome" in context["userAgent"] and context["locale"]
    first_view = events[-1]
    assert first_view["type"] == "page" and first_view["user_id"] is None
    assert first_view["properties"]["path"] == "/products/a1"
    assert first_view["properties"]["url"] == product and first_view["properties"]["title"] == "Blue mug"

    profile = api.get(f"/api/v1/profiles/{profile_id}").json()
    assert profile["traits"]["name"] == "Ada Lovelace"
    assert profile["channels"] == ["web"]


def test_calls_made_before_the_script_loads_are_replayed(shop: Shop, api: httpx.Client) -> None:
    snippet = (
        "!function(){var t=window.threadline=window.threadline||[];if(t.init)return;"
        '["init","identify","track","page","reset","flush"].forEach(function(m){'
        "t[m]=function(){t.push([m].concat([].slice.call(arguments)))}})}();"
    )
    key, host = json.dumps(shop.write_key), json.dumps(shop.server.url)
    shop.pages["/"] = (
        "<!doctype html><title>Home</title>"
        f"<script>{snippet}"
        f'threadline.track("Early Bird", {{n: 1}});'
        f"threadline.init({key}, {{host: {host}, flushInterval: 100}});"
        'threadline.push(["page", "Home", {section: "landing"}]);'
        "window.stubWasArray = Array.isArray(window.threadline);</script>"
        f'<script async src="{shop.server.url}/static/threadline.js"></script>'
    )
    shop.page.goto(shop.origin + "/")
    shop.page.wait_for_function("() => window.threadline && window.threadline.__threadline")
    shop.delivered()
    assert shop.page.evaluate("window.stubWasArray") is True
    shop.page.evaluate('threadline.push(["track", "Late Call"])')
    shop.delivered()

    _, events = events_of(api, anonymous_id=shop.anonymous_id())
    assert [(e["type"], e["event"] or e["name"]) for e in reversed(events)] == [
        ("track", "Early Bird"),
        ("page", "Home"),
        ("track", "Late Call"),
    ]
    home = events[1]
    assert home["properties"]["section"] == "landing" and home["properties"]["path"] == "/"


def test_a_failed_delivery_is_retried_and_lands_once(shop: Shop, api: httpx.Client) -> None:
    batches: list[list[str]] = []
    answers: list[dict[str, Any]] = []

    def flaky(route: Any) -> None:
        batches.append([m["messageId"] for m in json.loads(route.request.post_data)["batch"]])
        response = route.fetch()  # the server does store the batch ...
        if len(batches) == 1:
            route.fulfill(status=503, headers=CORS, body='{"success": false}')  # ... but the answer is lost
        else:
            answers.append(response.json())
            route.fulfill(response=response)

    shop.context.route(f"{shop.server.url}/v1/batch", flaky)
    shop.page.goto(shop.tracked_page("/cart", 'threadline.track("Cart Viewed", {items: 2});'))
    shop.delivered()

    assert len(batches) == 2 and batches[0] == batches[1]
    assert answers == [{"success": True, "accepted": 0, "duplicates": 1}]
    _, events = events_of(api, anonymous_id=shop.anonymous_id())
    assert [e["event"] for e in events] == ["Cart Viewed"]
    assert events[0]["message_id"] == batches[0][0]


def test_events_survive_an_unreachable_server_and_a_reload(shop: Shop, api: httpx.Client) -> None:
    attempts: list[str] = []
    state = {"down": True}

    def network(route: Any) -> None:
        attempts.append("down" if state["down"] else "up")
        if state["down"]:
            route.abort("connectionrefused")
        else:
            route.continue_()

    shop.context.route(f"{shop.server.url}/v1/batch", network)
    checkout = shop.tracked_page("/checkout", "")
    shop.page.goto(checkout)
    with shop.page.expect_event("requestfailed"):
        shop.page.evaluate('threadline.track("Checkout Started", {total: 42})')
    shop.page.wait_for_event("requestfailed")  # and the backed-off retry fails too
    assert attempts == ["down", "down"]
    queued = shop.page.evaluate(f"JSON.parse(localStorage.getItem('tl_queue:{shop.write_key}'))")
    assert [m["event"] for m in queued] == ["Checkout Started"]

    state["down"] = False
    shop.page.reload()
    shop.delivered()
    _, events = events_of(api, anonymous_id=shop.anonymous_id())
    assert [e["event"] for e in events] == ["Checkout Started"]
    assert events[0]["message_id"] == queued[0]["messageId"]
    assert events[0]["channel"] == "web" and events[0]["properties"] == {"total": 42}
