"""Follow-ups end to end: recorded within the data scope, on the customer's timeline through the write
path, moving the account's last/next follow-up times; calls, emails and messages other capabilities logged
shown as follow-ups; the REST API and the 360 panel. Real SQLite and PostgreSQL, an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import LiveServer
from tests.factories import lookup_profile, make_source, send, timeline_page
from threadline.accounts import create_token, create_user, viewer_for
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.sales import list_follow_ups, record_follow_up, schedule_items
from threadline.storage import Database
from threadline.storage.models import SalesAccount

T0 = datetime(2026, 3, 2, 9, 0)


def account(
    db: Database, name: str, owner_id: int | None, profile_id: str | None = None, **extra: object
) -> int:
    with db.write() as session:
        row = SalesAccount(
            name=name,
            kind="company",
            owner_id=owner_id,
            profile_id=profile_id,
            custom={},
            created_at=T0,
            updated_at=T0,
            **extra,
        )
        session.add(row)
        session.flush()
        return row.id


def customer(db: Database, settings: Settings, email: str) -> str:
    source = make_source(db, "web", "web")
    send(
        db,
        settings,
        source,
        {"type": "identify", "userId": f"u-{email}", "traits": {"email": email}, "messageId": f"m-{email}"},
    )
    return lookup_profile(db, "email", email)


@pytest.fixture
def people(db: Database) -> dict[str, int]:
    return {
        role: create_user(db, f"{role}@example.com", role, "correct horse battery", now=T0).id
        for role in ("agent", "manager", "admin", "analyst")
    } | {"other": create_user(db, "other@example.com", "agent", "correct horse battery", now=T0).id}


def test_a_follow_up_lands_on_the_timeline_and_moves_last_and_next(
    db: Database, settings: Settings, people: dict[str, int]
) -> None:
    profile = customer(db, settings, "ann@shop.example")
    account_id = account(db, "Ann's Bakery", people["agent"], profile)
    agent = viewer_for(db, people["agent"], "agent")
    tomorrow = T0 + timedelta(days=1, hours=1)
    view = record_follow_up(
        db,
        settings,
        agent,
        subject_type="account",
        subject_id=str(account_id),
        method="phone",
        content="Wants a quote for 200 loaves",
        outcome="quote requested",
        next_contact_at=tomorrow,
        now=T0,
    )
    assert view.owner_id == people["agent"]
    events = timeline_page(db, profile)["events"]
    logged = [e for e in events if e["event"] == "Follow-up Logged"]
    assert len(logged) == 1
    assert logged[0]["channel"] == "call_center"
    assert logged[0]["properties"]["outcome"] == "quote requested"
    with db.read() as session:
        row = session.get(SalesAccount, account_id)
        assert row is not None
        assert (row.last_follow_up_at, row.next_follow_up_at) == (T0, tomorrow)
    # The next contact is a reminder in the owner's schedule for tomorrow.
    items = schedule_items(db, people["agent"], T0 + timedelta(days=1), T0 + timedelta(days=2), logged=False)
    assert [(i.kind, i.title, i.starts_at) for i in items] == [("reminder", "Ann's Bakery", tomorrow)]


def test_bad_input_names_the_field_and_scope_hides_records(
    db: Database, settings: Settings, people: dict[str, int]
) -> None:
    mine = account(db, "Mine", people["agent"])
    theirs = account(db, "Theirs", people["other"])
    agent = viewer_for(db, people["agent"], "agent")
    with pytest.raises(Invalid) as error:
        record_follow_up(
            db,
            settings,
            agent,
            subject_type="account",
            subject_id=str(mine),
            method="fax",
            content="x",
            now=T0,
        )
    assert error.value.details == {"field": "method"}
    with pytest.raises(Invalid) as error:
        record_follow_up(
            db,
            settings,
            agent,
            subject_type="account",
            subject_id=str(mine),
            method="phone",
            content=" ",
            now=T0,
        )
    assert error.value.details == {"field": "content"}
    with pytest.raises(NotFound):
        record_follow_up(
            db,
            settings,
            agent,
            subject_type="account",
            subject_id=str(theirs),
            method="phone",
            content="x",
            now=T0,
        )
    with pytest.raises(Forbidden):
        analyst = viewer_for(db, people["analyst"], "analyst")
        record_follow_up(
            db,
            settings,
            analyst,
            subject_type="account",
            subject_id=str(mine),
            method="phone",
            content="x",
            now=T0,
        )
    admin = viewer_for(db, people["admin"], "admin")
    record_follow_up(
        db,
        settings,
        admin,
        subject_type="account",
        subject_id=str(theirs),
        method="visit",
        content="x",
        now=T0,
    )
    with pytest.raises(NotFound):
        list_follow_ups(db, agent, subject_type="account", subject_id=str(theirs))


def test_emails_calls_and_messages_from_other_capabilities_show_as_follow_ups(
    db: Database, settings: Settings, people: dict[str, int]
) -> None:
    profile = customer(db, settings, "bo@shop.example")
    account_id = account(db, "Bo Ltd", people["agent"], profile)
    service = make_source(db, "phones", "call_center")
    chat = make_source(db, "chat", "chat")
    at = (T0 + timedelta(hours=1)).isoformat() + "Z"
    send(
        db,
        settings,
        service,
        {
            "type": "track",
            "event": "Call Logged",
            "userId": "u-bo@shop.example",
            "timestamp": at,
            "properties": {"notes": "asked about delivery"},
            "messageId": "call-1",
        },
    )
    send(
        db,
        settings,
        chat,
        {
            "type": "track",
            "event": "Message Received",
            "userId": "u-bo@shop.example",
            "timestamp": at,
            "properties": {"text": "hello?"},
            "messageId": "chat-1",
        },
    )
    send(
        db,
        settings,
        chat,
        {"type": "track", "event": "Page Viewed", "userId": "u-bo@shop.example", "messageId": "pv-1"},
    )
    agent = viewer_for(db, people["agent"], "agent")
    record_follow_up(
        db,
        settings,
        agent,
        subject_type="account",
        subject_id=str(account_id),
        method="visit",
        content="visited",
        now=T0 + timedelta(hours=2),
    )
    found = list_follow_ups(db, agent, subject_type="account", subject_id=str(account_id))
    assert [(f.method, f.automatic, f.content) for f in found] == [
        ("visit", False, "visited"),
        ("chat", True, "hello?"),
        ("phone", True, "asked about delivery"),
    ]


def test_the_rest_api_and_the_360_panel(db: Database, settings: Settings, people: dict[str, int]) -> None:
    profile = customer(db, settings, "cy@shop.example")
    account_id = account(db, "Cy Co", people["agent"], profile)
    token = create_token(db, "agent@example.com", now=T0)
    other = create_token(db, "other@example.com", now=T0)
    with LiveServer(settings, db, clock=lambda: T0) as live, httpx.Client(base_url=live.url) as http:
        auth = {"Authorization": f"Bearer {token}"}
        bad = http.post(
            "/api/v1/follow-ups",
            headers=auth,
            json={
                "subject_type": "account",
                "subject_id": str(account_id),
                "method": "phone",
                "content": "hi",
                "next_contact_at": "tomorrow",
            },
        )
        assert bad.status_code == 400
        assert bad.json()["error"]["details"] == {"field": "next_contact_at"}
        made = http.post(
            "/api/v1/follow-ups",
            headers=auth,
            json={
                "subject_type": "account",
                "subject_id": str(account_id),
                "method": "phone",
                "content": "hi",
                "next_contact_at": "2026-03-03T10:00:00Z",
            },
        )
        assert made.status_code == 201, made.text
        listed = http.get(
            "/api/v1/follow-ups",
            headers=auth,
            params={"subject_type": "account", "subject_id": str(account_id)},
        )
        assert [f["content"] for f in listed.json()["follow_ups"]] == ["hi"]
        hidden = http.get(
            f"/api/v1/follow-ups/{made.json()['id']}", headers={"Authorization": f"Bearer {other}"}
        )
        assert hidden.status_code == 404
        changed = http.patch(
            f"/api/v1/follow-ups/{made.json()['id']}", headers=auth, json={"outcome": "call back"}
        )
        assert changed.json()["outcome"] == "call back"
        assert http.delete(f"/api/v1/follow-ups/{made.json()['id']}", headers=auth).status_code == 204
