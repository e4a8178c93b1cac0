"""Explicit merges and exact unmerges, on SQLite and PostgreSQL, through the real write path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.factories import (
    SYSTEM,
    lookup_profile,
    make_source,
    make_token,
    profile_view,
    send,
    timeline_page,
    trait_history,
)
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import create_user, viewer_for
from threadline.cli.main import app
from threadline.clock import utcnow
from threadline.config import Settings, get_settings
from threadline.errors import Conflict, Invalid, NotFound
from threadline.identity import get_merge, merge_profiles, pair_was_unmerged, unmerge
from threadline.privacy import search_audit
from threadline.profiles import assign_owner, change_tags, share_customer
from threadline.storage import Database
from threadline.storage.models import Merge, Profile, User

LINEAGE = ("merged_from", "blocked_merges", "unmerged", "requested_id")
NOW = datetime(2026, 6, 1, 12, 0, 0)


def picture(db: Database, profile_id: str) -> dict[str, Any]:
    """Everything a user sees of one customer except its lineage: the 360 view, every event, every
    trait's history, and the stored row behind the customer list and search."""
    view = {k: v for k, v in profile_view(db, profile_id).items() if k not in LINEAGE}
    with db.read() as session:
        row = session.get(Profile, profile_id)
        assert row is not None
        stored = {
            "search_name": row.search_name,
            "merged_into": row.merged_into,
            "merged_at": row.merged_at,
            "owner_id": row.owner_id,
            "tags": row.tags,
        }
    return {
        "view": view,
        "timeline": timeline_page(db, profile_id, limit=200)["events"],
        "history": trait_history(db, profile_id),
        "stored": stored,
    }


def only_merge(db: Database) -> Merge:
    with db.read() as session:
        [merge] = session.scalars(select(Merge).where(Merge.status == "merged")).all()
        return merge


def identify(user: str | None = None, anon: str | None = None, at: str = "", **traits: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "identify", "traits": traits}
    if user:
        message["userId"] = user
    if anon:
        message["anonymousId"] = anon
    if at:
        message["timestamp"] = at
    return message


def test_an_explicit_merge_undone_gives_back_both_customers_exactly(db: Database, settings: Settings) -> None:
    web, store = make_source(db, "website", "web"), make_source(db, "store-pos", "store")
    steward = create_user(db, "steward@example.com", "admin", "correct horse battery", now=utcnow()).id
    agent = create_user(db, "agent@example.com", "agent", "correct horse battery", now=utcnow()).id
    # Ann: an equal name sent again later moves its time without history; an older city stays history.
    send(db, settings, web, identify("ann", at="2026-01-01T10:00:00Z", name="Ann Lee", city="Paris"))
    send(db, settings, web, identify("ann", at="2026-01-05T10:00:00Z", name="Ann Lee"))
    send(db, settings, store, identify("ann", at="2026-01-03T10:00:00Z", name="Annie", city="Nice"))
    send(
        db,
        settings,
        web,
        {"type": "page", "userId": "ann", "name": "Pricing", "timestamp": "2026-01-06T00:00:00Z"},
    )
    # Ann's namesake in the till export: a newer name and email, an owner and tags.
    send(
        db,
        settings,
        store,
        {
            "type": "track",
            "event": "Order Completed",
            "timestamp": "2026-01-04T09:00:00Z",
            "context": {"traits": {"email": "Ann.Lee@Example.com", "name": "Ann B. Lee", "tier": "gold"}},
        },
    )
    ann, namesake = lookup_profile(db, "user_id", "ann"), lookup_profile(db, "email", "ann.lee@example.com")
    change_tags(db, SYSTEM, [ann], add=["vip"], remove=[])
    change_tags(db, SYSTEM, [namesake], add=["wholesale", "vip"], remove=[])
    assign_owner(db, SYSTEM, [namesake], agent)
    before = {p: picture(db, p) for p in (ann, namesake)}

    info = merge_profiles(
        db,
        ann,
        namesake,
        trigger="steward",
        actor_user_id=steward,
        rule=None,
        reason="same person: the store clerk confirmed the phone number",
        now=NOW,
    )
    merged = profile_view(db, ann)
    assert profile_view(db, namesake)["id"] == ann
    assert merged["summary"]["event_count"] == 5
    assert merged["owner"]["id"] == agent and merged["tags"] == ["vip", "wholesale"]
    assert merged["traits"]["name"] == "Ann Lee"  # 5 January beats 4 January
    [lineage] = merged["merged_from"]
    assert lineage["merge_id"] == info.id
    assert lineage["trigger"] == "steward" and lineage["actor"]["email"] == "steward@example.com"
    assert lineage["reason"] == "same person: the store clerk confirmed the phone number"

    undone = unmerge(db, info.id, actor_user_id=steward, now=NOW, reason="two people after all")
    assert (undone.restored_id, undone.live_survivor_id, undone.events) == (namesake, ann, 1)
    assert {p: picture(db, p) for p in (ann, namesake)} == before
    with db.read() as session:
        row = session.get(Merge, info.id)
        assert row is not None
        assert (row.status, row.unmerged_by, row.unmerged_at, row.unmerge_reason) == (
            "unmerged",
            steward,
            NOW,
            "two people after all",
        )
    [shown] = profile_view(db, ann)["unmerged"]
    assert shown["unmerged_by"]["email"] == "steward@example.com"
    assert profile_view(db, namesake)["unmerged"][0]["merge_id"] == info.id


