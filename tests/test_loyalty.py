"""Loyalty end to end: earning from events on every channel with a channel bonus, re-runs that never
double, reviews and referrals, tiers up and down with their events on the timeline, redemption limits,
FIFO expiry, adjustments, merges, data scopes, the REST API and the 360 panel and settings page.
Real SQLite and PostgreSQL, real HTTP, an injected clock."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from tests.conftest import LiveServer
from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send, timeline_page
from threadline.accounts import viewer_for
from threadline.config import Settings
from threadline.errors import Conflict, Forbidden, Invalid
from threadline.identity import merge_profiles, unmerge
from threadline.jobs import handlers
from threadline.loyalty import (
    DEFAULT_PROGRAM,
    adjust,
    check_program,
    earn_points,
    expire_points,
    loyalty_view,
    outstanding,
    redeem,
    set_program,
)
from threadline.profiles import assign_owner
from threadline.storage import Database
from threadline.storage.models import LoyaltyEntry, LoyaltyStatus, User, WorkspaceSetting

T0 = datetime(2026, 3, 1, 9, 0)
PROGRAM: dict[str, Any] = {
    "earn_rules": [
        {"event": "Order Completed", "points_per_unit": 1, "properties": ["revenue", "total"]},
        {"event": "Review Submitted", "points": 50},
        {"event": "Referral Completed", "points": 200},
    ],
    "channels": {"store": {"multiplier": 2, "bonus": 0}, "app": {"multiplier": 1, "bonus": 10}},
    "expiry_months": 12,
    "tier_basis": "spend_12m",
    "keep_tier_months": 12,
    "tiers": [
        {"name": "Member", "threshold": 0, "benefits": "Points"},
        {"name": "Silver", "threshold": 500, "benefits": "Free delivery"},
        {"name": "Gold", "threshold": 2000, "benefits": "Gifts"},
    ],
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def order(user: str, amount: float, at: datetime, message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "messageId": message_id,
        "timestamp": at.isoformat() + "Z",
        "properties": {"revenue": amount, "currency": "USD", **extra},
    }


def track(user: str, name: str, at: datetime, message_id: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": name,
        "userId": user,
        "messageId": message_id,
        "timestamp": at.isoformat() + "Z",
    }


def standing(db: Database, profile_id: str, now: datetime) -> dict[str, Any]:
    return loyalty_view(db, profile_id, viewer=SYSTEM, now=now, limit=200)


def events_named(db: Database, profile_id: str, name: str) -> list[dict[str, Any]]:
    page = timeline_page(db, profile_id, limit=200)
    return [e for e in page["events"] if e["event"] == name]


@pytest.fixture
def channels(db: Database) -> dict[str, Any]:
    return {c: make_source(db, f"src-{c}", c) for c in ("web", "store", "app")}


def test_purchases_on_every_channel_earn_with_the_channel_bonus_once(
    db: Database, settings: Settings, channels: dict[str, Any]
) -> None:
    set_program(db, PROGRAM, user_id=None, now=T0)
    send(db, settings, channels["web"], order("ann", 120.75, T0, "w1"))
    send(db, settings, channels["store"], order("ann", 100, T0 + timedelta(hours=1), "s1"))
    send(db, settings, channels["app"], order("ann", 30, T0 + timedelta(hours=2), "a1"))
    send(db, settings, channels["web"], {**order("ann", 0, T0, "t1"), "properties": {"total": "40"}})
    send(db, settings, channels["web"], order("ann", -50, T0 + timedelta(hours=3), "refund"))
    send(db, settings, channels["web"], track("ann", "Review Submitted", T0 + timedelta(hours=4), "r1"))
    send(db, settings, channels["app"], track("ann", "Referral Completed", T0 + timedelta(hours=5), "ref1"))
    send(db, settings, channels["web"], track("ann", "Page Viewed", T0, "p1"))
    ann = lookup_profile(db, "user_id", "ann")
    now = T0 + timedelta(hours=6)

    run = earn_points(db, settings, now=now)
    # web 120 (rounded down) + store 100 x2 + app 30 + 10 bonus + "total" 40 + review 50 + referral 200 + 10
    assert run.counts()["events"] == 6 and run.points == 120 + 200 + 40 + 40 + 50 + 210
    view = standing(db, ann, now)
    assert view["points"] == view["lifetime_points"] == 660
    assert view["spend_12m"] == 290.75  # the refund lowers nothing and earns nothing
    assert {h["reason"] for h in view["history"]} >= {"Order Completed (store)", "Referral Completed (app)"}

    # Again, and again after the watermark was lost: the ledger's unique (event, kind) holds.
    assert earn_points(db, settings, now=now).points == 0
    with db.write() as session:
        session.execute(delete(WorkspaceSetting).where(WorkspaceSetting.key == "loyalty.earn.watermark"))
    assert earn_points(db, settings, now=now).points == 0
    assert standing(db, ann, now)["points"] == 660
    with db.read() as session:
        assert session.scalar(select(LoyaltyStatus.points).where(LoyaltyStatus.profile_id == ann)) == 660

    # "Points Earned" on the timeline, once per earning event, and never earning points itself.
    earned = events_named(db, ann, "Points Earned")
    assert len(earned) == 6
    assert earn_points(db, settings, now=now + timedelta(minutes=5)).points == 0
    assert standing(db, ann, now)["points"] == 660
    # The job runs as a worker kind.
    assert {"loyalty.earn", "loyalty.expire"} <= set(handlers())


def test_tiers_go_up_at_once_with_an_event_and_down_after_the_holding_period(
    db: Database, settings: Settings, channels: dict[str, Any]
) -> None:
    set_program(db, PROGRAM, user_id=None, now=T0)
    send(db, settings, channels["web"], order("bo", 100, T0, "o1"))
    bo = lookup_profile(db, "user_id", "bo")
    earn_points(db, settings, now=T0 + timedelta(minutes=5))
    assert standing(db, bo, T0)["tier"] == "Member"
    send(db, settings, channels["web"], order("bo", 450, T0 + timedelta(days=10), "o2"))
    later = T0 + timedelta(days=10, minutes=5)
    assert earn_points(db, settings, now=later).tier_changes == 1
    view = standing(db, bo, later)
    assert view["tier"] == "Silver" and view["next_tier"]["name"] == "Gold"
    assert view["next_tier"]["needed"] == 1450
    changes = events_named(db, bo, "Loyalty Tier Changed")
    assert [(e["properties"]["from"], e["properties"]["to"]) for e in changes] == [
        ("Member", "Silver"),  # newest first
        (None, "Member"),
    ]

    # The 12-month spend stays at 500 or more until the first purchase leaves the window (2027-03-01);
    # the tier is kept 12 months after that, then the daily job brings it down, with its event.
    assert expire_points(db, settings, now=datetime(2027, 6, 1)).tier_changes == 0
    assert standing(db, bo, datetime(2027, 6, 1))["spend_12m"] == 0
    assert expire_points(db, settings, now=datetime(2028, 2, 28)).tier_changes == 0
    assert standing(db, bo, datetime(2028, 2, 28))["tier"] == "Silver"
    assert expire_points(db, settings, now=datetime(2028, 3, 2)).tier_changes == 1
    assert standing(db, bo, datetime(2028, 3, 2))["tier"] == "Member"
    down = events_named(db, bo, "Loyalty Tier Changed")[0]
    assert down["properties"] == {"from": "Silver", "to": "Member", "direction": "down"}


def test_redemption_is_limited_by_the_balance_and_needs_edit(
    db: Database, settings: Settings, channels: dict[str, Any]
) -> None:
    set_program(db, PROGRAM, user_id=None, now=T0)
    send(db, settings, channels["web"], order("cy", 300, T0, "o1"))
    cy = lookup_profile(db, "user_id", "cy")
    earn_points(db, settings, now=T0)
    change = redeem(db, SYSTEM, cy, 200, "voucher", now=T0 + timedelta(days=1))
    assert change.balance == 100 and change.points == -200
    with pytest.raises(Conflict) as refused:
        redeem(db, SYSTEM, cy, 101, "too much", now=T0 + timedelta(days=1))
    assert refused.value.details["field"] == "points" and refused.value.details["balance"] == 100
    with pytest.raises(Invalid) as bad:
        redeem(db, SYSTEM, cy, 0, "nothing", now=T0)
    assert bad.value.details["field"] == "points"
    with pytest.raises(Invalid) as bad:
        adjust(db, SYSTEM, cy, 10, "  ", now=T0, settings=settings)
    assert bad.value.details["field"] == "reason"
    # Adjustments: with a reason, up or down, never below zero.
    adjust(db, SYSTEM, cy, 25, "goodwill: late delivery", now=T0 + timedelta(days=2), settings=settings)
    with pytest.raises(Conflict):
        adjust(db, SYSTEM, cy, -126, "correction", now=T0 + timedelta(days=2), settings=settings)
    adjust(db, SYSTEM, cy, -25, "correction", now=T0 + timedelta(days=2), settings=settings)
    view = standing(db, cy, T0 + timedelta(days=3))
    assert view["points"] == 100 and view["lifetime_points"] == 325
    assert [h["kind"] for h in view["history"]] == ["adjust", "adjust", "redeem", "earn"]
    make_token(db, "analyst@example.com", "analyst")
    with db.read() as session:
        analyst_id = session.scalar(select(User.id).where(User.email == "analyst@example.com"))
    assert analyst_id is not None
    with pytest.raises(Forbidden):
        redeem(db, viewer_for(db, analyst_id, "analyst"), cy, 1, "no", now=T0)


def test_expiry_is_fifo_against_redemptions(
    db: Database, settings: Settings, channels: dict[str, Any]
) -> None:
    set_program(db, PROGRAM, user_id=None, now=T0)
    send(db, settings, channels["web"], order("di", 100, T0, "o1"))
    send(db, settings, channels["web"], order("di", 200, T0 + timedelta(days=60), "o2"))
    di = lookup_profile(db, "user_id", "di")
    earn_points(db, settings, now=T0 + timedelta(days=60))
    redeem(db, SYSTEM, di, 150, "voucher", now=T0 + timedelta(days=90))  # uses all of lot 1, 50 of lot 2
    view = standing(db, di, T0 + timedelta(days=90))
    assert view["expiring_next"]["points"] == 150  # only what is left of the second lot
    # The first lot's expiry comes: nothing of it is left, so nothing expires.
    assert expire_points(db, settings, now=T0 + timedelta(days=370)).points == 0
    # The second lot's: its remaining 150 expire, once.
    run = expire_points(db, settings, now=T0 + timedelta(days=60 + 370))
    assert (run.customers, run.points) == (1, 150)
    assert expire_points(db, settings, now=T0 + timedelta(days=60 + 371)).points == 0
    view = standing(db, di, T0 + timedelta(days=60 + 371))
    assert view["points"] == 0 and view["history"][0]["kind"] == "expire"
    # The method on its own: spent points use up the lots that expire first.
    lots = outstanding(
        [
            (1, "p", "earn", 100, T0),
            (2, "p", "adjust", 30, None),
            (3, "p", "earn", 50, T0 + timedelta(days=1)),
            (4, "p", "redeem", -120, None),
        ]
    )
    assert [(lot.id, lot.left) for lot in lots] == [(1, 0), (3, 30), (2, 30)]


def test_a_merge_adds_both_customers_points_and_an_unmerge_gives_them_back(
    db: Database, settings: Settings, channels: dict[str, Any]
) -> None:
    set_program(db, PROGRAM, user_id=None, now=T0)
    send(db, settings, channels["web"], order("ed", 300, T0, "o1"))
    send(db, settings, channels["web"], order("fay", 400, T0, "o2"))
    ed, fay = lookup_profile(db, "user_id", "ed"), lookup_profile(db, "user_id", "fay")
    earn_points(db, settings, now=T0)
    assert standing(db, ed, T0)["tier"] == "Member"
    merge = merge_profiles(
        db,
        ed,
        fay,
        trigger="steward",
        actor_user_id=None,
        rule=None,
        reason="same person",
        now=T0 + timedelta(days=1),
        force=True,
        settings=settings,
    )
    after = T0 + timedelta(days=1, minutes=5)
    view = standing(db, fay, after)  # the merged-away ID answers for its survivor
    assert view["profile_id"] == ed and view["points"] == 700 and view["tier"] == "Silver"
    assert {h["from_merged"] for h in view["history"]} == {True, False}
    # The next earning run refreshes both sides of the merge: the tier it gave reaches the timeline.
    assert earn_points(db, settings, now=after).tier_changes == 1
    assert earn_points(db, settings, now=after).tier_changes == 0
    redeem(db, SYSTEM, ed, 600, "together", now=after, settings=settings)  # both people's points
    assert events_named(db, ed, "Loyalty Tier Changed")[0]["properties"]["to"] == "Silver"

    unmerge(db, merge.id, actor_user_id=None, now=T0 + timedelta(days=2), settings=settings)
    back = T0 + timedelta(days=2)
    assert standing(db, fay, back)["points"] == 400 and standing(db, fay, back)["tier"] == "Member"
    # The redemption stays with the profile it was made for: the survivor owes what it spent of fay's.
    assert standing(db, ed, back)["points"] == -300 and standing(db, ed, back)["tier"] == "Member"
    with pytest.raises(Conflict):
        redeem(db, SYSTEM, ed, 1, "more", now=back)


def test_the_program_is_validated_naming_the_field() -> None:
    assert check_program(DEFAULT_PROGRAM.as_json()) == DEFAULT_PROGRAM
    assert check_program(PROGRAM).channels["store"].multiplier == 2
    cases = [
        ({**PROGRAM, "tier_basis": "mood"}, "tier_basis"),
        ({**PROGRAM, "expiry_months": -1}, "expiry_months"),
        ({**PROGRAM, "channels": {"fax": {"multiplier": 2}}}, "channels.fax"),
        ({**PROGRAM, "earn_rules": [{"event": "Points Earned", "points": 1}]}, "earn_rules[0].event"),
        ({**PROGRAM, "earn_rules": [{"event": "X", "points": 1, "points_per_unit": 1}]}, "earn_rules[0]"),
        (
            {**PROGRAM, "tiers": [{"name": "A", "threshold": 5}, {"name": "B", "threshold": 5}]},
            "tiers[1].threshold",
        ),
        ({**PROGRAM, "tiers": []}, "tiers"),
        ({**PROGRAM, "colour": "red"}, "colour"),
    ]
    for value, field in cases:
        with pytest.raises(Invalid) as bad:
            check_program(value)
        assert bad.value.details == {"field": field}, value


# -- REST and pages ---------------------------------------------------------------------------------


class World:
    """Two agents with a customer each who has points, an admin and an analyst."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.tokens = {
            name: make_token(db, f"{name}@example.com", name.rstrip("0123456789"))
            for name in ("admin", "agent1", "agent2", "analyst")
        }
        with db.read() as session:
            self.ids = {u.email.split("@")[0]: u.id for u in session.scalars(select(User))}
        source = make_source(db, "shop", "web")
        send(db, settings, source, order("c1", 250, T0, "o1"), order("c2", 90, T0, "o2"))
        earn_points(db, settings, now=T0)
        self.customers = {n: lookup_profile(db, "user_id", f"c{n}") for n in (1, 2)}
        admin = viewer_for(db, self.ids["admin"], "admin")
        assign_owner(db, admin, [self.customers[1]], self.ids["agent1"])
        assign_owner(db, admin, [self.customers[2]], self.ids["agent2"])

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return World(db, settings)


