"""The workspace pages over real HTTP: sign-in with CSRF, the customer list and the 360 page."""

from __future__ import annotations

import re

import httpx

from tests.factories import make_source, make_token, send
from threadline.config import Settings
from threadline.storage import Database


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form without a CSRF token"
    return match.group(1)


def sign_in(
    http: httpx.Client, email: str = "admin@example.com", password: str = "correct horse battery"
) -> None:
    form = http.get("/login")
    response = http.post(
        "/login",
        data={"email": email, "password": password, "csrf": csrf_of(form.text), "next": "/customers"},
    )
    assert response.status_code == 303 and response.headers["location"] == "/customers"


def test_pages_need_a_login(http: httpx.Client, db: Database) -> None:
    response = http.get("/customers/abc")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/customers/abc"


def test_wrong_password_and_missing_csrf_are_refused(http: httpx.Client, db: Database) -> None:
    make_token(db)
    form = http.get("/login")
    wrong = http.post(
        "/login", data={"email": "admin@example.com", "password": "nope", "csrf": csrf_of(form.text)}
    )
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text
    forged = http.post("/login", data={"email": "admin@example.com", "password": "correct horse battery"})
    assert forged.status_code == 403
    assert http.get("/customers").status_code == 303


def test_open_redirect_after_login_is_refused(http: httpx.Client, db: Database) -> None:
    make_token(db)
    form = http.get("/login")
    data = {"email": "admin@example.com", "password": "correct horse battery", "csrf": csrf_of(form.text)}
    response = http.post("/login", data={**data, "next": "//evil.example/phish"})
    assert response.headers["location"] == "/customers"


def test_customer_list_search_and_360_page(http: httpx.Client, db: Database, settings: Settings) -> None:
    make_token(db)
    web, store = make_source(db, "website", "web"), make_source(db, "store-pos", "store")
    send(db, settings, web, {"type": "page", "anonymousId": "a-1", "name": "Pricing"})
    send(
        db,
        settings,
        web,
        {"type": "identify", "userId": "u-1", "traits": {"name": "Zhang Wei", "email": "zw@example.com"}},
    )
    send(db, settings, web, {"type": "identify", "userId": "u-1", "anonymousId": "a-1"})
    send(
        db,
        settings,
        store,
        {
            "type": "track",
            "event": "Order Completed",
            "properties": {"total": 42},
            "context": {"traits": {"email": "zw@example.com"}},
        },
    )
    sign_in(http)
    listing = http.get("/customers")
    assert listing.status_code == 200 and "Zhang Wei" in listing.text
    found = http.get("/customers", params={"q": "zw@exa"})
    profile_id = re.search(r'href="/customers/([0-9a-f]{32})"', found.text)
    assert profile_id
    page = http.get(f"/customers/{profile_id.group(1)}")
    assert page.status_code == 200
    for expected in (
        "Zhang Wei",
        "zw@example.com",
        "Order Completed",
        "Pricing",
        "Merged from",
        "seen together with",
    ):
        assert expected in page.text
    assert "No customer matches" in http.get("/customers", params={"q": "nobody-like-this"}).text
    out = http.post("/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and http.get("/customers").status_code == 303