def test_a_stitched_merge_undone_gives_back_both_customers(db: Database, settings: Settings) -> None:
    web, app = make_source(db, "website", "web"), make_source(db, "mobile-app", "app")
    send(
        db,
        settings,
        web,
        {"type": "page", "anonymousId": "laptop", "name": "Home", "timestamp": "2026-02-01T10:00:00Z"},
    )
    send(db, settings, web, identify(anon="laptop", at="2026-02-01T10:05:00Z", city="Paris", name="Guest"))
    send(
        db,
        settings,
        app,
        identify("u-42", at="2026-02-02T08:00:00Z", name="Zhang Wei", email="wei@example.com"),
    )
    browser, wei = lookup_profile(db, "anonymous_id", "laptop"), lookup_profile(db, "user_id", "u-42")
    before = {p: picture(db, p) for p in (browser, wei)}

    # One message carries both: the browser's profile is older, so it survives.
    joining = {
        "type": "track",
        "event": "Logged In",
        "userId": "u-42",
        "anonymousId": "laptop",
        "timestamp": "2026-02-02T08:00:00Z",
        "messageId": "login-1",
    }
    send(db, settings, web, joining)
    merge = only_merge(db)
    assert (merge.survivor_id, merge.merged_id, merge.trigger) == (browser, wei, "message")
    assert merge.snapshot and merge.snapshot["watermarks"]["events"] == 3

    undone = unmerge(db, merge.id, actor_user_id=None, now=NOW)
    assert undone.restored_id == wei
    assert picture(db, browser) == before[browser]
    # The message that joined them belongs to its strongest identifier's customer, as if never merged.
    after = picture(db, wei)
    assert after["timeline"][0]["message_id"] == "login-1"
    assert after["timeline"][1:] == before[wei]["timeline"]
    assert after["view"]["summary"]["event_count"] == before[wei]["view"]["summary"]["event_count"] + 1
    assert after["view"]["channels"] == ["app", "web"]
    for key in ("identities", "traits", "trait_sources", "display_name"):
        assert after["view"][key] == before[wei]["view"][key]
    assert after["history"] == before[wei]["history"]
    assert lookup_profile(db, "user_id", "u-42") == wei
    assert lookup_profile(db, "anonymous_id", "laptop") == browser


def strip(value: Any, suffix: str) -> Any:
    """A picture of the twin world read as this one: identifiers lose the twin's suffix."""
    if isinstance(value, str):
        return value.replace(suffix, "")
    if isinstance(value, list):
        return [strip(v, suffix) for v in value]
    if isinstance(value, dict):
        return {strip(k, suffix): strip(v, suffix) for k, v in value.items()}
    return value


