"""The workspace in English and 简体中文, over real HTTP: choosing a language and a time zone, the browser's
Accept-Language as the default, localised dates, and a catalog that translates every message."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi import FastAPI

from tests.conftest import free_port
from tests.factories import make_source, make_token, send
from threadline.app import create_app
from threadline.config import Settings
from threadline.storage import Database
from threadline.web import preference_pages
from threadline.web.i18n import LANG_COOKIE, Localization, choose_locale, negotiate, translations

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "src/threadline/web/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}


def workspace_app(settings: Settings, db: Database) -> FastAPI:
    app = create_app(settings, db=db)
    # Until app.py includes the preferences router, the tests add it themselves.
    if not any(getattr(route, "path", "") == "/preferences/language" for route in app.routes):
        app.include_router(preference_pages.router)
    return app


@pytest.fixture
def site(settings: Settings, db: Database) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        workspace_app(settings, db), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser(site: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site, timeout=30) as client:
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "form without a CSRF token"
    return match.group(1)


def sign_in(client: httpx.Client) -> str:
    """Signs the admin in; returns the customer list's HTML."""
    form = client.get("/login")
    data = {"email": "admin@example.com", "password": "correct horse battery", "csrf": csrf_of(form.text)}
    assert client.post("/login", data={**data, "next": "/customers"}).status_code == 303
    return client.get("/customers").text


def choose(client: httpx.Client, locale: str, next: str = "/customers", **headers: str) -> httpx.Response:
    page = client.get("/login", headers=headers)
    return client.post(
        "/preferences/language",
        data={"locale": locale, "csrf": csrf_of(page.text), "next": next},
        headers=headers,
    )


def lang_of(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', html)
    assert match
    return match.group(1)


def make_customer(db: Database, settings: Settings) -> None:
    web, store = make_source(db, "website", "web"), make_source(db, "store-pos", "store")
    send(db, settings, web, {"type": "page", "anonymousId": "a-1", "name": "Pricing"})
    send(db, settings, web, {"type": "identify", "userId": "u-1", "traits": {"name": "Zhang Wei"}})
    send(db, settings, web, {"type": "identify", "userId": "u-1", "anonymousId": "a-1"})  # a merge
    send(
        db,
        settings,
        store,
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "u-1",
            "timestamp": "2024-01-05T23:30:00Z",
            "properties": {"total": 42},
        },
    )


def profile_url(client: httpx.Client) -> str:
    match = re.search(r'href="(/customers/[0-9a-f]{32})"', client.get("/customers").text)
    assert match
    return match.group(1)


def test_switching_to_chinese_changes_the_pages_and_stays_with_the_user(
    site: str, browser: httpx.Client, db: Database, settings: Settings
) -> None:
    make_token(db)
    make_customer(db, settings)
    listing = sign_in(browser)
    assert lang_of(listing) == "en" and "Last seen" in listing and ">store<" in listing

    chosen = choose(browser, "zh_Hans_CN", next="/customers?page=1")
    assert chosen.status_code == 303 and chosen.headers["location"] == "/customers?page=1"

    listing = browser.get("/customers").text
    assert lang_of(listing) == "zh-Hans-CN"
    for text in ("客户", "最近出现", "搜索", "退出", ">门店<", ">网站<", "管理员"):
        assert text in listing
    assert "Last seen" not in listing and "Sign out" not in listing

    page = browser.get(profile_url(browser)).text
    for text in ("时间线", "身份标识", "属性", "渠道", "合并自", "全部渠道", "Zhang Wei", "Order Completed"):
        assert text in page
    assert '<option value="store" >门店</option>' in page  # labels translate, values keep the raw keys
    assert "Timeline" not in page and "Identities" not in page

    # Another browser, no cookie: English until the same user signs in, then their Chinese.
    with httpx.Client(base_url=site, timeout=30) as elsewhere:
        assert lang_of(elsewhere.get("/login").text) == "en"
        assert "最近出现" in sign_in(elsewhere)


