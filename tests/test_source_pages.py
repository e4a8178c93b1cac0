"""The Sources page, its REST and CLI twins, and the live debugger, over real HTTP and a real database."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.factories import make_source, make_token
from tests.test_web_pages import csrf_of, sign_in
from threadline.cli.main import app as cli
from threadline.clock import utcnow
from threadline.config import Settings, get_settings
from threadline.ingest import LiveFeed, get_source, ingest, live_feed, source_activity
from threadline.storage import Database

NOW = datetime(2024, 5, 20, 12, 0)


@pytest.fixture
def site(http: httpx.Client) -> httpx.Client:
    return http


@pytest.fixture
def admin(site: httpx.Client, db: Database) -> httpx.Client:
    make_token(db)
    sign_in(site)
    return site


def track(site: httpx.Client, key: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{site.base_url}/v1/track",
        json={"userId": "u-1", "event": "Signed Up", **body},
        auth=(key, ""),
        timeout=10,
    )


def row_of(html: str, name: str) -> str:
    match = re.search(rf'<tr id="source-\d+" data-source="{re.escape(name)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {name}"
    return match.group(1)


def test_admin_sees_each_source_with_per_day_counts_and_last_event(
    admin: httpx.Client, db: Database, settings: Settings
) -> None:
    web, store = make_source(db, "website", "web"), make_source(db, "tills", "store")
    today = utcnow().replace(microsecond=0)
    two_days_ago = today - timedelta(days=2)
    for n, when in enumerate([two_days_ago, two_days_ago, today]):
        ingest(
            db,
            web,
            [{"type": "track", "userId": f"u{n}", "event": "Viewed"}],
            settings=settings,
            received_at=when,
        )
    ingest(db, web, [{"type": "track", "userId": 7}], settings=settings, received_at=today)  # rejected

    page = admin.get("/sources")
    assert page.status_code == 200
    website = row_of(page.text, "website")
    assert 'class="ch ch-web"' in website and web.write_key in website
    assert f'data-day="{two_days_ago.date()}" data-count="2"' in website
    assert f'data-day="{today.date()}" data-count="1"' in website
    assert len(re.findall("data-day=", website)) == 14
    assert today.strftime("%Y-%m-%d %H:%M") in website  # last event
    assert re.search(r'<td class="num">3</td>', website)  # events
    assert re.search(r'#quarantine">1</a>', website)  # quarantined
    tills = row_of(page.text, "tills")
    assert "Never" in tills and 'data-count="1"' not in tills and store.write_key in tills


def test_activity_is_zero_filled_and_counted_per_utc_day(db: Database, settings: Settings) -> None:
    web = make_source(db, "website", "web")
    days = [
        NOW - timedelta(days=20),
        NOW - timedelta(days=3, hours=11),
        NOW - timedelta(days=3, hours=1),
        NOW,
    ]
    for n, when in enumerate(days):
        ingest(db, web, [{"type": "page", "anonymousId": f"a{n}"}], settings=settings, received_at=when)
    (activity,) = source_activity(db, days=7, now=NOW)
    assert activity.days[0][0].isoformat() == "2024-05-14"
    assert dict(activity.days) == {
        NOW.date() - timedelta(days=n): count for n, count in enumerate([1, 0, 0, 2, 0, 0, 0])
    }
    assert (activity.total, activity.last_event_at, activity.quarantined) == (4, NOW, 0)


def test_create_through_the_form_and_errors_are_shown(admin: httpx.Client, db: Database) -> None:
    page = admin.get("/sources")
    made = admin.post("/sources", data={"csrf": csrf_of(page.text), "name": "shop app", "channel": "app"})
    assert made.status_code == 303
    listing = admin.get(made.headers["location"])
    assert "Created shop app" in listing.text and 'class="ch ch-app"' in row_of(listing.text, "shop app")
    again = admin.post("/sources", data={"csrf": csrf_of(page.text), "name": "shop app", "channel": "app"})
    assert again.status_code == 400 and "already exists" in again.text
    bad = admin.post("/sources", data={"csrf": csrf_of(page.text), "name": "x", "channel": "fax"})
    assert bad.status_code == 400 and "channel: must be one of" in bad.text


def test_rotate_refuses_the_old_key_at_once(admin: httpx.Client, db: Database) -> None:
    old = make_source(db, "website", "web").write_key
    assert track(admin, old).status_code == 200  # the key is now in the server's cache
    csrf = csrf_of(admin.get("/sources").text)
    rotated = admin.post("/sources/website/rotate", data={"csrf": csrf})
    assert rotated.status_code == 303
    new = get_source(db, "website").write_key
    assert new != old
    assert track(admin, old).status_code == 401
    assert track(admin, new).status_code == 200
    assert new in admin.get("/sources").text


def test_revoke_and_reactivate(admin: httpx.Client, db: Database) -> None:
    key = make_source(db, "website", "web").write_key
    assert track(admin, key).status_code == 200
    csrf = csrf_of(admin.get("/sources").text)
    assert admin.post("/sources/website/revoke", data={"csrf": csrf}).status_code == 303
    assert track(admin, key).status_code == 401
    assert "Revoked" in row_of(admin.get("/sources").text, "website")
    assert admin.post("/sources/website/activate", data={"csrf": csrf}).status_code == 303
    assert track(admin, key).status_code == 200  # the refusal was cached; re-activation forgets it
    assert "Active" in row_of(admin.get("/sources").text, "website")
    assert admin.post("/sources/nope/revoke", data={"csrf": csrf}).status_code == 404


def test_forms_need_the_csrf_token(admin: httpx.Client, db: Database) -> None:
    key = make_source(db, "website", "web").write_key
    assert admin.post("/sources", data={"name": "x", "channel": "web"}).status_code == 403
    assert admin.post("/sources/website/rotate", data={"csrf": "forged"}).status_code == 403
    assert admin.post("/sources/website/revoke").status_code == 403
    assert get_source(db, "website").write_key == key and not get_source(db, "website").revoked


def test_quarantine_shows_field_and_reason_newest_first_and_pages(
    admin: httpx.Client, db: Database, settings: Settings
) -> None:
    web = make_source(db, "website", "web")
    bad = [
        {"type": "identify", "userId": "u", "messageId": f"m-{n}", "traits": {"email": n}} for n in range(30)
    ]
    ingest(db, web, bad, settings=settings, received_at=NOW)
    response = track(admin, web.write_key, event=None, messageId="late")
    assert response.status_code == 400
    page = admin.get("/sources/website")
    assert page.status_code == 200
    assert page.text.index("late") < page.text.index("m-29") < page.text.index("m-10")
    assert "traits.email" in page.text and "<details><summary>Payload" in page.text
    assert "m-4<" not in page.text  # 25 per page
    older = re.search(r'href="(/sources/website\?before=\d+)#quarantine" hx-get="([^"]+)"', page.text)
    assert older and older.group(2) == older.group(1)
    partial = admin.get(older.group(2), headers={"HX-Request": "true"})
    assert "<html" not in partial.text and "m-4<" in partial.text and "m-0<" in partial.text
    assert "before=" not in partial.text  # the last page
    fallback = admin.get(older.group(1))
    assert "<html" in fallback.text and "m-0<" in fallback.text and "Newest messages" in fallback.text
    assert admin.get("/sources/nope").status_code == 404


def test_an_agent_is_refused_pages_and_rest_calls(site: httpx.Client, db: Database) -> None:
    make_source(db, "website", "web")
    token = make_token(db, "agent@example.com", "agent")
    sign_in(site, "agent@example.com")
    page = site.get("/sources")
    assert page.status_code == 403 and "need the admin role" in page.text
    assert site.get("/sources/website").status_code == 403
    assert site.get("/sources/website/live").status_code == 403
    csrf = csrf_of(site.get("/customers").text)
    assert site.post("/sources/website/rotate", data={"csrf": csrf}).status_code == 403
    assert site.post("/sources", data={"csrf": csrf, "name": "x", "channel": "web"}).status_code == 403
    bearer = {"Authorization": f"Bearer {token}"}
    for path in ("rotate", "revoke", "activate"):
        assert site.post(f"/api/v1/sources/website/{path}", headers=bearer).status_code == 403
    assert site.get("/api/v1/sources/activity", headers=bearer).status_code == 403


def test_rest_rotate_revoke_activate_and_activity(site: httpx.Client, db: Database) -> None:
    old = make_source(db, "website", "web").write_key
    bearer = {"Authorization": f"Bearer {make_token(db)}"}
    assert track(site, old).status_code == 200
    rotated = site.post("/api/v1/sources/website/rotate", headers=bearer)
    assert rotated.status_code == 200 and rotated.json()["write_key"] != old
    assert track(site, old).status_code == 401
    new = rotated.json()["write_key"]
    assert site.post("/api/v1/sources/website/revoke", headers=bearer).json()["revoked"] is True
    assert track(site, new).status_code == 401
    assert site.post("/api/v1/sources/website/activate", headers=bearer).json()["revoked"] is False
    assert track(site, new).status_code == 200
    activity = site.get("/api/v1/sources/activity", params={"days": 3}, headers=bearer).json()["sources"]
    assert [(a["name"], a["events"], len(a["days"])) for a in activity] == [("website", 2, 3)]
    assert activity[0]["days"][-1]["events"] == 2 and activity[0]["last_event_at"].endswith("Z")
    missing = site.post("/api/v1/sources/nope/rotate", headers=bearer)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def read_events(lines: Iterator[str], wanted: int) -> Iterator[dict[str, Any]]:
    """`data:` messages of an SSE stream until `wanted` have come (the client's timeout bounds it)."""
    seen = 0
    for line in lines:
        if line.startswith("data: "):
            yield orjson.loads(line[6:])
            seen += 1
            if seen == wanted:
                return


def test_live_debugger_streams_accepted_and_rejected_messages(admin: httpx.Client, db: Database) -> None:
    web = make_source(db, "website", "web")
    other = make_source(db, "tills", "store")
    page = admin.get("/sources/website")
    assert 'data-stream="/sources/website/live"' in page.text
    with admin.stream("GET", "/sources/website/live") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 3000"  # subscribed before this was sent
        track(admin, other.write_key, messageId="elsewhere")  # another source: not shown here
        assert track(admin, web.write_key, messageId="ok-1", properties={"plan": "pro"}).status_code == 200
        rejected = httpx.post(
            f"{admin.base_url}/v1/batch",
            json={
                "batch": [{"type": "identify", "userId": "u-2", "messageId": "bad-1", "traits": {"email": 5}}]
            },
            auth=(web.write_key, ""),
        )
        assert rejected.status_code == 400
        first, second = read_events(lines, 2)
    assert first["status"] == "accepted" and first["messageId"] == "ok-1"
    assert (first["type"], first["name"], first["userId"]) == ("track", "Signed Up", "u-1")
    assert '"plan": "pro"' in first["payload"] and first["receivedAt"].endswith("Z")
    assert second["status"] == "rejected" and second["messageId"] == "bad-1"
    assert second["field"] == "traits.email" and second["reason"] and '"email": 5' in second["payload"]
    deadline = time.monotonic() + 10
    while live_feed.subscribers(web.id):  # the server notices the closed connection
        assert time.monotonic() < deadline, "subscription not cleaned up after the client left"
        time.sleep(0.02)


def test_live_feed_keeps_the_newest_messages_when_a_reader_lags() -> None:
    async def scenario() -> None:
        feed = LiveFeed()
        subscription = feed.subscribe(1, asyncio.get_running_loop(), size=3)
        for n in range(5):
            feed.publish(1, {"n": n})
        feed.publish(2, {"n": "other source"})
        messages, dropped = await subscription.next(timeout=5)
        assert [orjson.loads(m)["n"] for m in messages] == [2, 3, 4] and dropped == 2
        assert await subscription.next(timeout=0) == ([], 0)
        feed.unsubscribe(subscription)
        assert feed.subscribers() == 0
        feed.publish(1, {"n": 5})
        assert await subscription.next(timeout=0) == ([], 0)

    asyncio.run(scenario())


def test_live_feed_wakes_the_reader_from_another_thread() -> None:
    async def scenario() -> None:
        feed = LiveFeed()
        subscription = feed.subscribe(1, asyncio.get_running_loop())
        publisher = threading.Thread(target=feed.publish, args=(1, {"n": 1}))
        publisher.start()
        messages, _ = await subscription.next(timeout=10)  # returns as soon as the message is in
        publisher.join()
        assert [orjson.loads(m) for m in messages] == [{"n": 1}]

    asyncio.run(scenario())


@pytest.fixture
def run(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_cli_rotate_revoke_activate(run: CliRunner, db: Database) -> None:
    old = make_source(db, "website", "web").write_key
    rotated = run.invoke(cli, ["sources", "rotate", "website"])
    assert rotated.exit_code == 0 and rotated.output.strip() == get_source(db, "website").write_key != old
    assert run.invoke(cli, ["sources", "revoke", "website"]).exit_code == 0
    assert get_source(db, "website").revoked
    assert run.invoke(cli, ["sources", "activate", "website"]).exit_code == 0
    assert not get_source(db, "website").revoked
    for verb in ("rotate", "revoke", "activate"):
        missing = run.invoke(cli, ["sources", verb, "nope"])
        assert missing.exit_code == 1 and missing.output.strip().startswith(
            "error: source 'nope' does not exist"
        )
        assert len(missing.output.strip().splitlines()) == 1