def comparable(db: Database, profile_id: str, suffix: str = "") -> dict[str, Any]:
    seen = picture(db, profile_id)
    seen["view"].pop("id")
    seen["view"]["summary"].pop("created_at")
    for event in seen["timeline"]:
        event.pop("id")
        event.pop("received_at")
    return strip(seen, suffix) if suffix else seen


def test_what_arrived_while_merged_goes_where_it_would_have_gone(db: Database, settings: Settings) -> None:
    """Two worlds get the same messages: in one a merge happens (two user ids allowed) and is undone
    later; in its twin merge protection blocks it. After the unmerge both worlds look the same."""
    merging = settings.model_copy(update={"identity_limits": {"user_id": 2}})
    web, app, store = (
        make_source(db, "website", "web"),
        make_source(db, "mobile-app", "app"),
        make_source(db, "store-pos", "store"),
    )

    def story(s: str, config: Settings, upto: int, start: int = 0) -> None:
        messages = [
            (web, identify(f"ann{s}", f"laptop{s}", "2026-01-01T10:00:00Z", name="Ann Lee", city="Paris")),
            (
                web,
                {
                    "type": "track",
                    "event": "Viewed",
                    "anonymousId": f"laptop{s}",
                    "timestamp": "2026-01-02T10:00:00Z",
                },
            ),
            (
                app,
                identify(
                    f"bob{s}", None, "2026-01-03T10:00:00Z", name="Bob Ray", email=f"bob{s}@example.com"
                ),
            ),
            # Bob signs in on the family laptop: the merge (or, in the twin, the blocked merge).
            (web, identify(f"bob{s}", f"laptop{s}", "2026-01-04T10:00:00Z", plan="family")),
            # While merged: Bob's email at the till, Bob's new loyalty card, Ann on the laptop, Ann's
            # name sent again (equal to what Ann shows, not to what the merged profile showed).
            (
                store,
                {
                    "type": "track",
                    "event": "Order",
                    "timestamp": "2026-01-05T10:00:00Z",
                    "context": {"traits": {"email": f"Bob{s}@Example.com"}},
                },
            ),
            (app, identify(f"bob{s}", None, "2026-01-06T10:00:00Z", loyalty_id=f"L-77{s}", tier="gold")),
            (
                web,
                {
                    "type": "track",
                    "event": "Viewed again",
                    "anonymousId": f"laptop{s}",
                    "timestamp": "2026-01-07T10:00:00Z",
                },
            ),
            (web, identify(f"ann{s}", None, "2026-01-08T10:00:00Z", name="Ann Lee", city="Lyon")),
            (
                store,
                {
                    "type": "track",
                    "event": "Points",
                    "timestamp": "2026-01-09T10:00:00Z",
                    "context": {"traits": {"loyalty_id": f"L-77{s}"}},
                },
            ),
            # After the unmerge: Bob's card, and the laptop again.
            (
                store,
                {
                    "type": "track",
                    "event": "Points again",
                    "timestamp": "2026-01-10T10:00:00Z",
                    "context": {"traits": {"loyalty_id": f"L-77{s}"}},
                },
            ),
            (
                web,
                {
                    "type": "page",
                    "name": "Home",
                    "anonymousId": f"laptop{s}",
                    "timestamp": "2026-01-11T10:00:00Z",
                },
            ),
        ]
        for number, (source, message) in enumerate(messages[start:upto], start=start):
            send(db, config, source, {**message, "messageId": f"m{number}{s}"})

    story("-twin", settings, 11)
    story("", merging, 9)
    merge = only_merge(db)
    ann, bob = lookup_profile(db, "user_id", "ann"), lookup_profile(db, "user_id", "bob")
    assert ann == bob == merge.survivor_id
    undone = unmerge(db, merge.id, actor_user_id=None, now=NOW, settings=merging)
    bob = undone.restored_id
    assert lookup_profile(db, "loyalty_id", "L-77") == bob
    assert lookup_profile(db, "anonymous_id", "laptop") == ann
    story("", merging, 11, start=9)
    assert len(timeline_page(db, bob)["events"]) == 6
    for name in ("ann", "bob"):
        here = lookup_profile(db, "user_id", name)
        twin = lookup_profile(db, "user_id", f"{name}-twin")
        assert comparable(db, here) == comparable(db, twin, "-twin"), name


