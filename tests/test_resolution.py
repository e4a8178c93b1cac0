"""Batch identity resolution end to end: profiles that share no identifier are found, merged when sure,
queued when likely, decided by a steward (page and API), never suggested again once rejected, and
resumable; all within data scopes. Real SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from tests.factories import SYSTEM, make_source, make_token, profile_view, send
from threadline.accounts import viewer_for
from threadline.config import Settings
from threadline.errors import Forbidden
from threadline.ingest import SourceInfo
from threadline.resolution import (
    MERGED,
    REJECTED,
    Thresholds,
    approve,
    get_candidate,
    get_thresholds,
    list_candidates,
    record_of,
    reject,
    resume_decisions,
    run_resolution,
    set_thresholds,
)
from threadline.storage import Database
from threadline.storage.models import MatchCandidate, ResolutionRun, User

NOW = datetime(2026, 11, 23, 12, 0)
PEOPLE = [
    # (userId, name, birthday, street, postcode, city, email, phone)
    (
        "u1",
        "Katherine Johnson",
        "1980-08-26",
        "12 Orchard Lane",
        "02139",
        "Cambridge",
        "kj@ex.com",
        "+16175550101",
    ),
    ("u2", "Marcus Aurelius", "1975-04-26", "3 Via Appia", "00184", "Roma", "ma@ex.com", "+390655501234"),
    ("u3", "Grace Hopper", "1906-12-09", "99 Navy Road", "10001", "New York", "gh@ex.com", "+12125550177"),
    ("u4", "Alan Turing", "1912-06-23", "2 Bletchley Park", "MK3 6EB", "Milton Keynes", "at@ex.com", None),
    ("u5", "Ada Lovelace", "1815-12-10", "10 St James Square", "SW1Y 4LE", "London", "al@ex.com", None),
    ("u6", "Linus Pauling", "1901-02-28", "500 Science Way", "97331", "Corvallis", "lp@ex.com", None),
]
# The same people again, from another channel, with typos and new contact details: no shared identifier.
TWINS = [
    (
        "t1",
        "Katherine Jonson",
        "1980-08-26",
        "12 Orchard Ln",
        "02139",
        "Cambridge",
        "kathy.j@other.org",
        None,
    ),
    ("t3", "Grace Hoper", "1906-12-09", "99 Navy Rd", "10001", "New York", "amazing.grace@other.org", None),
]


def identify(person: tuple[str, ...]) -> dict[str, object]:
    user_id, name, birthday, street, postcode, city, email, phone = person
    first, last = name.split(" ", 1)
    traits: dict[str, object] = {
        "name": name,
        "firstName": first,
        "lastName": last,
        "birthday": birthday,
        "email": email,
        "address": {"street": street, "postalCode": postcode, "city": city},
    }
    if phone:
        traits["phone"] = phone
    if user_id.startswith("t"):  # the store knows them by email only (two user ids would be protected)
        return {"type": "identify", "traits": traits, "messageId": f"id-{user_id}"}
    return {"type": "identify", "userId": user_id, "traits": traits, "messageId": f"id-{user_id}"}


def background(count: int) -> list[dict[str, object]]:
    """Other customers, one record each, so the model learns how often fields agree by chance."""
    from threadline.resolution.synthetic import generate

    table = generate(count, seed=5, easy=True).to_pylist()
    once = {p for p in (r["person"] for r in table) if sum(1 for r in table if r["person"] == p) == 1}
    messages: list[dict[str, object]] = []
    for n, row in enumerate(r for r in table if r["person"] in once):
        traits = {
            "firstName": row["first_name"],
            "lastName": row["last_name"],
            "name": row["full_name"],
            "birthday": row["birth_date"],
            "email": row["email"],
            "address": {"street": row["street"], "postalCode": row["postcode"], "city": row["city"]},
        }
        messages.append(
            {
                "type": "identify",
                "userId": f"bg-{n}",
                "traits": {k: v for k, v in traits.items() if v},
                "messageId": f"bg-{n}",
            }
        )
    return messages


@pytest.fixture
def people(db: Database, settings: Settings) -> SourceInfo:
    web = make_source(db)
    store = make_source(db, "store-pos", "store")
    send(db, settings, web, *background(400))
    send(db, settings, web, *[identify(p) for p in PEOPLE])
    send(db, settings, store, *[identify(p) for p in TWINS])
    return web


def clock() -> datetime:
    return NOW


def profile_of(db: Database, user_id: str) -> str:
    from tests.factories import lookup_profile

    if user_id.startswith("t"):
        email = next(p[6] for p in TWINS if p[0] == user_id)
        return lookup_profile(db, "email", email)
    return lookup_profile(db, "user_id", user_id)


def test_a_profile_becomes_a_record_in_either_spelling_of_its_traits() -> None:
    segment = record_of(
        "p1", {"firstName": "Ada", "address": {"postalCode": "SW1", "city": "London"}}, "Ada L"
    )
    snake = record_of(
        "p2",
        {"first_name": "Ada", "address": {"postal_code": "SW1"}, "birthday": "1815-12-10T00:00:00Z"},
        None,
    )
    assert segment["first_name"] == snake["first_name"] == "Ada"
    assert segment["postcode"] == snake["postcode"] == "SW1"
    assert segment["full_name"] == "Ada L" and segment["city"] == "London"
    assert snake["birth_date"] == "1815-12-10"


def test_sure_matches_merge_and_likely_ones_wait_for_review(db: Database, people: SourceInfo) -> None:
    # Low thresholds queue everything the model finds; nothing merges on its own.
    run = run_resolution(db, now=clock, thresholds=Thresholds(auto_merge=1.0, review=0.5))
    assert run.status == "done" and run.profiles > 100 and run.merged == 0
    pending, _ = list_candidates(db, SYSTEM)
    pairs = {frozenset((c.left_id, c.right_id)) for c in pending}
    assert frozenset((profile_of(db, "u1"), profile_of(db, "t1"))) in pairs
    assert frozenset((profile_of(db, "u3"), profile_of(db, "t3"))) in pairs
    ours = {profile_of(db, p[0]) for p in PEOPLE + TWINS}
    assert {c.left_id for c in pending} & ours and len(
        [c for c in pending if {c.left_id, c.right_id} <= ours]
    ) == 2
    # The evidence adds up: prior + each comparison's weight = the pair's match weight.
    candidate = pending[0]
    weights = [c["weight"] for c in candidate.evidence["comparisons"]]
    assert candidate.evidence["prior"] + sum(weights) == pytest.approx(candidate.match_weight, abs=0.01)

    # With the default thresholds, a clear twin merges on its own, through the lineage.
    run = run_resolution(db, now=clock, thresholds=Thresholds(auto_merge=0.5, review=0.4))
    assert run.merged == 2
    merged_view = profile_view(db, profile_of(db, "u1"))
    [lineage] = [m for m in merged_view["merged_from"] if m["trigger"] == "resolver"]
    assert lineage["rule"] == "auto-merge at match probability >= 0.5"
    assert profile_of(db, "t1") == profile_of(db, "u1")
    assert list_candidates(db, SYSTEM, status=MERGED)[1] == 2


def test_a_rejected_pair_is_never_suggested_again(db: Database, people: SourceInfo) -> None:
    loose = Thresholds(auto_merge=1.0, review=0.5)
    run_resolution(db, now=clock, thresholds=loose)
    pending, _ = list_candidates(db, SYSTEM)
    reject(db, SYSTEM, pending[0].id, now=NOW)
    run_resolution(db, now=clock, thresholds=Thresholds(auto_merge=0.5, review=0.4))
    [rejected] = list_candidates(db, SYSTEM, status=REJECTED)[0]
    assert rejected.id == pending[0].id
    assert profile_of(db, "u1") != profile_of(db, "t1") or profile_of(db, "u3") != profile_of(db, "t3")
    assert list_candidates(db, SYSTEM)[1] == 0


def test_an_interrupted_run_resumes_its_merges(db: Database, people: SourceInfo) -> None:
    thresholds = Thresholds(auto_merge=0.5, review=0.4)
    run_resolution(db, now=clock, thresholds=Thresholds(auto_merge=1.0, review=0.4))
    # As if the process died while deciding: the pairs are stored, nothing merged yet.
    with db.write() as session:
        session.execute(
            update(ResolutionRun).values(
                status="running", stage="decide", thresholds={"auto_merge": 0.5, "review": 0.4}
            )
        )
    run = resume_decisions(db, now=clock)
    assert run.status == "done" and run.merged == 2
    assert profile_of(db, "t3") == profile_of(db, "u3")
    with pytest.raises(Exception, match="no unfinished"):
        resume_decisions(db, now=clock)
    assert thresholds.checked() == thresholds


def test_thresholds_are_checked_and_kept_per_workspace(db: Database) -> None:
    assert get_thresholds(db) == Thresholds(0.99, 0.80)
    set_thresholds(db, Thresholds(0.995, 0.7), user_id=None, now=NOW)
    assert get_thresholds(db) == Thresholds(0.995, 0.7)
    with pytest.raises(Exception, match="review: must not be above auto_merge"):
        set_thresholds(db, Thresholds(0.8, 0.9), user_id=None, now=NOW)
    with pytest.raises(Exception, match="auto_merge: must be above 0"):
        set_thresholds(db, Thresholds(1.5, 0.9), user_id=None, now=NOW)


def test_stewards_decide_only_within_their_scope(
    db: Database, settings: Settings, people: SourceInfo
) -> None:
    make_token(db, "agent@example.com", "agent")
    make_token(db, "manager@example.com", "manager")
    with db.read() as session:
        ids = dict(session.execute(select(User.email, User.id)).all())
    agent = viewer_for(db, ids["agent@example.com"], "agent")
    run_resolution(db, now=clock, thresholds=Thresholds(auto_merge=1.0, review=0.5))
    assert list_candidates(db, agent)[1] == 0  # the agent owns none of these customers
    candidate = list_candidates(db, SYSTEM)[0][0]
    with pytest.raises(Exception, match="no match candidate"):
        get_candidate(db, agent, candidate.id)
    from threadline.profiles import assign_owner

    assign_owner(db, SYSTEM, [candidate.left_id, candidate.right_id], ids["agent@example.com"])
    assert list_candidates(db, agent)[1] == 1
    merge_id = approve(db, agent, candidate.id, now=NOW)
    assert merge_id is not None
    with db.read() as session:
        row = session.get(MatchCandidate, candidate.id)
        assert row is not None and row.status == MERGED and row.decided_by == ids["agent@example.com"]
    analyst = viewer_for(db, ids["manager@example.com"], "analyst")
    with pytest.raises(Exception, match="edit permission"):
        reject(db, analyst, list_candidates(db, SYSTEM)[0][0].id, now=NOW)
    # An analyst sees personal data masked, so does not review pairs of it at all.
    with pytest.raises(Forbidden):
        list_candidates(db, analyst)
    with pytest.raises(Forbidden):
        get_candidate(db, analyst, candidate.id)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_review_pages_and_api(
    http: httpx.Client, db: Database, settings: Settings, people: SourceInfo
) -> None:
    token = make_token(db, "steward@example.com", "admin")
    run_resolution(db, now=clock, thresholds=Thresholds(auto_merge=1.0, review=0.5))
    http.post(
        "/login",
        data={
            "email": "steward@example.com",
            "password": "correct horse battery",
            "csrf": _csrf(http.get("/login").text),
        },
    )
    queue = http.get("/duplicates")
    assert queue.status_code == 200 and "Katherine" in queue.text and "Grace" in queue.text
    first = re.search(r'href="/duplicates/(\d+)"', queue.text)
    assert first
    pair = http.get(f"/duplicates/{first.group(1)}")
    assert pair.status_code == 200 and "Evidence" in pair.text and "waterfall" in pair.text
    decided = http.post(f"/duplicates/{first.group(1)}/approve", data={"csrf": _csrf(pair.text)})
    assert decided.status_code == 303
    assert re.match(r"/duplicates/\d+\?done=approve", decided.headers["location"])
    # The other pair, through the REST API: rejected.
    api = {"Authorization": f"Bearer {token}"}
    remaining = http.get("/api/v1/match-candidates", headers=api).json()
    assert remaining["total"] == 1
    other = remaining["candidates"][0]["id"]
    shown = http.get(f"/api/v1/match-candidates/{other}", headers=api).json()
    assert shown["left"]["id"] == shown["left_id"] and shown["evidence"]["comparisons"]
    answer = http.post(f"/api/v1/match-candidates/{other}/decision", json={"decision": "reject"}, headers=api)
    assert answer.status_code == 200 and answer.json()["merge_id"] is None
    again = http.post(f"/api/v1/match-candidates/{other}/decision", json={"decision": "reject"}, headers=api)
    assert again.status_code == 409
    bad = http.post(f"/api/v1/match-candidates/{other}/decision", json={"decision": "maybe"}, headers=api)
    assert bad.status_code == 400 and "decision" in bad.text
    assert http.get("/api/v1/resolution", headers=api).json()["thresholds"] == {
        "auto_merge": 0.99,
        "review": 0.8,
    }
    assert (
        http.put(
            "/api/v1/resolution/thresholds", json={"auto_merge": 0.97, "review": 0.75}, headers=api
        ).status_code
        == 200
    )
    assert get_thresholds(db) == Thresholds(0.97, 0.75)
    # The approved merge shows on the 360 page, by a steward.
    merged = http.get(f"/customers/{profile_of(db, 'u1')}")
    assert "steward@example.com" in merged.text or "steward" in merged.text.lower()


def test_a_run_that_fails_says_so(db: Database, people: SourceInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline.resolution import runs

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("duckdb ran out of memory")

    monkeypatch.setattr(runs, "score_pairs", broken)
    with pytest.raises(RuntimeError):
        run_resolution(db, now=clock)
    with db.read() as session:
        row = session.scalars(select(ResolutionRun)).one()
    assert row.status == "failed" and row.stage == "score" and "out of memory" in (row.error or "")
    assert row.finished_at == NOW or row.finished_at == NOW + timedelta(0)
