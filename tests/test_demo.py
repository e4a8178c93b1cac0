"""The demo data set: multi-channel histories that stitch, fuzzy twins that do not, idempotent re-runs."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from threadline.cli.main import app
from threadline.config import Settings, get_settings
from threadline.demo import generate_demo
from threadline.errors import Invalid
from threadline.storage import Database
from threadline.storage.models import Event, Identity, Profile, Source

CJK = re.compile(r"[\u4e00-\u9fff]")


def live_profiles(db: Database) -> list[Profile]:
    with db.read() as session:
        return list(session.scalars(select(Profile).where(Profile.merged_into.is_(None))))


def identities_by_profile(db: Database) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    with db.read() as session:
        rows = session.execute(select(Identity.kind, Identity.value, Identity.profile_id))
        for kind, value, profile_id in rows:
            found[profile_id].add((kind, value))
    return found


def count_events(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def test_channels_stitch_into_one_profile_per_person(db: Database, settings: Settings) -> None:
    report = generate_demo(db, settings, customers=30, seed=3, locale="en_US", progress=False)

    assert report.rejected == 0
    assert report.stored == report.messages == count_events(db)
    with db.read() as session:
        sources = {name: channel for name, channel in session.execute(select(Source.name, Source.channel))}
    assert sources == {
        "website": "web",
        "mobile-app": "app",
        "store-pos": "store",
        "call-center": "call_center",
        "email": "email",
        "sms": "sms",
        "social": "social",
        "chat": "chat",
    }
    profiles = live_profiles(db)
    identities = identities_by_profile(db)
    assert len(profiles) == report.profiles
    assert len(profiles) < sum(map(len, identities.values())) == report.identifiers
    assert max(len(p.channels) for p in profiles) >= 3
    # A browser's anonymous id, the app's device, the account, the till's phone + e-mail and the call
    # center's phone: one person, one profile.
    journeys = [p for p in profiles if {"web", "app", "store", "call_center"} <= p.channels.keys()]
    assert journeys
    kinds = {kind for kind, _ in identities[journeys[0].id]}
    assert {"anonymous_id", "device_id", "user_id", "email", "phone"} <= kinds
    assert journeys[0].display_name


def test_fuzzy_duplicates_stay_separate_profiles(db: Database, settings: Settings) -> None:
    report = generate_demo(db, settings, customers=40, seed=5, locale="en_US", progress=False)

    same_person: dict[tuple[str, str], list[Profile]] = defaultdict(list)
    for profile in live_profiles(db):
        traits = profile.traits
        if "birthday" in traits:
            same_person[(traits["birthday"], traits["address"]["postal_code"])].append(profile)
    twins = [group for group in same_person.values() if len(group) > 1]
    assert report.fuzzy_duplicates >= 1
    assert len(twins) == report.fuzzy_duplicates
    identities = identities_by_profile(db)
    for first, second in twins:
        assert first.display_name != second.display_name
        assert first.traits["email"] != second.traits["email"]
        assert not identities[first.id] & identities[second.id]


def test_zh_cn_names_are_chinese_and_phones_are_e164(db: Database, settings: Settings) -> None:
    generate_demo(db, settings, customers=25, seed=7, locale="zh_CN", progress=False)

    names = [p.display_name for p in live_profiles(db) if p.display_name]
    assert names
    # Fuzzy twins may be written in pinyin; everyone else has a name in characters.
    assert sum(1 for name in names if CJK.search(name)) >= len(names) - 2
    with db.read() as session:
        phones = list(session.scalars(select(Identity.value).where(Identity.kind == "phone")))
    assert phones
    assert all(re.fullmatch(r"\+861\d{10}", phone) for phone in phones)


def test_running_the_same_seed_again_stores_nothing_new(db: Database, settings: Settings) -> None:
    first = generate_demo(db, settings, customers=15, seed=11, locale="en_US", progress=False)
    events = count_events(db)

    again = generate_demo(db, settings, customers=15, seed=11, locale="en_US", progress=False)

    assert count_events(db) == events == first.stored
    assert again.stored == 0
    assert again.already_stored == again.messages == first.messages
    assert again.profiles == first.profiles


def test_bad_arguments_are_refused(db: Database, settings: Settings) -> None:
    with pytest.raises(Invalid, match="locale"):
        generate_demo(db, settings, customers=10, seed=1, locale="fr_FR", progress=False)
    with pytest.raises(Invalid, match="customers"):
        generate_demo(db, settings, customers=0, seed=1, locale="en_US", progress=False)
    assert count_events(db) == 0


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", f"sqlite:///{path}")
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_cli_loads_the_demo_and_reports_one_line(sqlite_env: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--customers", "12", "--seed", "2", "--locale", "zh_CN"])

    assert result.exit_code == 0, result.output
    assert "12 customers" in result.output
    assert "profiles" in result.output
    database = Database(f"sqlite:///{sqlite_env}")
    try:
        assert count_events(database) > 0
    finally:
        database.dispose()


def test_cli_names_a_bad_locale(sqlite_env: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--locale", "xx"])

    assert result.exit_code == 1
    assert "error: locale: must be one of en_US, zh_CN" in result.output