@pytest.fixture
def clocked(settings: Settings, db: Database) -> Any:
    clock = Clock(T0 + timedelta(days=1))
    with LiveServer(settings, db, clock=clock) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def test_rest_reads_and_changes_within_the_data_scope(world: World, clocked: httpx.Client) -> None:
    http = clocked
    mine, theirs = world.customers[1], world.customers[2]
    agent = world.bearer("agent1")
    got = http.get(f"/api/v1/profiles/{mine}/loyalty", headers=agent)
    assert got.status_code == 200, got.text
    assert got.json()["points"] == 250 and got.json()["tier"] == "Member"
    assert got.json()["history"][0]["reason"] == "Order Completed (web)"
    assert http.get(f"/api/v1/profiles/{theirs}/loyalty", headers=agent).status_code == 404
    assert (
        http.post(
            f"/api/v1/profiles/{theirs}/loyalty/redeem", headers=agent, json={"points": 1, "reason": "x"}
        ).status_code
        == 404
    )

    redeemed = http.post(
        f"/api/v1/profiles/{mine}/loyalty/redeem",
        headers=agent,
        json={"points": 200, "reason": "voucher V-1"},
    )
    assert redeemed.status_code == 201 and redeemed.json()["balance"] == 50
    over = http.post(
        f"/api/v1/profiles/{mine}/loyalty/redeem", headers=agent, json={"points": 51, "reason": "x"}
    )
    assert over.status_code == 409 and over.json()["error"]["details"]["field"] == "points"
    adjusted = http.post(
        f"/api/v1/profiles/{mine}/loyalty/adjust", headers=agent, json={"points": 300, "reason": "apology"}
    )
    assert adjusted.status_code == 201 and adjusted.json()["balance"] == 350
    analyst = world.bearer("analyst")
    assert http.get(f"/api/v1/profiles/{mine}/loyalty", headers=analyst).status_code == 200
    assert (
        http.post(
            f"/api/v1/profiles/{mine}/loyalty/adjust", headers=analyst, json={"points": 1, "reason": "x"}
        ).status_code
        == 403
    )

    # The program: admins only, validated by field, audited without personal data.
    assert http.get("/api/v1/loyalty/program", headers=agent).status_code == 403
    program = http.get("/api/v1/loyalty/program", headers=world.bearer("admin")).json()
    assert program["tier_basis"] == "spend_12m" and program["updated_at"] is None
    bad = http.put("/api/v1/loyalty/program", headers=world.bearer("admin"), json={**PROGRAM, "tiers": []})
    assert bad.status_code in (400, 422) and bad.json()["error"]["details"]["field"] == "tiers"
    saved = http.put("/api/v1/loyalty/program", headers=world.bearer("admin"), json=PROGRAM)
    assert saved.status_code == 200 and saved.json()["channels"]["app"] == {"multiplier": 1, "bonus": 10}
    audit = http.get("/api/v1/audit", headers=world.bearer("admin"), params={"limit": 100}).json()
    entries = audit.get("entries", audit.get("audit", []))
    assert any(e["details"].get("action") == "loyalty_redeem" for e in entries)
    assert not any("voucher V-1" in str(e["details"]) for e in entries)


