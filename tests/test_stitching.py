"""Identity stitching through the real write path, on SQLite and PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import func, select

from tests.factories import lookup_profile, make_source, profile_view, send, timeline_page, trait_history
from threadline.config import Settings
from threadline.ingest import ingest, list_quarantine
from threadline.storage import Database
from threadline.storage.models import Event, Merge, Profile


def live_profiles(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).where(Profile.merged_into.is_(None))) or 0)


def test_one_person_across_four_channels_is_one_profile_with_one_timeline(
    db: Database, settings: Settings
) -> None:
    web = make_source(db, "website", "web")
    app = make_source(db, "mobile-app", "app")
    store = make_source(db, "store-pos", "store")
    calls = make_source(db, "call-center", "call_center")

    send(db, settings, web, {"type": "page", "anonymousId": "anon-web", "name": "Pricing"})
    send(
        db,
        settings,
        app,
        {
            "type": "identify",
            "anonymousId": "anon-app",
            "userId": "u-42",
            "traits": {"email": "Wei.Zhang@Example.com", "name": "Zhang Wei"},
        },
    )
    # Two profiles so far: nothing links the browser to the app yet.
    assert live_profiles(db) == 2
    send(db, settings, web, {"type": "identify", "anonymousId": "anon-web", "userId": "u-42"})
    send(
        db,
        settings,
        store,
        {
            "type": "track",
            "event": "Order Completed",
            "properties": {"total": 99.5},
            "context": {"traits": {"email": "wei.zhang@example.com", "phone": "(415) 555-0100"}},
        },
    )
    send(
        db,
        settings,
        calls,
        {"type": "track", "event": "Call Completed", "context": {"traits": {"phone": "+1 415-555-0100"}}},
    )

    assert live_profiles(db) == 1
    profile_id = lookup_profile(db, "phone", "415 555 0100", region="US")
    view = profile_view(db, profile_id)
    assert view["channels"] == ["app", "call_center", "store", "web"]
    assert {(i["kind"], i["value"]) for i in view["identities"]} == {
        ("anonymous_id", "anon-web"),
        ("anonymous_id", "anon-app"),
        ("user_id", "u-42"),
        ("email", "wei.zhang@example.com"),
        ("phone", "+14155550100"),
    }
    assert view["traits"]["name"] == "Zhang Wei"
    assert view["traits"]["phone"] == "+14155550100"  # as it matches, not as the last channel typed it
    assert view["summary"]["event_count"] == 5
    timeline = timeline_page(db, profile_id)
    assert [e["channel"] for e in timeline["events"]] == ["call_center", "store", "web", "app", "web"]
    # The merge explains itself: which identifier joined the two, from which message and source.
    [merge] = view["merged_from"]
    assert merge["trigger"] == "message"
    assert merge["identifier"] == {"kind": "anonymous_id", "value": "anon-web"}
    assert merge["source"] == "website"
    assert merge["reason"] == "anonymous_id anon-web seen together with user_id u-42 in one message"


def test_merged_away_profile_id_still_resolves(db: Database, settings: Settings) -> None:
    web = make_source(db)
    first = send(db, settings, web, {"type": "page", "anonymousId": "a1"}).profile_ids[0]
    second = send(db, settings, web, {"type": "identify", "userId": "u1", "anonymousId": "a2"}).profile_ids[0]
    send(db, settings, web, {"type": "identify", "userId": "u1", "anonymousId": "a1"})
    assert first and second
    survivor = profile_view(db, first)["id"]
    merged_away = second if survivor == first else first
    assert profile_view(db, merged_away)["id"] == survivor
    assert timeline_page(db, merged_away)["profile_id"] == survivor
    assert len(timeline_page(db, merged_away)["events"]) == 3


def test_second_user_id_on_a_shared_browser_starts_its_own_profile(db: Database, settings: Settings) -> None:
    web = make_source(db)
    send(db, settings, web, {"type": "identify", "userId": "alice", "anonymousId": "family-laptop"})
    result = send(db, settings, web, {"type": "identify", "userId": "bob", "anonymousId": "family-laptop"})
    alice = lookup_profile(db, "user_id", "alice", region="US")
    bob = lookup_profile(db, "user_id", "bob", region="US")
    assert alice != bob
    assert result.profile_ids == [bob]
    assert lookup_profile(db, "anonymous_id", "family-laptop", region="US") == alice
    with db.read() as session:
        blocked = session.scalars(select(Merge).where(Merge.status == "blocked")).all()
    assert len(blocked) == 1
    assert "limit 1" in blocked[0].reason and "user_id" in blocked[0].reason
    assert profile_view(db, bob)["blocked_merges"][0]["identifier"]["kind"] == "anonymous_id"


def test_merge_protection_keeps_two_user_ids_apart_even_when_an_email_joins_them(
    db: Database, settings: Settings
) -> None:
    crm = make_source(db, "crm", "other")
    send(db, settings, crm, {"type": "identify", "userId": "u1", "traits": {"email": "one@example.com"}})
    send(db, settings, crm, {"type": "identify", "userId": "u2", "traits": {"email": "two@example.com"}})
    result = send(
        db, settings, crm, {"type": "identify", "userId": "u1", "traits": {"email": "two@example.com"}}
    )
    u1 = lookup_profile(db, "user_id", "u1", region="US")
    assert result.profile_ids == [u1]
    assert lookup_profile(db, "email", "two@example.com", region="US") != u1
    assert live_profiles(db) == 2


def test_configured_limit_per_kind_blocks_a_link(db: Database, settings: Settings) -> None:
    strict = settings.model_copy(update={"identity_limits": {"user_id": 1, "email": 1}})
    crm = make_source(db, "crm", "other")
    send(db, strict, crm, {"type": "identify", "userId": "u1", "traits": {"email": "one@example.com"}})
    send(db, strict, crm, {"type": "identify", "userId": "u1", "traits": {"email": "other@example.com"}})
    view = profile_view(db, lookup_profile(db, "user_id", "u1", region="US"))
    assert [i["value"] for i in view["identities"] if i["kind"] == "email"] == ["one@example.com"]
    assert "email not linked" in view["blocked_merges"][0]["reason"]


def test_alias_links_previous_id_to_user_id(db: Database, settings: Settings) -> None:
    web = make_source(db)
    send(db, settings, web, {"type": "track", "event": "Signed Up", "anonymousId": "anon-9"})
    send(db, settings, web, {"type": "identify", "userId": "u9", "traits": {"email": "nine@example.com"}})
    send(db, settings, web, {"type": "alias", "previousId": "anon-9", "userId": "u9"})
    profile = lookup_profile(db, "anonymous_id", "anon-9", region="US")
    assert profile == lookup_profile(db, "email", "nine@example.com", region="US")
    assert profile_view(db, profile)["merged_from"][0]["trigger"] == "alias"


def test_traits_follow_event_time_not_arrival_order_and_keep_history(
    db: Database, settings: Settings
) -> None:
    store = make_source(db, "store", "store")
    web = make_source(db, "website", "web")
    send(
        db,
        settings,
        web,
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": "2026-03-01T10:00:00Z",
            "traits": {"city": "Shanghai", "plan": "pro"},
        },
    )
    # An older store record arrives late: it is history, not the shown value.
    send(
        db,
        settings,
        store,
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": "2026-01-05T09:00:00Z",
            "traits": {"city": "Beijing", "tier": "gold"},
        },
    )
    profile = lookup_profile(db, "user_id", "u1", region="US")
    view = profile_view(db, profile)
    assert view["traits"] == {"city": "Shanghai", "plan": "pro", "tier": "gold"}
    assert view["trait_sources"]["city"]["source"] == "website"
    assert view["trait_sources"]["tier"]["source"] == "store"
    cities = [(h["value"], h["source"]) for h in trait_history(db, profile, "city")]
    assert cities == [("Shanghai", "website"), ("Beijing", "store")]


def test_merging_two_profiles_keeps_the_newest_trait_of_each(db: Database, settings: Settings) -> None:
    web = make_source(db)
    send(
        db,
        settings,
        web,
        {
            "type": "identify",
            "anonymousId": "a",
            "timestamp": "2026-05-01T00:00:00Z",
            "traits": {"name": "Old Name", "city": "Paris"},
        },
    )
    send(
        db,
        settings,
        web,
        {
            "type": "identify",
            "userId": "u",
            "timestamp": "2026-06-01T00:00:00Z",
            "traits": {"name": "New Name"},
        },
    )
    send(db, settings, web, {"type": "track", "event": "Login", "userId": "u", "anonymousId": "a"})
    view = profile_view(db, lookup_profile(db, "user_id", "u", region="US"))
    assert view["traits"] == {"name": "New Name", "city": "Paris"}
    assert view["display_name"] == "New Name"


def test_replaying_a_batch_three_times_stores_it_once(db: Database, settings: Settings) -> None:
    web = make_source(db)
    batch = [
        {"type": "track", "event": f"E{i}", "anonymousId": f"a{i % 3}", "messageId": f"m-{i}"}
        for i in range(10)
    ]
    results = [send(db, settings, web, *batch) for _ in range(3)]
    assert [(r.accepted, r.duplicates) for r in results] == [(10, 0), (0, 10), (0, 10)]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 10
    assert live_profiles(db) == 3


def test_same_message_id_from_another_source_is_a_different_message(db: Database, settings: Settings) -> None:
    one, two = make_source(db, "one", "web"), make_source(db, "two", "app")
    send(db, settings, one, {"type": "track", "event": "X", "userId": "u", "messageId": "m1"})
    assert (
        send(db, settings, two, {"type": "track", "event": "X", "userId": "u", "messageId": "m1"}).accepted
        == 1
    )


def test_clock_skew_is_corrected_with_sent_at(db: Database, settings: Settings) -> None:
    web = make_source(db)
    received = datetime(2026, 11, 23, 12, 0, 0)
    # The device's clock runs 2 hours fast; it recorded the event 30 s before sending.
    message = {
        "type": "track",
        "event": "Tapped",
        "userId": "u",
        "timestamp": "2026-11-23T14:00:00Z",
        "sentAt": "2026-11-23T14:00:30Z",
    }
    result = ingest(db, web, [message], settings=settings, received_at=received)
    page = timeline_page(db, result.profile_ids[0] or "")
    assert page["events"][0]["timestamp"] == (received - timedelta(seconds=30)).isoformat() + ".000Z"


def test_batch_level_sent_at_and_context_apply_to_every_message(db: Database, settings: Settings) -> None:
    app = make_source(db, "app", "app")
    received = datetime(2026, 11, 23, 12, 0, 0)
    result = ingest(
        db,
        app,
        [{"type": "track", "event": "Opened", "userId": "u", "timestamp": "2026-11-23T11:59:00Z"}],
        settings=settings,
        received_at=received,
        batch_sent_at=datetime(2026, 11, 23, 12, 0, 0),
        batch_context={"device": {"id": "device-1"}},
    )
    profile = result.profile_ids[0] or ""
    assert ("device_id", "device-1") in {
        (i["kind"], i["value"]) for i in profile_view(db, profile)["identities"]
    }


def test_invalid_messages_are_quarantined_and_valid_neighbours_kept(db: Database, settings: Settings) -> None:
    web = make_source(db)
    result = send(
        db,
        settings,
        web,
        {"type": "identify", "userId": "ok-1"},
        {"type": "identify", "userId": "bad", "traits": {"email": "not-an-email"}},
        {"type": "track", "userId": "bad", "event": ""},
        {"type": "identify", "anonymousId": "ok-2", "traits": {"phone": "12"}},
        {"type": "page", "traits": "nope", "anonymousId": "x"},
        {"type": "track", "event": "No One"},
        {"type": "identify", "userId": "ok-3"},
    )
    assert result.accepted == 2 and result.profile_ids[0] and result.profile_ids[6]
    assert [(r.index, r.field) for r in result.rejected] == [
        (1, "traits.email"),
        (2, "event"),
        (3, "traits.phone"),
        (4, "traits"),
        (5, "userId"),
    ]
    kept = list_quarantine(db)
    assert len(kept) == 5
    assert all(q.source == "website" and q.payload.startswith("{") for q in kept)


def test_phone_numbers_use_the_default_region(db: Database, settings: Settings) -> None:
    china = settings.model_copy(update={"default_region": "CN"})
    store = make_source(db, "store", "store")
    send(db, china, store, {"type": "identify", "traits": {"phone": "138 0013 8000", "name": "张伟"}})
    profile = lookup_profile(db, "phone", "+86 138-0013-8000", region="CN")
    assert profile_view(db, profile)["display_name"] == "张伟"


def test_concurrent_writers_for_the_same_new_person_create_one_profile(
    db: Database, settings: Settings
) -> None:
    sources = [make_source(db, f"s{i}", "web") for i in range(4)]

    def write(i: int) -> list[str | None]:
        return send(
            db,
            settings,
            sources[i % 4],
            *[
                {
                    "type": "identify",
                    "userId": f"person-{n}",
                    "anonymousId": f"device-{i}-{n}",
                    "traits": {"email": f"person{n}@example.com"},
                }
                for n in range(20)
            ],
        ).profile_ids

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(write, range(8)))
    assert live_profiles(db) == 20
    for n in range(20):
        owner = lookup_profile(db, "user_id", f"person-{n}", region="US")
        assert {r[n] for r in results} == {owner}
        assert lookup_profile(db, "email", f"person{n}@example.com", region="US") == lookup_profile(
            db, "user_id", f"person-{n}", region="US"
        )
