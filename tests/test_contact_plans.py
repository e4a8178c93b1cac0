"""Contact plans end to end: made from a list and from a segment, tasks for the customers' owners, contact
cards with exact effectiveness figures, data scope, errors naming the field, the REST API and the pages.
Real SQLite and PostgreSQL, an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.factories import lookup_profile, make_source, send
from tests.test_follow_ups import account
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import create_token, create_user, viewer_for
from threadline.config import Settings
from threadline.errors import Invalid, NotFound
from threadline.ingest import list_sources
from threadline.sales import create_plan, get_plan, list_plans, list_tasks, record_card
from threadline.segments import create_segment, recompute
from threadline.storage import Database
from threadline.storage.models import Profile

T0 = datetime(2026, 3, 2, 9, 0)
WINDOW = {"starts_at": T0, "ends_at": T0 + timedelta(days=7)}


@pytest.fixture
def people(db: Database) -> dict[str, int]:
    return {
        role: create_user(db, f"{role}@example.com", role, "correct horse battery", now=T0).id
        for role in ("agent", "manager", "admin", "analyst")
    } | {"other": create_user(db, "other@example.com", "agent", "correct horse battery", now=T0).id}


def owned(db: Database, settings: Settings, email: str, owner_id: int | None) -> str:
    """A customer known by email, owned by `owner_id`."""
    known = [s for s in list_sources(db) if s.name == "web"]
    source = known[0] if known else make_source(db, "web", "web")
    send(
        db,
        settings,
        source,
        {"type": "identify", "userId": f"u-{email}", "traits": {"email": email}, "messageId": f"m-{email}"},
    )
    profile = lookup_profile(db, "email", email)
    with db.write() as session:
        row = session.get(Profile, profile)
        assert row is not None
        row.owner_id = owner_id
    return profile


def plan_args(audience: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return (
        {
            "name": "Spring win-back",
            "goal": "Bring lapsed buyers back",
            "audience": audience,
            "channel": "phone",
            "method": "call with the spring offer",
            "content": "Offer 10% off",
            "incentive": "50 points per effective call",
            "now": T0,
        }
        | WINDOW
        | extra
    )


def test_a_plan_from_a_list_gives_owners_tasks_and_counts_its_cards_exactly(
    db: Database, settings: Settings, people: dict[str, int]
) -> None:
    ann = owned(db, settings, "ann@shop.example", people["agent"])
    bob = owned(db, settings, "bob@shop.example", people["other"])
    cat = owned(db, settings, "cat@shop.example", people["agent"])
    dan = owned(db, settings, "dan@shop.example", None)  # unowned: the task goes to the plan's owner
    company = account(db, "Cat's Cafe", people["agent"], cat)
    admin = viewer_for(db, people["admin"], "admin")
    plan = create_plan(
        db,
        admin,
        **plan_args({"type": "list", "profile_ids": [ann, bob, dan], "account_ids": [company]}),
    )
    assert plan.effectiveness.audience == 4
    assigned = {m["profile_id"]: m["assignee_id"] for m in plan.members}
    assert assigned == {
        ann: people["agent"],
        bob: people["other"],
        cat: people["agent"],
        dan: people["admin"],
    }
    tasks = list_tasks(db, viewer_for(db, people["agent"], "agent"))
    assert sorted(t.related_id or "" for t in tasks) == sorted([ann, cat])
    assert {(t.title, t.due_at, t.related_type) for t in tasks} == {
        ("Spring win-back", WINDOW["ends_at"], "profile")
    }

    agent = viewer_for(db, people["agent"], "agent")
    later = T0 + timedelta(days=1)
    record_card(db, agent, plan.id, profile_id=ann, reached=False, effective=False, now=later)
    record_card(
        db,
        agent,
        plan.id,
        profile_id=ann,
        reached=True,
        effective=True,
        rating=5,
        feedback="Loved it",
        now=later,
    )
    record_card(db, agent, plan.id, profile_id=cat, reached=True, effective=False, rating=2, now=later)
    other = viewer_for(db, people["other"], "agent")
    record_card(
        db, other, plan.id, profile_id=bob, reached=False, effective=False, feedback="No answer", now=later
    )

    view = get_plan(db, agent, plan.id)
    e = view.effectiveness
    # 3 of 4 contacted; reached ann and cat (2 of 3); effective ann only (1 of 3); ratings 5 and 2.
    assert (e.audience, e.contacted, e.reached, e.effective, e.cards) == (4, 3, 2, 1, 4)
    assert (e.reached_pct, e.effective_pct, e.coverage_pct, e.average_rating) == (66.7, 33.3, 75.0, 3.5)
    assert view.as_json()["feedback"] == ["No answer", "Loved it"]
    # The first card closes the customer's task.
    statuses = {m["profile_id"]: m["task_status"] for m in view.members}
    assert statuses == {ann: "done", bob: "done", cat: "done", dan: "open"}


def test_a_plan_from_a_segment_takes_the_members_in_the_makers_scope(
    db: Database, settings: Settings, people: dict[str, int]
) -> None:
    mine = owned(db, settings, "vip1@shop.example", people["agent"])
    theirs = owned(db, settings, "vip2@shop.example", people["other"])
    owned(db, settings, "plain@shop.example", people["agent"])
    admin = viewer_for(db, people["admin"], "admin")
    segment = create_segment(
        db,
        admin,
        name="VIPs",
        definition={"type": "identity", "kind": "email", "op": "starts_with", "value": "vip"},
        now=T0,
    )
    recompute(db, segment.id, now=T0, settings=settings)
    everyone = create_plan(db, admin, **plan_args({"type": "segment", "segment_id": segment.id}))
    assert (everyone.audience_type, everyone.segment_id) == ("segment", segment.id)
    assert sorted(m["profile_id"] for m in everyone.members) == sorted([mine, theirs])
    agent = viewer_for(db, people["agent"], "agent")
    own = create_plan(db, agent, **plan_args({"type": "segment", "segment_id": segment.id}, name="Mine"))
    assert [m["profile_id"] for m in own.members] == [mine]


def test_scope_and_errors_naming_the_field(db: Database, settings: Settings, people: dict[str, int]) -> None:
    ann = owned(db, settings, "ann@shop.example", people["agent"])
    bob = owned(db, settings, "bob@shop.example", people["other"])
    agent = viewer_for(db, people["agent"], "agent")
    other = viewer_for(db, people["other"], "agent")
    plan = create_plan(db, agent, **plan_args({"type": "list", "profile_ids": [ann]}))
    # The owner, admins and analysts see it; another agent does not (answers like a missing plan).
    assert [p.id for p in list_plans(db, viewer_for(db, people["admin"], "admin"))] == [plan.id]
    assert [p.id for p in list_plans(db, viewer_for(db, people["analyst"], "analyst"))] == [plan.id]
    assert list_plans(db, other) == []
    with pytest.raises(NotFound):
        get_plan(db, other, plan.id)
    with pytest.raises(NotFound):
        record_card(db, other, plan.id, profile_id=ann, reached=True, effective=True, now=T0)

    def field_of(viewer: Any, **changes: Any) -> str | None:
        with pytest.raises(Invalid) as error:
            create_plan(db, viewer, **(plan_args({"type": "list", "profile_ids": [ann]}) | changes))
        return str(error.value.details.get("field"))

    assert field_of(agent, name=" ") == "name"
    assert field_of(agent, goal=None) == "goal"
    assert field_of(agent, channel="fax") == "channel"
    assert field_of(agent, ends_at=T0) == "ends_at"
    assert field_of(agent, starts_at="tomorrow") == "starts_at"
    assert field_of(agent, audience={"type": "crowd"}) == "audience.type"
    assert field_of(agent, audience={"type": "list", "profile_ids": [bob]}) == "audience.profile_ids"
    assert field_of(agent, audience={"type": "list", "account_ids": ["x"]}) == "audience.account_ids"
    assert field_of(agent, audience={"type": "segment", "segment_id": 999}) == "audience.segment_id"
    assert field_of(agent, audience={"type": "list"}) == "audience"

    def card_field(**changes: Any) -> str | None:
        args: dict[str, Any] = {"profile_id": ann, "reached": True, "effective": True, "now": T0} | changes
        with pytest.raises(Invalid) as error:
            record_card(db, agent, plan.id, **args)
        return str(error.value.details.get("field"))

    assert card_field(rating=6) == "rating"
    assert card_field(reached="maybe") == "reached"
    assert card_field(reached=False) == "effective"
    assert card_field(profile_id=bob) == "profile_id"
    assert card_field(contacted_at=T0 + timedelta(days=1)) == "contacted_at"


def test_the_api_and_the_pages(db: Database, settings: Settings, people: dict[str, int]) -> None:
    ann = owned(db, settings, "ann@shop.example", people["agent"])
    token = create_token(db, "agent@example.com", now=T0)
    with (
        LiveServer(settings, db, clock=lambda: T0 + timedelta(days=1)) as live,
        httpx.Client(base_url=live.url) as http,
    ):
        auth = {"Authorization": f"Bearer {token}"}
        body = {
            "name": "Check-in",
            "goal": "Ask how the order went",
            "audience": {"type": "list", "profile_ids": [ann]},
            "channel": "phone",
            "starts_at": "2026-03-02T09:00:00Z",
            "ends_at": "2026-03-09T09:00:00Z",
        }
        bad = http.post("/api/v1/contact-plans", json=body | {"ends_at": "soon"}, headers=auth)
        assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "ends_at"}
        made = http.post("/api/v1/contact-plans", json=body, headers=auth)
        assert made.status_code == 201, made.text
        plan_id = made.json()["id"]
        card = http.post(
            f"/api/v1/contact-plans/{plan_id}/cards",
            json={"profile_id": ann, "reached": True, "effective": True, "rating": 4, "feedback": "Happy"},
            headers=auth,
        )
        assert card.status_code == 201, card.text
        lessons = http.put(
            f"/api/v1/contact-plans/{plan_id}/lessons", json={"lessons": "Mornings work best"}, headers=auth
        )
        shown = http.get(f"/api/v1/contact-plans/{plan_id}", headers=auth).json()
        assert lessons.status_code == 200 and shown["lessons"] == "Mornings work best"
        assert shown["effectiveness"] | {} == {
            "audience": 1,
            "contacted": 1,
            "reached": 1,
            "effective": 1,
            "cards": 1,
            "reached_pct": 100.0,
            "effective_pct": 100.0,
            "coverage_pct": 100.0,
            "average_rating": 4.0,
        }
        assert shown["feedback"] == ["Happy"]

        sign_in(http, "agent@example.com")
        listing = http.get("/contact-plans")
        assert listing.status_code == 200 and "Check-in" in listing.text
        form_page = http.get("/contact-plans/new")
        assert form_page.status_code == 200 and "<script>" not in form_page.text
        form = {
            "csrf": csrf_of(form_page.text),
            "name": "Visit round",
            "goal": "Meet in person",
            "audience_type": "list",
            "profile_ids": ann,
            "channel": "visit",
            "starts_at": "2026-03-03T09:00",
            "ends_at": "2026-03-02T09:00",
        }
        refused = http.post("/contact-plans", data=form)
        assert refused.status_code == 400 and "ends_at" in refused.text
        created = http.post("/contact-plans", data=form | {"ends_at": "2026-03-10T09:00"})
        assert created.status_code == 303
        page = http.get(created.headers["location"])
        assert page.status_code == 200 and 'data-figure="audience">1<' in page.text
        recorded = http.post(
            f"{created.headers['location']}/cards",
            data={
                "csrf": csrf_of(page.text),
                "profile_id": ann,
                "reached": "yes",
                "effective": "no",
                "rating": "3",
            },
        )
        assert recorded.status_code == 303
        page = http.get(created.headers["location"])
        assert 'data-figure="reached">100.0%<' in page.text and 'data-figure="effective">0.0%<' in page.text
        assert 'href="/contact-plans"' in page.text