def sign_in(http: httpx.Client, email: str) -> str:
    form = http.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    response = http.post(
        "/login", data={"email": email, "password": "correct horse battery", "csrf": csrf.group(1)}
    )
    assert response.status_code == 303
    page_csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/customers").text)
    assert page_csrf
    return page_csrf.group(1)


def test_the_360_panel_shows_tier_balance_history_and_changes_points(
    world: World, clocked: httpx.Client
) -> None:
    http = clocked
    mine, theirs = world.customers[1], world.customers[2]
    csrf = sign_in(http, "agent1@example.com")
    page = http.get(f"/customers/{mine}")
    assert f'hx-get="/customers/{mine}/loyalty"' in page.text
    panel = http.get(f"/customers/{mine}/loyalty", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "<html" not in panel.text
    assert 'class="loyalty-tier">Member' in panel.text and 'class="loyalty-balance">250' in panel.text
    assert "Silver" in panel.text and "Order Completed (web)" in panel.text and "Redeem" in panel.text
    assert http.get(f"/customers/{mine}/loyalty").text.lower().startswith("<!doctype html>")
    assert "<script>" not in panel.text

    done = http.post(
        f"/customers/{mine}/loyalty/redeem", data={"csrf": csrf, "points": "50", "reason": "mug"}
    )
    assert done.status_code == 303 and done.headers["location"] == f"/customers/{mine}#loyalty"
    refused = http.post(
        f"/customers/{mine}/loyalty/redeem",
        data={"csrf": csrf, "points": "999", "reason": "car"},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 409 and "points: the balance is 200" in refused.text
    swapped = http.post(
        f"/customers/{mine}/loyalty/adjust",
        data={"csrf": csrf, "points": "-20", "reason": "double counted"},
        headers={"HX-Request": "true"},
    )
    assert swapped.status_code == 200 and "double counted" in swapped.text and 'id="loyalty"' in swapped.text
    assert standing(world.db, mine, T0 + timedelta(days=2))["points"] == 180
    with world.db.read() as session:
        [line] = session.scalars(select(LoyaltyEntry).where(LoyaltyEntry.kind == "adjust")).all()
        assert line.actor_user_id == world.ids["agent1"]
    assert http.get(f"/customers/{theirs}/loyalty").status_code == 404
    forged = http.post(
        f"/customers/{theirs}/loyalty/redeem", data={"csrf": csrf, "points": "1", "reason": "x"}
    )
    assert forged.status_code == 404
    assert (
        http.post(f"/customers/{mine}/loyalty/redeem", data={"points": "1", "reason": "x"}).status_code == 403
    )
    assert http.get("/settings/loyalty").status_code == 403  # admins only


def test_admins_edit_the_program_on_the_settings_page(world: World, clocked: httpx.Client) -> None:
    http = clocked
    csrf = sign_in(http, "admin@example.com")
    page = http.get("/settings/loyalty")
    assert page.status_code == 200 and 'value="Order Completed"' in page.text and 'value="Gold"' in page.text
    form = {
        "csrf": csrf,
        "rule_event": ["Order Completed", "Review Submitted", ""],
        "rule_mode": ["per_unit", "fixed", "fixed"],
        "rule_value": ["2", "25", ""],
        "rule_properties": ["revenue", "", ""],
        "multiplier_store": "3",
        "bonus_store": "",
        "bonus_app": "5",
        "expiry_months": "24",
        "tier_basis": "lifetime_points",
        "keep_tier_months": "0",
        "tier_name": ["Blue", "Black", ""],
        "tier_threshold": ["0", "1000", ""],
        "tier_benefits": ["", "Lounge", ""],
    }
    saved = http.post("/settings/loyalty", data=form)
    assert saved.status_code == 303, saved.text
    program = http.get("/api/v1/loyalty/program", headers=world.bearer("admin")).json()
    assert program["earn_rules"][0] == {
        "event": "Order Completed",
        "points_per_unit": 2,
        "properties": ["revenue"],
    }
    assert program["channels"] == {
        "app": {"multiplier": 1, "bonus": 5},
        "store": {"multiplier": 3, "bonus": 0},
    }
    assert program["tiers"][1] == {"name": "Black", "threshold": 1000, "benefits": "Lounge"}
    bad = http.post("/settings/loyalty", data={**form, "tier_threshold": ["0", "0", ""]})
    assert bad.status_code == 400 and "tiers[1].threshold" in bad.text and 'value="Black"' in bad.text
