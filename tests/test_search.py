"""Customer search as a person types it: name fragments (Latin and Chinese), emails, phone digits.

Runs on both databases, so the trigram indexes of each (pg_trgm, SQLite FTS5 kept up by triggers) are
exercised through the real write path: new customers, renamed ones, merges and odd characters.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.factories import SYSTEM, make_source, send
from threadline.config import Settings
from threadline.ingest import SourceInfo
from threadline.profiles import CustomerQuery, list_customers
from threadline.storage import Database

NOW = datetime(2026, 11, 23, 12, 0)


def identify(user_id: str, **traits: str) -> dict[str, object]:
    return {"type": "identify", "userId": user_id, "traits": traits, "messageId": f"m-{user_id}-{traits}"}


@pytest.fixture
def web(db: Database, settings: Settings) -> SourceInfo:
    source = make_source(db)
    send(
        db,
        settings,
        source,
        identify("u1", name="Wang Xiaoming", email="wang.xm@example.com", phone="+86 138 0013 8000"),
        identify("u2", name="张伟明", email="zwm@example.cn", phone="+86 139 1234 5678"),
        identify("u3", name="Zhang Li", email="li.zhang@example.com", phone="(415) 555-0199"),
        identify("u4", name="100% Cotton_Shop", email="shop@example.com"),
    )
    return source


def names(db: Database, q: str) -> list[str]:
    rows, total = list_customers(db, SYSTEM, CustomerQuery(q=q, sort="name"), region="US", now=NOW)
    assert total == len(rows)
    return [r["display_name"] for r in rows]


def test_name_fragments_match_anywhere_in_the_name(db: Database, web: SourceInfo) -> None:
    assert names(db, "ang") == ["Wang Xiaoming", "Zhang Li"]
    assert names(db, "XIAO") == ["Wang Xiaoming"]
    assert names(db, "ng l") == ["Zhang Li"]
    assert names(db, "张伟明") == ["张伟明"]
    assert names(db, "伟明") == ["张伟明"]  # two characters: shorter than a trigram, still found
    assert names(db, "张") == ["张伟明"]
    assert names(db, "nobody") == []


def test_identifiers_and_phone_digits(db: Database, web: SourceInfo) -> None:
    assert names(db, "wang.x") == ["Wang Xiaoming"]
    assert names(db, "ZWM@EXAMPLE.CN") == ["张伟明"]
    assert names(db, "8000") == ["Wang Xiaoming"]  # the end of +8613800138000
    assert names(db, "1234 5678") == ["张伟明"]
    assert names(db, "555-0199") == ["Zhang Li"]
    assert names(db, "4155550199") == ["Zhang Li"]


def test_typed_wildcards_and_quotes_are_plain_characters(db: Database, web: SourceInfo) -> None:
    assert names(db, "100%") == ["100% Cotton_Shop"]
    assert names(db, "n_s") == ["100% Cotton_Shop"]
    assert names(db, "%") == ["100% Cotton_Shop"]
    assert names(db, "_") == ["100% Cotton_Shop"]
    assert names(db, 'a"b') == []
    assert names(db, "a' OR 1=1 --") == []


def test_a_new_name_replaces_the_old_one_in_search(db: Database, settings: Settings, web: SourceInfo) -> None:
    send(db, settings, web, {**identify("u3", name="Li Zhang-Meyer"), "messageId": "rename"})
    assert names(db, "zhang-mey") == ["Li Zhang-Meyer"]
    assert names(db, "Zhang Li") == []
    assert names(db, "ang") == ["Li Zhang-Meyer", "Wang Xiaoming"]


def test_a_merged_away_profile_is_found_as_its_survivor(
    db: Database, settings: Settings, web: SourceInfo
) -> None:
    # An anonymous visitor with a name of their own, then identified as u1: two profiles become one.
    send(
        db,
        settings,
        web,
        {"type": "identify", "anonymousId": "a-9", "traits": {"name": "Xiaoming W."}, "messageId": "anon"},
        {"type": "identify", "anonymousId": "a-9", "userId": "u1", "messageId": "link"},
    )
    rows, total = list_customers(db, SYSTEM, CustomerQuery(q="xiaoming"), region="US", now=NOW)
    assert total == 1
    assert rows[0]["email"] == "wang.xm@example.com"


def test_sqlite_search_tables_stay_in_step_with_their_tables(
    db: Database, settings: Settings, web: SourceInfo
) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's trigram indexes are ordinary indexes of the tables")
    send(db, settings, web, {**identify("u1", name="Wang X."), "messageId": "again"})
    with db.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM identities WHERE value = '+14155550199'")
        # FTS5 compares its index with the content table and raises when they differ.
        connection.exec_driver_sql(
            "INSERT INTO profile_name_search (profile_name_search, rank) VALUES ('integrity-check', 1)"
        )
        # phone_search indexes only the phone rows of identities, which that check cannot know: each phone
        # identity must be found by its own number, and the deleted one by nothing.
        phones = connection.exec_driver_sql("SELECT id, value FROM identities WHERE kind = 'phone'").all()
        for identity_id, value in phones:
            found = connection.exec_driver_sql(
                "SELECT rowid FROM phone_search WHERE phone_search MATCH ?", (f'"{value}"',)
            ).scalars()
            assert list(found) == [identity_id]
        gone = "SELECT count(*) FROM phone_search WHERE phone_search MATCH '\"4155550199\"'"
        assert connection.exec_driver_sql(gone).scalar() == 0


def test_the_walk_for_broad_searches_finds_the_same(
    db: Database, web: SourceInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many matches make SQLite walk the list's index instead of fetching each match: same answers."""
    from threadline.profiles import search

    expected = {q: names(db, q) for q in ("ang", "伟明", "wang.x", "8000", "555-0199", "100%", "nobody")}
    monkeypatch.setattr(search, "BROAD", 0)
    assert {q: names(db, q) for q in expected} == expected


def test_a_broad_search_counts_up_to_its_cap(
    db: Database, web: SourceInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadline.profiles import customers

    monkeypatch.setattr(customers, "SEARCH_COUNT_CAP", 1)
    rows, total = list_customers(db, SYSTEM, CustomerQuery(q="n"), region="US", now=NOW)
    assert total == 2 and len(rows) == 3  # "more than 1"; the page still shows every match
    assert customers.count_cap(CustomerQuery(q="n")) == 1
    assert customers.count_cap(CustomerQuery()) == customers.COUNT_CAP
