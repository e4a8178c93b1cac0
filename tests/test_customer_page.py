"""The customer 360 page over real HTTP: trait history, timeline filters and the scroll partial."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.factories import lookup_profile, make_source, make_token, send
from tests.test_web_pages import sign_in
from threadline.accounts import viewer_for
from threadline.config import Settings
from threadline.privacy import search_audit
from threadline.profiles import assign_owner
from threadline.storage import Database
from threadline.storage.models import User


def steps(page: str) -> list[str]:
    return re.findall(r"<strong>(Step \d+)</strong>", page)


def scroll_url(page: str) -> str | None:
    """Where the timeline's last item loads the next page from when it scrolls into view."""
    found = re.search(r'<li class="more" hx-get="([^"]+)" hx-trigger="revealed"', page)
    return html.unescape(found.group(1)) if found else None


@pytest.fixture
def customer(db: Database, settings: Settings) -> str:
    """Zhang Wei: a plan that changed from two sources, a page view, an order and 60 app events."""
    make_token(db)
    web, store, app = (
        make_source(db, "website", "web"),
        make_source(db, "store-pos", "store"),
        make_source(db, "mobile-app", "app"),
    )
    identify = {"type": "identify", "userId": "u-1"}
    send(
        db,
        settings,
        web,
        {**identify, "timestamp": "2024-01-02T08:00:00Z", "traits": {"name": "Zhang Wei", "plan": "free"}},
        {"type": "page", "userId": "u-1", "name": "Pricing", "timestamp": "2024-01-03T08:00:00Z"},
    )
    send(
        db,
        settings,
        store,
        {**identify, "timestamp": "2024-01-04T08:00:00Z", "traits": {"plan": "pro"}},
        {
            "type": "track",
            "userId": "u-1",
            "event": "Order Completed",
            "properties": {"total": 42},
            "timestamp": "2024-01-05T08:00:00Z",
        },
    )
    send(
        db,
        settings,
        app,
        *(
            {
                "type": "track",
                "userId": "u-1",
                "event": f"Step {n:02d}",
                "timestamp": f"2024-02-01T{n // 60:02d}:{n % 60:02d}:00Z",
            }
            for n in range(1, 61)
        ),
    )
    return lookup_profile(db, "user_id", "u-1")


def test_traits_show_source_time_and_earlier_values(customer: str, http: httpx.Client) -> None:
    sign_in(http)
    page = http.get(f"/customers/{customer}").text
    traits = page[page.index("<h2>Traits</h2>") : page.index("<h2>Channels</h2>")]
    plan = traits[traits.index("<dt>plan</dt>") : traits.index("</dd>", traits.index("<dt>plan</dt>"))]
    assert plan.split("<small")[0].endswith("pro ")  # the shown value, then where it came from
    assert "from store-pos, Jan 4, 2024" in plan
    assert "1 earlier value" in plan and "<details" in plan
    assert "free <small" in plan and "from website, Jan 2, 2024" in plan
    name = traits[traits.index("<dt>name</dt>") :]
    assert "earlier value" not in name.split("</dd>")[0]  # one value only: no history to open


def test_timeline_filters_by_type_and_channel(customer: str, http: httpx.Client) -> None:
    sign_in(http)
    tracks = http.get(f"/customers/{customer}", params={"type": "track", "channel": "store"}).text
    assert "Order Completed" in tracks
    assert "Pricing" not in tracks and "Step 60" not in tracks
    assert '<option value="track" selected>' in tracks
    pages = http.get(f"/customers/{customer}", params={"type": "page"}).text
    assert "Pricing" in pages and "Order Completed" not in pages
    none = http.get(f"/customers/{customer}", params={"type": "page", "channel": "store"}).text
    assert "No events match these filters." in none


def test_scrolling_appends_the_next_page(customer: str, http: httpx.Client) -> None:
    sign_in(http)
    page = http.get(f"/customers/{customer}").text
    first = steps(page)
    assert len(first) == 50 and first[0] == "Step 60"
    url = scroll_url(page)
    assert url and url.startswith(f"/customers/{customer}/timeline?cursor=")
    cursor = url.split("cursor=")[1]
    assert f'href="/customers/{customer}?cursor={cursor}#timeline"' in page  # the no-JS fallback
    more = http.get(url)
    assert more.status_code == 200 and "<html" not in more.text  # list items only, to append
    rest = steps(more.text)
    assert rest == [f"Step {n:02d}" for n in range(10, 0, -1)]
    assert "Order Completed" in more.text and "Pricing" in more.text
    assert scroll_url(more.text) is None  # the end: nothing more to load
    # The filters ride along with the cursor.
    filtered = http.get(f"/customers/{customer}", params={"channel": "app"}).text
    next_url = scroll_url(filtered)
    assert next_url and "channel=app" in next_url
    assert "Order Completed" not in http.get(next_url).text


def test_a_forged_cursor_is_a_clear_400(customer: str, http: httpx.Client) -> None:
    sign_in(http)
    for forged in ("not-a-cursor", "bm9wZXxub3BlfG5vcGU"):
        partial = http.get(f"/customers/{customer}/timeline", params={"cursor": forged})
        assert partial.status_code == 400
        assert "This link to older events is broken" in partial.text
        page = http.get(f"/customers/{customer}", params={"cursor": forged})
        assert page.status_code == 400 and "This link to older events is broken" in page.text
        assert "Zhang Wei" in page.text  # the rest of the page still works


def test_the_scroll_partial_keeps_to_the_agents_scope(
    customer: str, http: httpx.Client, db: Database, settings: Settings
) -> None:
    make_token(db, "agent1@example.com", "agent")
    send(
        db,
        settings,
        make_source(db, "call-center", "call_center"),
        {"type": "identify", "userId": "u-2", "traits": {"name": "Li Na"}},
    )
    theirs = lookup_profile(db, "user_id", "u-2")
    with db.read() as session:
        ids = {u.email: u.id for u in session.query(User)}
    admin = viewer_for(db, ids["admin@example.com"], "admin")
    assign_owner(db, admin, [theirs], ids["agent1@example.com"])

    sign_in(http, "agent1@example.com")
    own = http.get(f"/customers/{theirs}/timeline")
    assert own.status_code == 200 and "identify" in own.text
    assert http.get(f"/customers/{customer}").status_code == 404
    # A cursor that decodes well ("2024-02-01T01:00:00|99") is no key to another agent's customer.
    forged = http.get(f"/customers/{customer}/timeline", params={"cursor": "MjAyNC0wMi0wMVQwMTowMDowMHw5OQ"})
    assert forged.status_code == 404
    assert "Step" not in forged.text and "Zhang Wei" not in forged.text
    denied = search_audit(db, user_email="agent1@example.com", action="denied")
    assert [d.object_id for d in denied] == [customer, customer]
    assert all(d.details == {"out_of_scope": True, "via": "web"} for d in denied)