def test_nested_merges_unmerge_one_level(db: Database, settings: Settings) -> None:
    web = make_source(db)
    send(db, settings, web, identify(anon="x-phone", at="2026-03-01T00:00:00Z", name="Phone"))
    send(db, settings, web, identify(anon="b-laptop", at="2026-03-02T00:00:00Z", city="Oslo"))
    send(db, settings, web, identify("a-user", at="2026-03-03T00:00:00Z", plan="pro"))
    x_id = lookup_profile(db, "anonymous_id", "x-phone")
    b_id = lookup_profile(db, "anonymous_id", "b-laptop")
    a_id = lookup_profile(db, "user_id", "a-user")
    inner = merge_profiles(
        db,
        b_id,
        x_id,
        trigger="resolver",
        actor_user_id=None,
        rule="auto-merge >= 0.99",
        reason="same device fingerprint",
        match_probability=0.995,
        evidence={"device": "same"},
        now=NOW,
    )
    b_with_x = picture(db, b_id)
    outer = merge_profiles(
        db, a_id, b_id, trigger="steward", actor_user_id=None, rule=None, reason="signed in", now=NOW
    )
    with db.read() as session:
        assert session.scalar(select(Profile.merged_into).where(Profile.id == x_id)) == a_id
    shown = profile_view(db, a_id)["merged_from"]
    assert {m["merged_id"] for m in shown} == {x_id, b_id}
    resolver = next(m for m in shown if m["trigger"] == "resolver")
    assert (resolver["rule"], resolver["match_probability"]) == ("auto-merge >= 0.99", 0.995)

    unmerge(db, outer.id, actor_user_id=None, now=NOW)
    assert picture(db, b_id) == b_with_x
    with db.read() as session:
        assert session.scalar(select(Profile.merged_into).where(Profile.id == x_id)) == b_id
    assert profile_view(db, x_id)["id"] == b_id
    assert lookup_profile(db, "anonymous_id", "x-phone") == b_id
    assert lookup_profile(db, "user_id", "a-user") == a_id
    assert profile_view(db, a_id)["merged_from"] == []
    # The inner merge can still be undone on its own.
    unmerge(db, inner.id, actor_user_id=None, now=NOW)
    assert lookup_profile(db, "anonymous_id", "x-phone") == x_id


def test_unmerging_after_the_survivor_merged_on(db: Database, settings: Settings) -> None:
    """B into A, then A into C: undoing B-from-A takes B's rows back from C."""
    web = make_source(db)
    send(db, settings, web, identify(anon="c-anon", at="2026-04-01T00:00:00Z", name="C"))
    send(db, settings, web, identify(anon="a-anon", at="2026-04-02T00:00:00Z", city="A-town"))
    send(db, settings, web, identify("b-user", at="2026-04-03T00:00:00Z", plan="b-plan"))
    c, a, b = (
        lookup_profile(db, "anonymous_id", "c-anon"),
        lookup_profile(db, "anonymous_id", "a-anon"),
        lookup_profile(db, "user_id", "b-user"),
    )
    b_before = picture(db, b)
    first = merge_profiles(db, a, b, trigger="steward", actor_user_id=None, rule=None, reason="r1", now=NOW)
    merge_profiles(db, c, a, trigger="steward", actor_user_id=None, rule=None, reason="r2", now=NOW)
    send(db, settings, web, {"type": "track", "event": "Later", "userId": "b-user", "messageId": "later"})
    assert lookup_profile(db, "user_id", "b-user") == c
    undone = unmerge(db, first.id, actor_user_id=None, now=NOW)
    assert undone.live_survivor_id == c
    assert lookup_profile(db, "user_id", "b-user") == b
    after = picture(db, b)
    assert after["timeline"][1:] == b_before["timeline"]
    assert after["timeline"][0]["message_id"] == "later"
    assert lookup_profile(db, "anonymous_id", "a-anon") == c


