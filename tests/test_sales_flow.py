"""Issue 4's "done when", end to end over real HTTP as a rep with their own data scope: a lead converted,
a phone follow-up logged with a next contact time, which shows in tomorrow's schedule and in the rep's
.ics feed, and on the customer's 360 timeline beside what they did on the website and in the store."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from tests.conftest import LiveServer
from tests.factories import make_source, send
from tests.test_web_pages import sign_in
from threadline.accounts import create_token, create_user
from threadline.config import Settings
from threadline.storage import Database

NOW = datetime(2026, 3, 2, 9, 0)  # a Monday morning, UTC (the workspace's zone in the tests)
TOMORROW_10 = NOW + timedelta(days=1, hours=1)


def test_a_rep_converts_a_lead_follows_up_and_sees_it_everywhere(db: Database, settings: Settings) -> None:
    create_user(db, "rep@example.com", "agent", "correct horse battery", now=NOW)
    token = create_token(db, "rep@example.com", now=NOW)
    web, store = make_source(db, "website", "web"), make_source(db, "till", "store")
    # Before anyone in sales knew her: she browsed the site, signed up, and bought in the store.
    send(
        db,
        settings,
        web,
        {"type": "page", "anonymousId": "a-77", "name": "Pricing", "timestamp": "2026-02-20T10:00:00Z"},
        {
            "type": "identify",
            "anonymousId": "a-77",
            "traits": {"email": "mei@shop.example"},
            "timestamp": "2026-02-20T10:05:00Z",
        },
    )
    send(
        db,
        settings,
        store,
        {
            "type": "track",
            "event": "Order Completed",
            "context": {"traits": {"email": "mei@shop.example"}},
            "properties": {"total": 42.5},
            "timestamp": "2026-02-25T15:00:00Z",
        },
    )
    with LiveServer(settings, db, clock=lambda: NOW) as live, httpx.Client(base_url=live.url) as http:
        auth = {"Authorization": f"Bearer {token}"}
        lead = http.post(
            "/api/v1/sales/leads", headers=auth, json={"name": "Mei Lin", "email": "mei@shop.example"}
        )
        assert lead.status_code == 201, lead.text
        converted = http.post(
            f"/api/v1/sales/leads/{lead.json()['id']}/convert", headers=auth, json={"kind": "person"}
        )
        assert converted.status_code == 200, converted.text
        account_id = converted.json()["converted_account_id"]
        account = http.get(f"/api/v1/sales/accounts/{account_id}", headers=auth).json()
        profile_id = account["profile_id"]
        assert profile_id  # the account is the unified customer who browsed and bought

        logged = http.post(
            "/api/v1/follow-ups",
            headers=auth,
            json={
                "subject_type": "account",
                "subject_id": str(account_id),
                "method": "phone",
                "content": "Called about the spring range; wants samples",
                "next_contact_at": TOMORROW_10.isoformat() + "Z",
            },
        )
        assert logged.status_code == 201, logged.text

        # Tomorrow's schedule (the day view) and the rep's calendar feed.
        sign_in(http, "rep@example.com")
        day = http.get("/schedule", params={"view": "day", "day": TOMORROW_10.date().isoformat()})
        assert day.status_code == 200 and "Mei Lin" in day.text and "10:00" in day.text
        today = http.get("/schedule", params={"view": "day", "day": NOW.date().isoformat()})
        assert "Logged: Mei Lin" in today.text  # today's page shows the call made
        feed = http.post("/api/v1/calendar-token", headers=auth).json()["token"]
        ics = http.get(f"/calendar/{feed}.ics").text.replace("\r\n ", "")
        assert "DTSTART:20260303T100000Z" in ics and "Mei Lin" in ics

        # The 360 timeline: the follow-up beside the web and store activity, as the rep sees it.
        timeline = http.get(f"/customers/{profile_id}")
        assert timeline.status_code == 200
        page = timeline.text
        for seen in ("Follow-up Logged", "Order Completed", "Pricing"):
            assert seen in page, seen
        events = http.get(f"/api/v1/profiles/{profile_id}/events", headers=auth).json()["events"]
        by_name = {(e.get("event") or e.get("name") or e["type"]): e["channel"] for e in events}
        assert by_name["Follow-up Logged"] == "call_center"
        assert by_name["Order Completed"] == "store"
        assert by_name["Pricing"] == "web"


def test_converting_keeps_a_customer_someone_else_owns(db: Database, settings: Settings) -> None:
    """A rep's conversion makes an unowned customer theirs, never takes one from a colleague."""
    from tests.factories import SYSTEM, lookup_profile
    from threadline.accounts import viewer_for
    from threadline.profiles import assign_owner
    from threadline.sales import convert_lead, create_record
    from threadline.storage.models import Profile

    rep = create_user(db, "rep@example.com", "agent", "correct horse battery", now=NOW)
    other = create_user(db, "other@example.com", "agent", "correct horse battery", now=NOW)
    web = make_source(db, "website", "web")
    send(db, settings, web, {"type": "identify", "userId": "u1", "traits": {"email": "taken@shop.example"}})
    taken = lookup_profile(db, "email", "taken@shop.example")
    assign_owner(db, SYSTEM, [taken], other.id)
    viewer = viewer_for(db, rep.id, "agent")
    lead = create_record(
        db, viewer, "lead", {"name": "Taken", "email": "taken@shop.example"}, settings=settings, now=NOW
    )
    convert_lead(db, viewer, lead["id"], kind="person", settings=settings, now=NOW)
    with db.read() as session:
        assert session.get(Profile, taken).owner_id == other.id  # type: ignore[union-attr]
