"""The golden record's survivorship rules (recent, trusted, frequent) on SQLite and PostgreSQL, through the
real write path: what a customer shows, what merges and unmerges make of it, recomputing after a change,
and the settings page and REST API that change the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.factories import lookup_profile, make_source, make_token, profile_view, send, trait_history
from tests.test_web_pages import csrf_of, sign_in
from threadline.cli.main import app
from threadline.clock import utcnow
from threadline.config import Settings, get_settings
from threadline.errors import Invalid
from threadline.identity import merge_profiles, unmerge
from threadline.privacy import search_audit
from threadline.profiles import (
    GOLDEN_RULES_KEY,
    check_rules,
    get_golden_rules,
    recompute_golden,
    set_golden_rules,
)
from threadline.profiles.golden import MAX_SEEN
from threadline.storage import Database
from threadline.storage.models import Profile

NOW = datetime(2026, 6, 1, 12, 0, 0)


def identify(at: str, user: str | None = None, anon: str | None = None, **traits: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "identify", "timestamp": f"2026-01-{at}Z", "traits": traits}
    if user:
        message["userId"] = user
    if anon:
        message["anonymousId"] = anon
    return message


def rules(db: Database, by_key: dict[str, str], trust: list[str] | None = None) -> None:
    set_golden_rules(db, {"rules": by_key, "source_trust": trust or []}, user_id=None, now=NOW)


def shown(db: Database, profile_id: str, key: str) -> tuple[Any, str, str, str, int | None]:
    """A trait as the customer shows it: value, source, time, the rule that chose it, messages seen."""
    view = profile_view(db, profile_id)
    why = view["trait_sources"][key]
    return view["traits"][key], why["source"], why["at"], why["rule"], why["count"]


def others(db: Database, profile_id: str, key: str) -> list[tuple[Any, str, str]]:
    return [
        (o["value"], o["source"], o["at"]) for o in profile_view(db, profile_id)["trait_alternatives"][key]
    ]


@pytest.fixture
def sources(db: Database) -> dict[str, Any]:
    return {
        name: make_source(db, name, channel)
        for name, channel in (
            ("website", "web"),
            ("store-pos", "store"),
            ("call-center", "call_center"),
            ("chat", "chat"),
        )
    }


def test_recent_is_the_default_and_keeps_the_other_values(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    web, pos = sources["website"], sources["store-pos"]
    send(db, settings, web, identify("01T10:00:00", "u1", plan="free"))
    send(db, settings, pos, identify("03T10:00:00", "u1", plan="pro"))
    send(db, settings, web, identify("02T10:00:00", "u1", plan="trial"))  # older, arrives last
    send(db, settings, web, identify("01T12:00:00", "u1", plan="free"))  # seen again, still older
    customer = lookup_profile(db, "user_id", "u1")
    assert shown(db, customer, "plan") == ("pro", "store-pos", "2026-01-03T10:00:00Z", "recent", 1)
    assert others(db, customer, "plan") == [
        ("trial", "website", "2026-01-02T10:00:00.000Z"),
        ("free", "website", "2026-01-01T12:00:00.000Z"),
    ]
    assert get_golden_rules(db).rules.rules == {}


def test_trusted_takes_the_most_trusted_source_and_ranks_unlisted_ones_last(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    rules(db, {"plan": "trusted", "email": "trusted"}, ["store-pos", "website"])
    web, pos, calls, chat = (sources[n] for n in ("website", "store-pos", "call-center", "chat"))
    send(db, settings, web, identify("02T10:00:00", "u1", plan="basic"))
    send(db, settings, calls, identify("05T10:00:00", "u1", plan="gold"))  # newest, but unranked
    customer = lookup_profile(db, "user_id", "u1")
    assert shown(db, customer, "plan")[:4] == ("basic", "website", "2026-01-02T10:00:00Z", "trusted")
    send(db, settings, pos, identify("01T10:00:00", "u1", plan="pro"))  # oldest, most trusted
    assert shown(db, customer, "plan")[:2] == ("pro", "store-pos")
    send(db, settings, pos, identify("01T09:00:00", "u1", plan="starter"))
    assert shown(db, customer, "plan")[:2] == ("pro", "store-pos")  # the trusted source's latest wins
    send(db, settings, web, identify("06T10:00:00", "u1", plan="premium"))
    assert shown(db, customer, "plan")[:2] == ("pro", "store-pos")
    assert {value for value, _, _ in others(db, customer, "plan")} == {"basic", "gold", "starter", "premium"}
    # Only unranked sources: the most recent of them, as if the rule were `recent`.
    send(db, settings, calls, identify("03T10:00:00", "u1", nickname="Annie"))
    send(db, settings, chat, identify("04T10:00:00", "u1", nickname="Ann"))
    send(db, settings, calls, identify("02T10:00:00", "u1", nickname="A."))
    assert shown(db, customer, "nickname")[:2] == ("Ann", "chat")


def test_frequent_counts_messages_and_a_tie_goes_to_the_latest(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    rules(db, {"name": "frequent"})
    web, pos = sources["website"], sources["store-pos"]
    send(db, settings, web, identify("01T10:00:00", "u1", name="Jon Smith"))
    send(db, settings, pos, identify("02T10:00:00", "u1", name="John Smith"))
    customer = lookup_profile(db, "user_id", "u1")
    assert shown(db, customer, "name") == ("John Smith", "store-pos", "2026-01-02T10:00:00Z", "frequent", 1)
    send(db, settings, web, identify("01T10:00:00", "u1", name="Jon Smith"))
    assert shown(db, customer, "name") == ("Jon Smith", "website", "2026-01-01T10:00:00Z", "frequent", 2)
    send(db, settings, pos, identify("01T08:00:00", "u1", name="John Smith"))  # 2 against 2
    assert shown(db, customer, "name")[:2] == ("John Smith", "store-pos")
    assert profile_view(db, customer)["display_name"] == "John Smith"
    [other] = profile_view(db, customer)["trait_alternatives"]["name"]
    assert (other["value"], other["count"]) == ("Jon Smith", 2)
    # Repeating the shown value counts, though it is no history.
    send(db, settings, pos, identify("03T10:00:00", "u1", name="John Smith"))
    assert shown(db, customer, "name")[4] == 3
    assert "2026-01-03T10:00:00.000Z" not in [h["at"] for h in trait_history(db, customer, "name")]


def test_a_trait_that_changes_every_time_keeps_a_bounded_memory(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    rules(db, {"points": "frequent"})
    send(
        db,
        settings,
        sources["website"],
        *(identify(f"{n + 1:02d}T10:00:00", "u1", points=n) for n in range(20)),
    )
    customer = lookup_profile(db, "user_id", "u1")
    with db.read() as session:
        meta = session.scalars(select(Profile.trait_meta).where(Profile.id == customer)).one()["points"]
    assert len(meta[3]) == MAX_SEEN
    assert shown(db, customer, "points")[:3] == (19, "website", "2026-01-20T10:00:00Z")
    assert len(trait_history(db, customer, "points")) == 20  # the alternatives are all still there


def _worlds(db: Database, settings: Settings, sources: dict[str, Any], suffix: str) -> tuple[str, str]:
    """Ann (website and call centre, by user id) and a store customer (by device) with the same traits
    in every world; `suffix` keeps each world's identifiers apart."""
    web, pos, calls = sources["website"], sources["store-pos"], sources["call-center"]
    user, device = f"ann{suffix}", f"b-dev{suffix}"
    send(db, settings, web, identify("01T10:00:00", user, name="Ann", plan="basic", city="Paris"))
    send(db, settings, web, identify("02T10:00:00", user, name="Ann"))
    send(db, settings, pos, identify("03T10:00:00", anon=device, name="Annie", plan="pro"))
    send(db, settings, calls, identify("05T10:00:00", user, plan="gold", city="Lyon"))
    send(db, settings, pos, identify("04T10:00:00", anon=device, name="Annie"))
    send(db, settings, pos, identify("04T12:00:00", anon=device, name="Annie", city="Nice"))
    return lookup_profile(db, "user_id", user), lookup_profile(db, "anonymous_id", device)