def test_unmerge_refusals(db: Database, settings: Settings) -> None:
    web = make_source(db)
    send(db, settings, web, identify("alice", "family-laptop"))
    send(db, settings, web, identify("bob", "family-laptop"))  # blocked: two user ids
    with db.read() as session:
        blocked = session.scalars(select(Merge.id).where(Merge.status == "blocked")).one()
    with pytest.raises(Invalid, match=r"merge_id: .* blocked"):
        unmerge(db, blocked, actor_user_id=None, now=NOW)
    with pytest.raises(NotFound, match="merge_id"):
        unmerge(db, 999_999, actor_user_id=None, now=NOW)
    send(db, settings, web, {"type": "page", "anonymousId": "tablet"})
    send(db, settings, web, {"type": "page", "anonymousId": "tablet", "userId": "alice"})
    merge = only_merge(db)
    unmerge(db, merge.id, actor_user_id=None, now=NOW)
    with pytest.raises(Conflict, match="already undone"):
        unmerge(db, merge.id, actor_user_id=None, now=NOW)
    info, live = get_merge(db, merge.id)
    assert info.status == "unmerged" and live is None


def test_explicit_merge_refusals_and_merge_protection(db: Database, settings: Settings) -> None:
    web = make_source(db)
    send(db, settings, web, identify("u1"))
    send(db, settings, web, identify("u2"))
    send(db, settings, web, identify(anon="a3"))
    u1, u2, a3 = (
        lookup_profile(db, k, v) for k, v in (("user_id", "u1"), ("user_id", "u2"), ("anonymous_id", "a3"))
    )
    explicit = {"actor_user_id": None, "rule": None, "reason": "checked", "now": NOW}
    with pytest.raises(Invalid, match="merged_id: a profile cannot be merged into itself"):
        merge_profiles(db, u1, u1, trigger="steward", **explicit)
    with pytest.raises(Invalid, match="trigger"):
        merge_profiles(db, u1, u2, trigger="message", **explicit)
    with pytest.raises(Invalid, match="rule"):
        merge_profiles(db, u1, a3, trigger="resolver", **explicit)
    with pytest.raises(Invalid, match="reason"):
        merge_profiles(db, u1, a3, trigger="steward", **{**explicit, "reason": " "})
    with pytest.raises(NotFound, match="merged_id"):
        merge_profiles(db, u1, "nope", trigger="steward", **explicit)
    with pytest.raises(Conflict, match=r"merged_id: merge protection: .*2 user_ids \(limit 1\)"):
        merge_profiles(db, u1, u2, trigger="steward", **explicit)
    forced = merge_profiles(db, u1, u2, trigger="steward", force=True, **explicit)
    assert lookup_profile(db, "user_id", "u2") == u1
    with pytest.raises(Conflict, match=f"merged_id: profile {u2} is already merged into {u1}"):
        merge_profiles(db, a3, u2, trigger="steward", **explicit)
    unmerge(db, forced.id, actor_user_id=None, now=NOW)

    # A pair a person unmerged is not merged again by the resolver; a steward still may.
    assert pair_was_unmerged(db, u1, u2) and pair_was_unmerged(db, u2, u1)
    assert not pair_was_unmerged(db, u1, a3)
    resolver = {**explicit, "rule": "auto-merge >= 0.99", "match_probability": 0.999}
    with pytest.raises(Conflict, match="unmerged"):
        merge_profiles(db, u1, u2, trigger="resolver", force=True, **resolver)
    # What they absorbed since counts too: u1 takes in a3, the pair (a3's survivor, u2) stays apart.
    merge_profiles(db, u1, a3, trigger="resolver", **resolver)
    assert pair_was_unmerged(db, a3, u2)
    with pytest.raises(Invalid, match="match_probability"):
        merge_profiles(db, u1, u2, trigger="resolver", **{**resolver, "match_probability": 1.5})


