"""Segments: each kind of condition on hand-made data, nested logic, validation, membership kept current
(recompute, the refresh after ingestion, enter/exit events on the timeline), data scope, API and pages.
Runs on SQLite and, with THREADLINE_TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send, timeline_page
from tests.test_web_pages import sign_in
from threadline.accounts import create_user, viewer_for
from threadline.config import Settings
from threadline.jobs import Worker, list_jobs
from threadline.privacy import check_send, record_consent, statement
from threadline.profiles import assign_owner
from threadline.segments import (
    InvalidDefinition,
    create_segment,
    preview,
    recompute,
    refresh,
    update_segment,
    validate_definition,
)
from threadline.storage import Database
from threadline.storage.models import ProcessingRestriction, Profile, ProfileScore

NOW = datetime(2024, 4, 5, 12, 0)
_seq = iter(range(1_000_000))


def track(user: str, event: str, at: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": properties,
        "timestamp": at + "Z",
        "messageId": f"m{next(_seq)}",
    }


def identify(user: str, at: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user,
        "traits": traits,
        "timestamp": at + "Z",
        "messageId": f"m{next(_seq)}",
    }


@pytest.fixture
def shop(db: Database, settings: Settings) -> dict[str, Any]:
    web, app = make_source(db, "website", "web"), make_source(db, "app", "app")
    store, email = make_source(db, "pos", "store"), make_source(db, "newsletter", "email")
    send(
        db,
        settings,
        web,
        identify("alice", "2024-01-10T09:00:00", plan="pro", age=34, vip=True, email="alice@example.com"),
        track("alice", "Order Completed", "2024-02-15T10:00:00", revenue=100),
        track("alice", "Order Completed", "2024-03-20T10:00:00", revenue=70),
        track("alice", "Order Completed", "2024-04-02T10:00:00", revenue=30),
        track("alice", "Product Viewed", "2024-04-01T10:00:00", category="shoes", price=120),
        identify("dave", "2023-12-01T09:00:00", plan="pro"),
        track("dave", "Order Completed", "2024-01-01T10:00:00", revenue=80),
    )
    send(db, settings, store, track("alice", "Order Completed", "2024-03-05T10:00:00", total=50))
    send(
        db,
        settings,
        app,
        identify("bob", "2024-03-02T10:00:00", plan="free", age="40"),
        track("bob", "Order Completed", "2024-03-03T10:00:00", revenue=200),
        track("bob", "Product Viewed", "2024-03-04T10:00:00", category="bags", price=80),
        track("bob", "Order Completed", "2024-03-04T11:00:00"),  # no amount: not a purchase
    )
    send(
        db,
        settings,
        email,
        identify("carol", "2024-03-10T08:00:00", age=19, email="carol@example.org"),
        track("carol", "Email Opened", "2024-03-11T09:00:00"),
        track("carol", "Email Opened", "2024-03-12T09:00:00"),
    )
    ids = {name: lookup_profile(db, "user_id", name) for name in ("alice", "bob", "carol", "dave")}
    agent = create_user(db, "agent@example.com", "agent", "correct horse battery", now=NOW)
    assign_owner(db, SYSTEM, [ids["bob"], ids["dave"]], agent.id)
    with db.write() as session:
        session.add(
            ProfileScore(
                profile_id=ids["bob"], name="churn_risk", value=0.8, details={}, computed_at=NOW, model="t"
            )
        )
        session.add(
            ProfileScore(
                profile_id=ids["alice"], name="churn_risk", value=0.1, details={}, computed_at=NOW, model="t"
            )
        )
        session.execute(update(Profile).where(Profile.id == ids["carol"]).values(tags=["newsletter", "b2b"]))
    return {"ids": ids, "names": {v: k for k, v in ids.items()}, "agent": viewer_for(db, agent.id, "agent")}


def who(db: Database, shop: dict[str, Any], definition: dict[str, Any], viewer: Any = SYSTEM) -> set[str]:
    count, sample = preview(db, viewer, definition, 50, now=NOW)
    names = {shop["names"][row["id"]] for row in sample}
    assert count == len(names)
    return names


def trait(key: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"type": "trait", "key": key, "op": op, **({} if value is None else {"value": value})}


def test_trait_operators_including_numbers_in_json(db: Database, shop: dict[str, Any]) -> None:
    assert who(db, shop, trait("plan", "eq", "pro")) == {"alice", "dave"}
    assert who(db, shop, trait("plan", "neq", "pro")) == {"bob", "carol"}  # no plan is "not pro"
    assert who(db, shop, trait("plan", "contains", "RO")) == {"alice", "dave"}
    assert who(db, shop, trait("plan", "starts_with", "fr")) == {"bob"}
    assert who(db, shop, trait("plan", "in", ["free", "pro"])) == {"alice", "bob", "dave"}
    assert who(db, shop, trait("age", "exists")) == {"alice", "bob", "carol"}
    # Only JSON numbers compare as numbers: bob's "40" is text.
    assert who(db, shop, trait("age", "gt", 30)) == {"alice"}
    assert who(db, shop, trait("age", "lte", 34)) == {"alice", "carol"}
    assert who(db, shop, trait("age", "eq", 34.0)) == {"alice"}
    assert who(db, shop, trait("vip", "eq", True)) == {"alice"}


def test_identities_channels_tags_owner_and_scores(db: Database, shop: dict[str, Any]) -> None:
    assert who(db, shop, {"type": "identity", "kind": "email", "op": "exists"}) == {"alice", "carol"}
    assert who(db, shop, {"type": "identity", "kind": "email", "op": "starts_with", "value": "car"}) == {
        "carol"
    }
    assert who(db, shop, {"type": "channel", "channel": "store"}) == {"alice"}
    assert who(db, shop, {"type": "channel", "channel": "app", "within_days": 40}) == {"bob"}
    assert who(db, shop, {"type": "channel", "channel": "app", "within_days": 30}) == set()
    assert who(db, shop, {"type": "tag", "value": "b2b"}) == {"carol"}
    agent_id = shop["agent"].user_id
    assert who(db, shop, {"type": "owner", "value": agent_id}) == {"bob", "dave"}
    assert who(db, shop, {"type": "owner", "value": None}) == {"alice", "carol"}
    assert who(db, shop, {"type": "score", "name": "churn_risk", "op": "gte", "value": 0.5}) == {"bob"}
    assert who(db, shop, {"type": "score", "name": "churn_risk", "op": "exists"}) == {"alice", "bob"}


def test_events_did_and_did_not_with_counts_windows_and_properties(
    db: Database, shop: dict[str, Any]
) -> None:
    def event(**fields: Any) -> dict[str, Any]:
        return {"type": "event", "name": "Order Completed", **fields}

    assert who(db, shop, event()) == {"alice", "bob", "dave"}
    assert who(db, shop, event(at_least=3)) == {"alice"}
    assert who(db, shop, event(at_least=2)) == {"alice", "bob"}  # bob's order without an amount is an event
    assert who(db, shop, event(within_days=10)) == {"alice"}
    assert who(db, shop, event(did=False)) == {"carol"}
    assert who(db, shop, event(did=False, within_days=60)) == {"carol", "dave"}
    assert who(db, shop, event(channel="store")) == {"alice"}
    viewed = {"type": "event", "name": "Product Viewed"}
    assert who(db, shop, {**viewed, "where": [{"key": "category", "op": "eq", "value": "shoes"}]}) == {
        "alice"
    }
    assert who(db, shop, {**viewed, "where": [{"key": "price", "op": "lt", "value": 100}]}) == {"bob"}
    assert who(db, shop, {"type": "event", "name": "Email Opened", "at_least": 2, "within_days": 30}) == {
        "carol"
    }


def test_computed_traits_and_rfm(db: Database, shop: dict[str, Any]) -> None:
    def computed(name: str, op: str, value: Any = None) -> dict[str, Any]:
        return {"type": "computed", "trait": name, "op": op, **({} if value is None else {"value": value})}

    assert who(db, shop, computed("total_spend", "gte", 200)) == {"alice", "bob"}  # 250 and 200
    assert who(db, shop, computed("total_spend", "eq", 0)) == {"carol"}
    assert who(db, shop, computed("order_count", "eq", 1)) == {"bob", "dave"}  # the order without an amount
    assert who(db, shop, computed("order_count", "gte", 4)) == {"alice"}
    assert who(db, shop, computed("days_since_last_purchase", "gte", 60)) == {"dave"}  # 95 days
    assert who(db, shop, computed("days_since_last_purchase", "eq", 3)) == {"alice"}  # Apr 2 10:00
    assert who(db, shop, computed("days_since_last_purchase", "lt", 3)) == set()
    assert who(db, shop, computed("days_since_last_purchase", "exists")) == {"alice", "bob", "dave"}
    assert who(db, shop, computed("days_since_last_contact", "lte", 5)) == {"alice"}
    assert who(db, shop, computed("favourite_channel", "eq", "email")) == {"carol"}
    assert who(db, shop, computed("favourite_channel", "in", ["web", "app"])) == {"alice", "bob", "dave"}
    spend_total_only = {**computed("total_spend", "gte", 50), "value_keys": ["total"]}
    assert who(db, shop, spend_total_only) == {"alice"}
    # Quintiles among the 3 buyers: recency dave < bob < alice; orders bob = dave < alice.
    assert who(db, shop, {"type": "rfm", "score": "r", "op": "gte", "value": 4}) == {"alice"}
    assert who(db, shop, {"type": "rfm", "score": "r", "op": "eq", "value": 2}) == {"bob"}
    assert who(db, shop, {"type": "rfm", "score": "f", "op": "eq", "value": 1}) == {"bob", "dave"}
    assert who(db, shop, {"type": "rfm", "score": "m", "op": "lte", "value": 2}) == {"bob", "dave"}


def test_consent_agrees_with_check_send(db: Database, shop: dict[str, Any]) -> None:
    ids = shop["ids"]
    record_consent(
        db, SYSTEM, ids["alice"], [statement("marketing", "email", "granted")], source="web", now=NOW
    )
    record_consent(
        db, SYSTEM, ids["carol"], [statement("marketing", "all", "granted")], source="web",
        now=NOW, recorded_at=datetime(2024, 3, 1),
    )  # fmt: skip
    record_consent(
        db, SYSTEM, ids["carol"], [statement("marketing", "email", "withdrawn")], source="web",
        now=NOW, recorded_at=datetime(2024, 3, 2),
    )  # fmt: skip
    record_consent(db, SYSTEM, ids["bob"], [statement("service", "sms", "denied")], source="web", now=NOW)
    record_consent(db, SYSTEM, ids["dave"], [statement("marketing", "all", "granted")], source="web", now=NOW)
    with db.write() as session:
        session.add(ProcessingRestriction(profile_id=ids["dave"], since=NOW))
    for purpose in ("marketing", "service"):
        for channel in ("email", "sms"):
            for allowed in (True, False):
                node = {"type": "consent", "purpose": purpose, "channel": channel, "allowed": allowed}
                chosen = who(db, shop, node)
                with db.read() as session:
                    expected = {
                        name
                        for name, pid in ids.items()
                        if check_send(session, pid, channel, purpose).allowed == allowed
                    }
                assert chosen == expected, (purpose, channel, allowed)
    assert who(db, shop, {"type": "consent", "purpose": "marketing", "channel": "email"}) == {"alice"}
    assert who(db, shop, {"type": "consent", "purpose": "marketing", "channel": "sms"}) == {"carol"}


def test_nested_groups(db: Database, shop: dict[str, Any]) -> None:
    definition = {
        "any": [
            {"all": [trait("plan", "eq", "pro"), {"not": {"type": "channel", "channel": "store"}}]},
            {"type": "tag", "value": "newsletter"},
        ]
    }
    assert who(db, shop, definition) == {"dave", "carol"}
    assert who(db, shop, {"all": []}) == {"alice", "bob", "carol", "dave"}
    assert who(db, shop, {"any": []}) == set()


def test_in_segment_and_cycles_are_refused(db: Database, shop: dict[str, Any]) -> None:
    pro = create_segment(db, SYSTEM, name="Pro", definition=trait("plan", "eq", "pro"), now=NOW)
    recent = {"type": "event", "name": "Order Completed", "within_days": 30}
    definition = {"all": [{"type": "segment", "segment": pro.id}, recent]}
    buyers = create_segment(db, SYSTEM, name="Pro buyers", definition=definition, now=NOW)
    assert who(db, shop, {"type": "segment", "segment": buyers.id}) == {"alice"}
    with pytest.raises(InvalidDefinition) as cycle:
        update_segment(
            db, SYSTEM, pro.id, now=NOW, definition={"all": [{"type": "segment", "segment": buyers.id}]}
        )
    assert cycle.value.field == "definition.all[0].segment" and "cycle" in str(cycle.value)
    with pytest.raises(InvalidDefinition) as itself:
        update_segment(db, SYSTEM, pro.id, now=NOW, definition={"type": "segment", "segment": pro.id})
    assert itself.value.field == "definition.segment"
    with pytest.raises(InvalidDefinition) as missing:
        preview(db, SYSTEM, {"any": [{"type": "segment", "segment": 999}]}, now=NOW)
    assert missing.value.field == "definition.any[0].segment"


@pytest.mark.parametrize(
    ("definition", "field", "words"),
    [
        ({"all": [trait("a", "eq", 1), trait("b", "eq", 1), {"type": "trait", "key": "c", "op": "like"}]},
         "definition.all[2].op", "must be one of eq, neq"),
        ({"any": [{"type": "colour"}]}, "definition.any[0].type", "must be one of trait"),
        ({"not": {"type": "event", "name": "x", "at_least": 0}}, "definition.not.at_least", "whole number"),
        ({"type": "event", "name": "x", "where": [{"key": "p", "op": "gt", "value": True}]},
         "definition.where[0].value", "number"),
        ({"type": "consent", "purpose": "spam", "channel": "email"}, "definition.purpose", "marketing"),
        ({"type": "rfm", "score": "r", "op": "eq", "value": 6}, "definition.value", "1 to 5"),
        ({"type": "trait", "key": "pl'an", "op": "exists"}, "definition.key", "without quotes"),
        ({"all": {"type": "tag"}}, "definition.all", "list"),
        ([], "definition", "JSON object"),
    ],
)  # fmt: skip
def test_validation_names_the_field(definition: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidDefinition) as error:
        validate_definition(definition)
    assert error.value.field == field and words in str(error.value)
    assert str(error.value).startswith(f"{field}: ")


def test_an_agents_preview_counts_only_their_customers(db: Database, shop: dict[str, Any]) -> None:
    assert who(db, shop, trait("plan", "eq", "pro"), shop["agent"]) == {"dave"}
    assert who(db, shop, {"all": []}, shop["agent"]) == {"bob", "dave"}


def _timeline_names(db: Database, profile_id: str) -> list[str]:
    return [e.get("event") or e.get("name") for e in timeline_page(db, profile_id, limit=100)["events"]]


def test_recompute_diffs_and_puts_enter_and_exit_on_the_timeline(
    db: Database, settings: Settings, shop: dict[str, Any]
) -> None:
    ids = shop["ids"]
    pro = create_segment(db, SYSTEM, name="Pro", definition=trait("plan", "eq", "pro"), now=NOW)
    first = recompute(db, pro.id, now=NOW, settings=settings)
    assert (first.entered, first.exited, first.members) == (2, 0, 2)
    assert "Segment Entered" in _timeline_names(db, ids["alice"])
    again = recompute(db, pro.id, now=NOW, settings=settings)
    assert (again.entered, again.exited, again.members) == (0, 0, 2)
    update_segment(db, SYSTEM, pro.id, now=NOW, definition=trait("plan", "in", ["pro", "free"]))
    later = datetime(2024, 4, 6)
    assert recompute(db, pro.id, now=later, settings=settings).counts() == {"entered": 1, "exited": 0}
    update_segment(db, SYSTEM, pro.id, now=NOW, definition=trait("plan", "eq", "free"))
    change = recompute(db, pro.id, now=later, settings=settings)
    assert change.counts() == {"entered": 0, "exited": 2} and change.members == 1
    assert _timeline_names(db, ids["dave"]).count("Segment Exited") == 1
    assert _timeline_names(db, ids["dave"]).count("Segment Entered") == 1


def test_ingestion_refreshes_the_customers_it_touched(
    db: Database, settings: Settings, shop: dict[str, Any]
) -> None:
    ids = shop["ids"]
    pro = create_segment(db, SYSTEM, name="Pro", definition=trait("plan", "eq", "pro"), now=NOW)
    recompute(db, pro.id, now=NOW, settings=settings)
    Worker(db, settings, schedules=[]).run_until_idle()  # the jobs queued so far (queued at the real time)
    before = len(list_jobs(db, kind="segments.refresh", limit=1000))
    send(db, settings, make_source(db, "crm", "other"), identify("bob", "2024-04-05T10:00:00", plan="pro"))
    queued = list_jobs(db, kind="segments.refresh", status="queued")
    assert len(list_jobs(db, kind="segments.refresh", limit=1000)) == before + 1
    assert queued[0].payload == {"profile_ids": [ids["bob"]]}
    Worker(db, settings, schedules=[]).run_until_idle()
    assert "Segment Entered" in _timeline_names(db, ids["bob"])
    assert refresh(db, [ids["bob"], ids["carol"]], now=NOW, settings=settings)["entered"] == 0
    from threadline.segments import get_segment

    assert get_segment(db, pro.id).member_count == 3


def test_api_crud_preview_members_and_recompute(
    http: httpx.Client, db: Database, shop: dict[str, Any]
) -> None:
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    created = http.post(
        "/api/v1/segments", headers=admin, json={"name": "Pro", "definition": trait("plan", "eq", "pro")}
    )
    assert created.status_code == 201, created.text
    segment_id = created.json()["id"]
    bad = http.post("/api/v1/segments/preview", headers=admin, json={"definition": {"all": [{"type": "x"}]}})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "definition.all[0].type"
    shown = http.post(
        "/api/v1/segments/preview", headers=admin, json={"definition": trait("plan", "eq", "pro")}
    )
    assert shown.json()["count"] == 2 and len(shown.json()["sample"]) == 2
    done = http.post(f"/api/v1/segments/{segment_id}/recompute", headers=admin)
    assert done.json()["entered"] == 2
    members = http.get(f"/api/v1/segments/{segment_id}/members", headers=admin).json()
    assert members["total"] == 2 and {m["id"] for m in members["members"]} == {
        shop["ids"]["alice"],
        shop["ids"]["dave"],
    }
    agent = {"Authorization": f"Bearer {make_token(db, 'agent2@example.com', 'agent')}"}
    refused = http.post("/api/v1/segments", headers=agent, json={"name": "Mine", "definition": {"all": []}})
    assert refused.status_code == 403
    assert http.get(f"/api/v1/segments/{segment_id}/members", headers=agent).json()["total"] == 0
    renamed = http.patch(f"/api/v1/segments/{segment_id}", headers=admin, json={"name": "Pro plan"})
    assert renamed.json()["name"] == "Pro plan"
    assert (
        http.post(
            "/api/v1/segments", headers=admin, json={"name": "Pro plan", "definition": {"all": []}}
        ).status_code
        == 409
    )
    audit = http.get("/api/v1/audit", headers=admin, params={"object_type": "segment"})
    if audit.status_code == 200:
        assert "alice" not in audit.text
    assert http.delete(f"/api/v1/segments/{segment_id}", headers=admin).status_code == 204


def test_pages_list_build_preview_and_the_360_panel(
    http: httpx.Client, db: Database, settings: Settings, shop: dict[str, Any]
) -> None:
    make_token(db)
    pro = create_segment(db, SYSTEM, name="Pro", definition=trait("plan", "eq", "pro"), now=NOW)
    recompute(db, pro.id, now=NOW, settings=settings)
    sign_in(http)
    listing = http.get("/segments")
    assert listing.status_code == 200 and "Pro" in listing.text and 'href="/segments/new"' in listing.text
    builder = http.get(f"/segments/{pro.id}")
    assert (
        builder.status_code == 200
        and "/static/segments.js" in builder.text
        and "<script>" not in builder.text
    )
    csrf = builder.text.split('name="csrf" value="')[1].split('"')[0]
    counted = http.post(
        "/segments/preview",
        data={"csrf": csrf, "definition": '{"type": "trait", "key": "plan", "op": "eq", "value": "pro"}'},
    )
    assert 'data-count="2"' in counted.text
    broken = http.post("/segments/preview", data={"csrf": csrf, "definition": '{"all": [{"type": "trait"}]}'})
    assert "definition.all[0].key" in broken.text
    saved = http.post(
        "/segments/new",
        data={"csrf": csrf, "name": "Everyone", "definition": '{"all": []}'},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    refused = http.post("/segments/new", data={"csrf": csrf, "name": "Bad", "definition": "{"})
    assert refused.status_code == 400 and "not valid JSON" in refused.text
    panel = http.get(f"/customers/{shop['ids']['alice']}/segments", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "Pro" in panel.text
    page = http.get(f"/customers/{shop['ids']['alice']}")
    assert f'hx-get="/customers/{shop["ids"]["alice"]}/segments"' in page.text
    assert http.get("/static/segments.js").status_code == 200