def _golden(db: Database, profile_id: str) -> dict[str, Any]:
    view = profile_view(db, profile_id)
    return {"traits": view["traits"], "trait_sources": view["trait_sources"]}


def test_rules_survive_a_merge_and_an_unmerge_as_ingestion_applies_them(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    rules(db, {"name": "frequent", "plan": "trusted"}, ["store-pos", "website"])
    ann, store = _worlds(db, settings, sources, "")
    before = {p: profile_view(db, p) for p in (ann, store)}
    assert before[ann]["traits"] == {"name": "Ann", "plan": "basic", "city": "Lyon"}
    assert before[store]["traits"] == {"name": "Annie", "plan": "pro", "city": "Nice"}

    info = merge_profiles(
        db, ann, store, trigger="steward", actor_user_id=None, rule=None, reason="same person", now=NOW
    )
    # Merged, the customer shows what one profile that got every message shows.
    web, pos, calls = sources["website"], sources["store-pos"], sources["call-center"]
    send(db, settings, web, identify("01T10:00:00", "twin", name="Ann", plan="basic", city="Paris"))
    send(db, settings, web, identify("02T10:00:00", "twin", name="Ann"))
    send(db, settings, pos, identify("03T10:00:00", "twin", name="Annie", plan="pro"))
    send(db, settings, calls, identify("05T10:00:00", "twin", plan="gold", city="Lyon"))
    send(db, settings, pos, identify("04T10:00:00", "twin", name="Annie"))
    send(db, settings, pos, identify("04T12:00:00", "twin", name="Annie", city="Nice"))
    assert _golden(db, ann) == _golden(db, lookup_profile(db, "user_id", "twin"))
    assert profile_view(db, ann)["traits"] == {"name": "Annie", "plan": "pro", "city": "Lyon"}
    assert shown(db, ann, "name")[3:] == ("frequent", 3)

    undone = unmerge(db, info.id, actor_user_id=None, now=NOW)
    assert undone.restored_id == store
    for profile_id in (ann, store):
        after = profile_view(db, profile_id)
        for key in ("traits", "trait_sources", "trait_alternatives", "display_name"):
            assert after[key] == before[profile_id][key], key


def test_what_arrives_while_merged_is_replayed_by_the_same_rules(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    rules(db, {"name": "frequent", "plan": "trusted"}, ["store-pos", "website"])
    ann, store = _worlds(db, settings, sources, "")
    info = merge_profiles(
        db, ann, store, trigger="steward", actor_user_id=None, rule=None, reason="same person", now=NOW
    )
    late = [
        identify("06T10:00:00", anon="b-dev", plan="platinum"),
        identify("07T10:00:00", anon="b-dev", name="Ann"),
    ]
    send(db, settings, sources["store-pos"], *late)
    assert shown(db, ann, "plan")[:2] == ("platinum", "store-pos")
    unmerge(db, info.id, actor_user_id=None, now=NOW)
    # The world where they were never merged: the late messages went to the store customer directly.
    ann_2, store_2 = _worlds(db, settings, sources, "-2")
    send(db, settings, sources["store-pos"], *(dict(m, anonymousId="b-dev-2") for m in late))
    assert _golden(db, ann) == _golden(db, ann_2)
    assert _golden(db, store) == _golden(db, store_2)
    assert profile_view(db, store)["traits"]["name"] == "Annie"  # 3 against 1


def test_a_message_that_joins_two_customers_merges_their_traits_by_the_rules(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    rules(db, {"name": "frequent"})
    web, pos = sources["website"], sources["store-pos"]
    send(db, settings, web, identify("01T10:00:00", "u1", name="Ann"))
    send(db, settings, pos, *(identify(f"0{n}T10:00:00", anon="till-7", name="Annie") for n in (2, 3)))
    ann = lookup_profile(db, "user_id", "u1")
    before = {p: profile_view(db, p) for p in (ann, lookup_profile(db, "anonymous_id", "till-7"))}
    send(db, settings, web, {"type": "track", "event": "Logged In", "userId": "u1", "anonymousId": "till-7"})
    assert lookup_profile(db, "anonymous_id", "till-7") == ann
    assert shown(db, ann, "name") == ("Annie", "store-pos", "2026-01-03T10:00:00Z", "frequent", 2)
    [merge] = profile_view(db, ann)["merged_from"]
    unmerge(db, merge["merge_id"], actor_user_id=None, now=NOW)
    for profile_id, view in before.items():
        assert _golden(db, profile_id) == {k: view[k] for k in ("traits", "trait_sources")}


def test_changed_rules_apply_to_new_messages_and_recompute_applies_them_to_everyone(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    web, pos = sources["website"], sources["store-pos"]
    history = [
        (web, identify("01T10:00:00", "u1", name="Jon", city="Paris")),
        (pos, identify("02T10:00:00", "u1", name="John")),
        (web, identify("03T10:00:00", "u1", name="Jon")),
        (pos, identify("04T10:00:00", "u1", name="John")),
        (pos, identify("05T10:00:00", "u1", name="Johnny")),
    ]
    for source, message in history:
        send(db, settings, source, message)
    customer = lookup_profile(db, "user_id", "u1")
    assert shown(db, customer, "name")[0] == "Johnny"

    rules(db, {"name": "frequent", "city": "trusted"}, ["store-pos"])
    assert shown(db, customer, "name")[::3] == ("Johnny", "recent")  # nothing new arrived for it
    send(db, settings, pos, identify("06T10:00:00", "u1", city="Nice"))
    assert shown(db, customer, "city")[:4] == ("Nice", "store-pos", "2026-01-06T10:00:00Z", "trusted")
    assert shown(db, customer, "name")[3] == "recent"

    done = recompute_golden(db, batch_size=1)
    assert (done.profiles, done.changed) == (1, 1)
    # As if the rules had been there from the start: a twin ingested under them.
    for source, message in [*history, (pos, identify("06T10:00:00", "u1", city="Nice"))]:
        send(db, settings, source, dict(message, userId="twin"))
    twin = lookup_profile(db, "user_id", "twin")
    assert _golden(db, customer) == _golden(db, twin)
    assert shown(db, customer, "name")[:2] == ("John", "store-pos")  # 2 against 2: the latest
    assert recompute_golden(db).changed == 0


def test_recompute_seeds_profiles_from_before_counts_from_trait_history(
    db: Database, settings: Settings, sources: dict[str, Any]
) -> None:
    web, pos = sources["website"], sources["store-pos"]
    send(db, settings, web, identify("01T10:00:00", "u1", name="Jon"))
    send(db, settings, pos, identify("02T10:00:00", "u1", name="John"))
    send(db, settings, web, identify("03T10:00:00", "u1", name="Jon"))
    send(db, settings, web, identify("01T10:00:00", "u1", name="Jon"))
    send(db, settings, pos, identify("04T10:00:00", "u1", name="John"))
    customer = lookup_profile(db, "user_id", "u1")
    with db.write() as session:  # as a profile written before counts were kept stored it
        row = session.get(Profile, customer)
        assert row is not None
        legacy = {key: meta[:2] for key, meta in row.trait_meta.items()}
        session.execute(update(Profile).where(Profile.id == customer).values(trait_meta=legacy))
    assert shown(db, customer, "name") == ("John", "store-pos", "2026-01-04T10:00:00Z", "recent", None)

    rules(db, {"name": "frequent"})
    assert recompute_golden(db).changed == 1
    # History kept Jon twice (its third message repeated the shown value, which is no history) and John
    # twice: a tie, which the latest wins. Counted from the start, Jon would have won 3 to 2.
    assert shown(db, customer, "name") == ("John", "store-pos", "2026-01-04T10:00:00Z", "frequent", 2)
    assert [(o["value"], o["count"]) for o in profile_view(db, customer)["trait_alternatives"]["name"]] == [
        ("Jon", 2)
    ]


def test_the_rules_are_checked_naming_the_field(db: Database, sources: dict[str, Any]) -> None:
    def refused(value: Any) -> str:
        with pytest.raises(Invalid) as error:
            set_golden_rules(db, value, user_id=None, now=NOW)
        assert error.value.message.startswith(f"{error.value.details['field']}: ")
        return str(error.value.details["field"])

    assert refused({"rules": {"email": "newest"}}) == "rules.email"
    assert refused({"rules": {" ": "frequent"}}) == "rules"
    assert refused({"rules": ["email"]}) == "rules"
    assert refused({"rules": {"email": "trusted"}}) == "source_trust"
    assert refused({"source_trust": ["website", "store-pos", "website"]}) == "source_trust[2]"
    assert refused({"source_trust": ["store-pso"]}) == "source_trust[0]"
    assert refused({"source_trust": "website"}) == "source_trust"
    assert refused({"rules": {}, "default": "frequent"}) == "default"
    assert refused("frequent") == "rules"
    assert get_golden_rules(db).updated_at is None  # nothing was saved
    saved = check_rules({"rules": {"email": "recent", "name": "frequent"}, "source_trust": [" website "]})
    assert saved.as_json() == {"rules": {"name": "frequent"}, "source_trust": ["website"]}


def test_the_rest_api_is_for_admins_and_audited(
    db: Database, sources: dict[str, Any], http: httpx.Client
) -> None:
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'agent@example.com', 'agent')}"}
    body = {"rules": {"email": "trusted", "name": "frequent"}, "source_trust": ["store-pos", "website"]}
    assert http.get("/api/v1/golden-record").status_code == 401
    assert http.get("/api/v1/golden-record", headers=agent).status_code == 403
    assert http.put("/api/v1/golden-record", json=body, headers=agent).status_code == 403
    empty = http.get("/api/v1/golden-record", headers=admin).json()
    assert empty == {"rules": {}, "source_trust": [], "updated_at": None, "updated_by": None}

    saved = http.put("/api/v1/golden-record", json=body, headers=admin)
    assert saved.status_code == 200, saved.text
    assert {k: saved.json()[k] for k in ("rules", "source_trust")} == body
    assert saved.json()["updated_by"] is not None and saved.json()["updated_at"].endswith("Z")
    assert http.get("/api/v1/golden-record", headers=admin).json() == saved.json()
    bad = http.put("/api/v1/golden-record", json={"rules": {"email": "oldest"}}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "rules.email"}
    typed = http.put("/api/v1/golden-record", json={"source_trust": "website"}, headers=admin)
    assert typed.status_code == 400 and typed.json()["error"]["details"][0]["field"] == "source_trust"
    [entry] = [e for e in search_audit(db, action="change") if e.object_id == GOLDEN_RULES_KEY]
    assert entry.user_email == "admin@example.com"
    assert entry.details["rules"] == body["rules"] and entry.details["via"] == "api"


def test_the_settings_page_is_for_admins(db: Database, sources: dict[str, Any], http: httpx.Client) -> None:
    make_token(db)
    make_token(db, "agent@example.com", "agent")
    sign_in(http, "agent@example.com")
    assert http.get("/settings/golden-record").status_code == 403
    forged = http.post(
        "/settings/golden-record",
        data={"csrf": csrf_of(http.get("/customers").text), "key": "name", "rule": "frequent"},
    )
    assert forged.status_code == 403 and get_golden_rules(db).rules.rules == {}
    http.cookies.clear()

    sign_in(http)
    page = http.get("/settings/golden-record")
    assert page.status_code == 200 and "Source trust order" in page.text and "store-pos" in page.text
    form = {"csrf": csrf_of(page.text), "source_trust": "store-pos\nwebsite\n"}
    rows = {"key": ["email", "name", ""], "rule": ["trusted", "frequent", "recent"]}  # and a blank row
    saved = http.post("/settings/golden-record", data={**form, **rows})
    assert saved.status_code == 303 and saved.headers["location"] == "/settings/golden-record?done=saved"
    stored = get_golden_rules(db).rules
    assert stored.as_json() == {
        "rules": {"email": "trusted", "name": "frequent"},
        "source_trust": ["store-pos", "website"],
    }
    again = http.get("/settings/golden-record?done=saved").text
    assert "Rules saved." in again and 'value="name"' in again
    wrong = http.post(
        "/settings/golden-record",
        data={
            "csrf": form["csrf"],
            "source_trust": "store-pos\nstore-pos",
            "key": "name",
            "rule": "frequent",
        },
    )
    assert wrong.status_code == 400 and "source_trust[1]: store-pos is listed twice" in wrong.text
    assert get_golden_rules(db).rules == stored
    [entry] = [e for e in search_audit(db, action="change") if e.object_id == GOLDEN_RULES_KEY]
    assert entry.details["via"] == "web" and entry.user_email == "admin@example.com"


def test_the_360_page_shows_the_rule_and_the_other_values(
    db: Database, settings: Settings, sources: dict[str, Any], http: httpx.Client
) -> None:
    make_token(db)
    rules(db, {"name": "frequent"})
    web, pos = sources["website"], sources["store-pos"]
    send(db, settings, web, identify("01T10:00:00", "u1", name="Jon", plan="free"))
    send(db, settings, pos, identify("02T10:00:00", "u1", name="John", plan="pro"))
    send(db, settings, pos, identify("03T10:00:00", "u1", name="John"))
    send(db, settings, web, identify("04T10:00:00", "u1", name="J."))
    customer = lookup_profile(db, "user_id", "u1")
    sign_in(http)
    page = http.get(f"/customers/{customer}").text
    traits = page[page.index("<h2>Traits</h2>") : page.index("<h2>Channels</h2>")]
    name = traits[traits.index("<dt>name</dt>") : traits.index("</dd>", traits.index("<dt>name</dt>"))]
    assert name.split("<small")[0].endswith("John ")
    assert "seen 2 times" in name and "2 other values" in name and "shown by the rule: most frequent" in name
    assert "J. <small" in name and "Jon <small" in name and "seen 1 time" in name
    assert 'href="/settings/golden-record"' in name
    plan = traits[traits.index("<dt>plan</dt>") : traits.index("</dd>", traits.index("<dt>plan</dt>"))]
    assert "1 earlier value" in plan and "shown by the rule: most recent" in plan and "seen" not in plan


def test_cli_recomputes_with_a_summary(
    db: Database, settings: Settings, sources: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        web, pos = sources["website"], sources["store-pos"]
        send(db, settings, web, identify("01T10:00:00", "u1", plan="free"), identify("01T10:00:00", "u2"))
        send(db, settings, pos, identify("02T10:00:00", "u1", plan="pro"))
        rules(db, {"plan": "trusted"}, ["website"])
        done = CliRunner().invoke(app, ["profiles", "recompute-traits", "--batch-size", "1"])
        assert done.exit_code == 0, done.output
        assert "2 profiles looked at, 1 changed" in done.output
        assert shown(db, lookup_profile(db, "user_id", "u1"), "plan")[:2] == ("free", "website")
        [entry] = [
            e for e in search_audit(db, action="change") if e.details.get("action") == "recompute_traits"
        ]
        assert entry.details["changed"] == 1 and entry.at <= utcnow()
    finally:
        get_settings.cache_clear()