def test_a_message_with_both_identifiers_merges_them_again(db: Database, settings: Settings) -> None:
    """The stitcher is not the resolver: a message that really carries both IDs is new evidence."""
    web = make_source(db)
    send(db, settings, web, {"type": "page", "anonymousId": "kiosk"})
    send(db, settings, web, identify("carol"))
    send(db, settings, web, {"type": "page", "anonymousId": "kiosk", "userId": "carol"})
    kiosk, carol = only_merge(db).survivor_id, only_merge(db).merged_id
    unmerge(db, only_merge(db).id, actor_user_id=None, now=NOW)
    send(db, settings, web, {"type": "page", "anonymousId": "kiosk"})
    send(db, settings, web, {"type": "page", "userId": "carol"})
    assert lookup_profile(db, "anonymous_id", "kiosk") == kiosk
    assert lookup_profile(db, "user_id", "carol") == carol
    send(db, settings, web, {"type": "page", "anonymousId": "kiosk", "userId": "carol"})
    assert lookup_profile(db, "user_id", "carol") == kiosk
    assert len(profile_view(db, kiosk)["unmerged"]) == 1


def test_a_merge_from_before_the_lineage_columns_still_unmerges(db: Database, settings: Settings) -> None:
    """Merges written before revision 0006 have no snapshot: their rows go back by original profile,
    and events that arrived after the merge by arrival time."""
    web = make_source(db)
    send(db, settings, web, {"type": "page", "anonymousId": "old-anon", "timestamp": "2026-01-01T00:00:00Z"})
    send(db, settings, web, identify("old-user", at="2026-01-02T00:00:00Z", name="Olga"))
    anon, user = lookup_profile(db, "anonymous_id", "old-anon"), lookup_profile(db, "user_id", "old-user")
    before = picture(db, user)
    send(
        db,
        settings,
        web,
        {
            "type": "page",
            "anonymousId": "old-anon",
            "userId": "old-user",
            "timestamp": "2026-01-01T00:00:00Z",
        },
    )
    merge = only_merge(db)
    with db.write() as session:
        session.execute(update(Merge).where(Merge.id == merge.id).values(snapshot=None))
    unmerge(db, merge.id, actor_user_id=None, now=NOW)
    assert (merge.survivor_id, merge.merged_id) == (anon, user)
    assert picture(db, user) == before
    assert lookup_profile(db, "anonymous_id", "old-anon") == anon


def test_events_arriving_during_an_unmerge_land_on_the_right_customer(
    db: Database, settings: Settings
) -> None:
    sources = [make_source(db, f"s{i}", "web") for i in range(4)]
    send(db, settings, sources[0], {"type": "page", "anonymousId": "laptop"})
    send(db, settings, sources[0], identify("bob", name="Bob"))
    send(db, settings, sources[0], {"type": "page", "anonymousId": "laptop", "userId": "bob"})
    merge = only_merge(db)

    def write(i: int) -> None:
        for n in range(5):
            send(db, settings, sources[i], {"type": "track", "event": f"E{i}-{n}", "userId": "bob"})
            send(db, settings, sources[i], {"type": "track", "event": f"L{i}-{n}", "anonymousId": "laptop"})

    with ThreadPoolExecutor(max_workers=5) as pool:
        writers = [pool.submit(write, i) for i in range(4)]
        undone = pool.submit(unmerge, db, merge.id, actor_user_id=None, now=NOW).result()
        for writer in writers:
            writer.result()
    bob, laptop = undone.restored_id, undone.survivor_id
    names = {
        p: {e["event"] for e in timeline_page(db, p, limit=200)["events"]} - {None} for p in (bob, laptop)
    }
    assert names[bob] == {f"E{i}-{n}" for i in range(4) for n in range(5)}
    assert names[laptop] == {f"L{i}-{n}" for i in range(4) for n in range(5)}
    for profile_id in (bob, laptop):
        view = profile_view(db, profile_id)
        assert view["summary"]["event_count"] == len(timeline_page(db, profile_id, limit=200)["events"])


# -- over HTTP and the command line -------------------------------------------------------------