def test_the_browser_language_is_the_default_and_the_cookie_wins_over_it(
    browser: httpx.Client, db: Database
) -> None:
    login = browser.get("/login", headers=CHINESE)
    assert lang_of(login.text) == "zh-Hans-CN" and "登录" in login.text and "邮箱" in login.text
    assert "Accept-Language" in login.headers["vary"]
    assert lang_of(browser.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"}).text) == "en"

    chosen = choose(browser, "en", next="/login", **CHINESE)
    assert chosen.status_code == 303 and browser.cookies[LANG_COOKIE] == "en"
    again = browser.get("/login", headers=CHINESE)
    assert lang_of(again.text) == "en" and "Sign in" in again.text

    choose(browser, "zh_Hans_CN", next="/login")
    assert "登录" in browser.get("/login", headers={"Accept-Language": "en"}).text

    # "Same as the browser" forgets the choice.
    choose(browser, "", next="/login")
    assert LANG_COOKIE not in browser.cookies
    assert lang_of(browser.get("/login", headers={"Accept-Language": "en"}).text) == "en"


def test_language_changes_need_the_csrf_token_a_known_language_and_a_local_target(
    browser: httpx.Client, db: Database
) -> None:
    make_token(db)
    sign_in(browser)
    forged = browser.post("/preferences/language", data={"locale": "zh_Hans_CN", "next": "/customers"})
    assert forged.status_code == 403
    assert lang_of(browser.get("/customers").text) == "en"

    unknown = choose(browser, "klingon")
    assert unknown.status_code == 400
    assert "Unknown language “klingon”: choose one of English (en), 简体中文 (zh_Hans_CN)." in unknown.text
    assert LANG_COOKIE not in browser.cookies

    away = choose(browser, "zh_Hans_CN", next="//evil.example/phish")
    assert away.status_code == 303 and away.headers["location"] == "/"
    # The refusal is shown in the reader's language too.
    assert "未知语言“xx”" in choose(browser, "xx").text


def test_dates_show_in_the_users_time_zone(browser: httpx.Client, db: Database, settings: Settings) -> None:
    make_token(db)
    make_customer(db, settings)
    sign_in(browser)
    url = profile_url(browser)
    assert "Jan 5, 2024, 11:30\u202fPM" in browser.get(url).text  # THREADLINE_TIMEZONE (UTC) by default

    form = browser.get("/preferences")
    assert form.status_code == 200 and "Asia/Shanghai" in form.text
    bad = browser.post("/preferences/timezone", data={"timezone": "Mars/Olympus", "csrf": csrf_of(form.text)})
    assert bad.status_code == 400 and "Unknown time zone “Mars/Olympus”" in bad.text
    forged = browser.post("/preferences/timezone", data={"timezone": "Asia/Shanghai"})
    assert forged.status_code == 403

    saved = browser.post(
        "/preferences/timezone", data={"timezone": "Asia/Shanghai", "csrf": csrf_of(form.text)}
    )
    assert saved.status_code == 303
    assert "Jan 6, 2024, 7:30\u202fAM" in browser.get(url).text
    assert "<option selected>Asia/Shanghai</option>" in browser.get("/preferences").text

    choose(browser, "zh_Hans_CN")
    assert "2024年1月6日 07:30" in browser.get(url).text


def test_only_signed_in_users_have_a_time_zone(browser: httpx.Client, db: Database) -> None:
    page = browser.get("/preferences")
    assert page.status_code == 200 and 'name="locale"' in page.text and 'name="timezone"' not in page.text
    answer = browser.post("/preferences/timezone", data={"timezone": "UTC", "csrf": csrf_of(page.text)})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh", "zh_Hans_CN"),
        ("zh-CN", "zh_Hans_CN"),
        ("zh-Hans", "zh_Hans_CN"),
        ("zh-SG", "zh_Hans_CN"),
        ("zh-Hans-CN,en;q=0.5", "zh_Hans_CN"),
        ("en-US,zh-CN;q=0.9", "en"),
        ("fr-FR,zh-CN;q=0.8,en;q=0.5", "zh_Hans_CN"),
        ("en;q=0.4,zh;q=0.9", "zh_Hans_CN"),
        ("zh-TW,zh-Hant;q=0.9", None),  # Traditional readers are not sent to Simplified characters
        ("zh-CN;q=0", None),
        ("fr, de", None),
        ("", None),
    ],
)
def test_accept_language_negotiation(header: str, expected: str | None) -> None:
    assert negotiate(header) == expected


def test_the_users_choice_beats_the_cookie_which_beats_the_browser() -> None:
    assert choose_locale("zh_Hans_CN", "en", "en") == "zh_Hans_CN"
    assert choose_locale(None, "zh_Hans_CN", "en") == "zh_Hans_CN"
    assert choose_locale("gone", "forged", "zh-CN") == "zh_Hans_CN"
    assert choose_locale(None, None, "de") == "en"


def test_numbers_and_currencies_follow_the_locale() -> None:
    zone = ZoneInfo("Asia/Shanghai")
    english = Localization("en", zone, translations("en"))
    chinese = Localization("zh_Hans_CN", zone, translations("zh_Hans_CN"))
    assert english.number_text(1234567.5) == "1,234,567.5"
    assert english.currency_text(Decimal("1234.5"), "CNY") == "CN¥1,234.50"
    assert chinese.currency_text(Decimal("1234.5"), "CNY") == "¥1,234.50"
    assert chinese.currency_text(99, "USD") == "US$99.00"
    assert chinese.date_text("2024-01-05T23:30:00.000Z") == "2024年1月6日"
    assert english.datetime_text(None) == ""


def test_every_message_in_the_workspace_has_a_chinese_translation() -> None:
    """Extracts exactly as `pybabel extract -F babel.cfg ... src/threadline` does (docs/i18n.md)."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    extracted: dict[str, str] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
        str(ROOT / "src/threadline"), method_map, options_map
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            extracted.setdefault(msgid, filename)
    assert len(extracted) > 40 and "Customers" in extracted

    with CATALOG.open("rb") as po:
        catalog = read_po(po)
    missing = []
    for msgid, filename in sorted(extracted.items()):
        entry = catalog.get(msgid)
        strings = entry.string if entry else None
        texts = strings if isinstance(strings, tuple) else (strings,)
        if entry is None or entry.fuzzy or not all(texts):
            missing.append(f"{filename}: {msgid!r}")
    assert missing == [], "untranslated; see docs/i18n.md:\n" + "\n".join(missing)
    # Placeholders must survive translation: "%(name)s" missing from a msgstr breaks the page.
    problems = [f"{message.id!r}: {errors}" for message, errors in catalog.check()]
    assert problems == []