def user_id(db: Database, email: str) -> int:
    with db.read() as session:
        found = session.scalar(select(User.id).where(User.email == email))
        assert found is not None
        return int(found)


def test_merge_and_unmerge_over_rest_need_edit_and_both_customers_in_scope(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    tokens = {
        name: {"Authorization": f"Bearer {make_token(db, f'{name}@example.com', role)}"}
        for name, role in (
            ("admin", "admin"),
            ("agent1", "agent"),
            ("agent2", "agent"),
            ("analyst", "analyst"),
        )
    }
    ids = {name: user_id(db, f"{name}@example.com") for name in tokens}
    web = make_source(db)
    send(db, settings, web, identify("u1", name="One"), identify(anon="a2", city="Two"), identify("u3"))
    p1, p2, p3 = (
        lookup_profile(db, k, v) for k, v in (("user_id", "u1"), ("anonymous_id", "a2"), ("user_id", "u3"))
    )
    admin = viewer_for(db, ids["admin"], "admin")
    assign_owner(db, admin, [p1, p2], ids["agent1"])
    assign_owner(db, admin, [p3], ids["agent2"])

    def merge(who: str, survivor: str, other: str, **extra: Any) -> httpx.Response:
        body = {"other_id": other, "reason": "same customer, checked by phone", **extra}
        return http.post(f"/api/v1/profiles/{survivor}/merge", json=body, headers=tokens[who])

    assert merge("analyst", p1, p2).status_code == 403
    refused = merge("agent1", p1, p3)
    assert refused.status_code == 404 and refused.json()["error"]["message"] == f"profile {p3} does not exist"
    share_customer(db, viewer_for(db, ids["agent2"], "agent"), p3, ids["agent1"], "read")
    assert merge("agent1", p1, p3).status_code == 403
    itself = merge("agent1", p1, p1)
    assert itself.status_code == 400 and itself.json()["error"]["details"] == {"field": "merged_id"}

    merged = merge("agent1", p1, p2)
    assert merged.status_code == 200, merged.text
    merge_id = merged.json()["merge"]["id"]
    assert merged.json()["merge"]["trigger"] == "steward"
    assert merged.json()["merge"]["actor_user_id"] == ids["agent1"]
    view = http.get(f"/api/v1/profiles/{p1}", headers=tokens["agent1"]).json()
    assert view["merged_from"][0]["merge_id"] == merge_id
    assert view["merged_from"][0]["actor"]["email"] == "agent1@example.com"
    again = merge("agent1", p1, p2)
    assert again.status_code == 409 and again.json()["error"]["details"]["field"] == "merged_id"

    def unmerge_by(who: str, number: int = merge_id, **body: Any) -> httpx.Response:
        return http.post(f"/api/v1/merges/{number}/unmerge", json=body or None, headers=tokens[who])

    assert unmerge_by("analyst").status_code == 403
    hidden = unmerge_by("agent2")
    assert hidden.status_code == 404 and hidden.json()["error"]["message"] == f"merge_id: no merge {merge_id}"
    assert unmerge_by("agent1", 999_999).status_code == 404
    undone = unmerge_by("agent1", reason="two people")
    assert undone.status_code == 200, undone.text
    assert undone.json()["unmerge"] == {
        "merge_id": merge_id,
        "survivor_id": p1,
        "restored_id": p2,
        "moved": {"identities": 1, "events": 1, "trait_history": 1},
    }
    assert unmerge_by("agent1").status_code == 409
    assert lookup_profile(db, "anonymous_id", "a2") == p2
    restored = http.get(f"/api/v1/profiles/{p2}", headers=tokens["agent1"]).json()
    assert restored["unmerged"][0]["unmerge_reason"] == "two people"
    assert restored["unmerged"][0]["unmerged_by"]["email"] == "agent1@example.com"

    entries = [e for e in search_audit(db) if e.action == "change"]
    changes = sorted(
        (e.object_id, e.details["action"]) for e in entries if e.user_email == "agent1@example.com"
    )
    assert changes == sorted([(p1, "merge"), (p2, "merge"), (p1, "unmerge"), (p2, "unmerge")])
    denied = [e.object_id for e in search_audit(db, action="denied")]
    assert p3 in denied and p1 in denied  # agent2 asked about agent1's customer through the merge


def test_undo_this_merge_on_the_360_page(db: Database, settings: Settings, http: httpx.Client) -> None:
    make_token(db)
    make_token(db, "reader@example.com", "agent")
    web = make_source(db)
    send(db, settings, web, {"type": "page", "anonymousId": "a-1", "name": "Pricing"})
    send(db, settings, web, identify("u-1", name="Zhang Wei"))
    send(db, settings, web, {"type": "identify", "userId": "u-1", "anonymousId": "a-1"})
    merge = only_merge(db)
    survivor = merge.survivor_id
    share_customer(db, SYSTEM, survivor, user_id(db, "reader@example.com"), "read")

    sign_in(http, "reader@example.com")
    assert "Undo this merge" not in http.get(f"/customers/{survivor}").text
    forged = http.post(
        f"/customers/{survivor}/merges/{merge.id}/unmerge",
        data={"csrf": csrf_of(http.get("/customers").text)},
    )
    assert forged.status_code == 404
    http.cookies.clear()

    send(db, settings, web, identify(anon="a-2"), identify(anon="a-3"))
    for anon, trigger, rule in (("a-2", "resolver", "auto-merge >= 0.99"), ("a-3", "steward", None)):
        merge_profiles(
            db,
            survivor,
            lookup_profile(db, "anonymous_id", anon),
            trigger=trigger,
            actor_user_id=user_id(db, "admin@example.com") if trigger == "steward" else None,
            rule=rule,
            reason=f"{anon} is Zhang Wei's",
            match_probability=0.995 if rule else None,
            now=NOW,
        )

    sign_in(http)
    page = http.get(f"/customers/{survivor}").text
    assert page.count("Undo this merge") == 3 and "seen together with" in page
    assert (
        "merged by the rule auto-merge &gt;= 0.99 (match probability 0.995) because a-2 is Zhang Wei&#39;s"
        in page
    )
    assert "merged by admin@example.com because a-3 is Zhang Wei&#39;s" in page
    action = f"/customers/{survivor}/merges/{merge.id}/unmerge"
    assert f'action="{action}"' in page
    assert http.post(action, data={}).status_code == 403  # no CSRF token
    done = http.post(action, data={"csrf": csrf_of(page)})
    assert done.status_code == 303 and done.headers["location"] == f"/customers/{survivor}"
    page = http.get(f"/customers/{survivor}").text
    assert "Undone merges" in page and page.count("Undo this merge") == 2
    assert "split from" in page and "admin@example.com" in page
    assert lookup_profile(db, "user_id", "u-1") == merge.merged_id
    # A second click (another tab) finds it undone and just shows the page.
    assert http.post(action, data={"csrf": csrf_of(page)}).status_code == 303


def test_cli_merges_and_unmerges(db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        run = CliRunner()
        web = make_source(db)
        send(db, settings, web, identify("u1"), identify("u2"))
        u1, u2 = lookup_profile(db, "user_id", "u1"), lookup_profile(db, "user_id", "u2")
        refused = run.invoke(app, ["profiles", "merge", u1, u2, "--reason", "same"])
        assert refused.exit_code == 1 and "merge protection" in refused.output
        merged = run.invoke(app, ["profiles", "merge", u1, u2, "--reason", "same", "--force"])
        assert merged.exit_code == 0, merged.output
        merge_id = int(merged.output.split()[1].rstrip(":"))
        assert lookup_profile(db, "user_id", "u2") == u1
        undone = run.invoke(app, ["profiles", "unmerge", str(merge_id), "--reason", "not the same"])
        assert undone.exit_code == 0, undone.output
        assert f"unmerged {u2} from {u1}" in undone.output
        assert lookup_profile(db, "user_id", "u2") == u2
        twice = run.invoke(app, ["profiles", "unmerge", str(merge_id)])
        assert twice.exit_code == 1 and "already undone" in twice.output
    finally:
        get_settings.cache_clear()
