"""Field-level encryption of sensitive traits: no table holds the plaintext, reads open it for the pii
permission only, golden-record counts still work, and keys rotate."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import LiveServer
from tests.factories import lookup_profile, make_source, make_token, profile_view, send
from threadline.cli.main import app as cli
from threadline.config import Settings, get_settings
from threadline.privacy import CannotDecrypt, TraitCipher, disclosure_for, rotate_keys
from threadline.storage import Database
from threadline.storage.models import Base

OLD_KEY = "old-key-" + "o" * 40
NEW_KEY = "new-key-" + "n" * 40
BIRTHDAY, NATIONAL_ID = "1990-05-01", "310101199005014321"


def every_stored_text(db: Database) -> str:
    """Every row of every table, as text: what a copy of the database would show."""
    parts = []
    with db.read() as session:
        for table in Base.metadata.sorted_tables:
            parts += [repr(tuple(row)) for row in session.execute(select(table))]
    return "\n".join(parts)


@pytest.fixture
def encrypting(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"encrypted_traits": ["birthday", "national_id"], "encryption_keys": [OLD_KEY]}
    )


@pytest.fixture
def customer(db: Database, encrypting: Settings) -> str:
    web, store = make_source(db, "website", "web"), make_source(db, "store-pos", "store")
    identify = {"type": "identify", "userId": "u-1"}
    send(
        db, encrypting, web, {**identify, "traits": {"name": "Ann Lee", "birthday": BIRTHDAY, "plan": "pro"}}
    )
    send(db, encrypting, store, {**identify, "traits": {"birthday": BIRTHDAY}})
    send(
        db,
        encrypting,
        store,
        {"type": "track", "userId": "u-1", "event": "KYC Done", "properties": {"national_id": NATIONAL_ID}},
        {"type": "page", "userId": "u-1", "context": {"traits": {"birthday": BIRTHDAY}}},
        # Rejected (bad email): the quarantine keeps the message, with the birthday encrypted too.
        {"type": "identify", "userId": "u-1", "traits": {"email": "not-an-email", "birthday": BIRTHDAY}},
    )
    return lookup_profile(db, "user_id", "u-1")


def test_cipher_is_deterministic_bound_to_the_trait_and_keyed() -> None:
    cipher = TraitCipher([OLD_KEY], ["birthday", "code"])
    sealed = cipher.seal("birthday", BIRTHDAY)
    assert sealed.startswith("enc:v1:") and BIRTHDAY not in sealed
    assert cipher.seal("birthday", BIRTHDAY) == sealed  # equal values stay equal
    assert cipher.seal("plan", "pro") == "pro"  # not listed
    assert cipher.open("birthday", sealed) == BIRTHDAY
    assert cipher.open("code", cipher.seal("code", {"a": [1, 2]})) == {"a": [1, 2]}  # any JSON value
    with pytest.raises(CannotDecrypt):
        cipher.open("code", sealed)  # moved to another trait
    with pytest.raises(CannotDecrypt):
        TraitCipher([NEW_KEY], ["birthday"]).open("birthday", sealed)  # its key is gone


def test_no_table_holds_the_plaintext(db: Database, customer: str) -> None:
    stored = every_stored_text(db)
    assert BIRTHDAY not in stored and NATIONAL_ID not in stored
    assert "Ann Lee" in stored and "enc:v1:" in stored  # the rest is stored as before


def test_equal_values_still_count_as_equal(db: Database, customer: str) -> None:
    view = profile_view(db, customer)
    # Two messages, two sources, one value: counted twice, and the second is not a change (no history).
    assert view["trait_sources"]["birthday"]["count"] == 3
    assert view["trait_alternatives"].get("birthday", []) == []


@pytest.fixture
def api(encrypting: Settings, db: Database) -> Iterator[httpx.Client]:
    with LiveServer(encrypting, db) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def test_reads_open_values_for_the_pii_permission_only(
    api: httpx.Client, db: Database, customer: str
) -> None:
    admin, analyst = make_token(db, "admin@example.com", "admin"), make_token(db, "an@example.com", "analyst")

    def read(token: str, path: str) -> httpx.Response:
        return api.get(path, headers={"Authorization": f"Bearer {token}"})

    profile = read(admin, f"/api/v1/profiles/{customer}").json()
    assert profile["traits"]["birthday"] == BIRTHDAY and profile["traits"]["plan"] == "pro"
    events = read(admin, f"/api/v1/profiles/{customer}/events").json()["events"]
    assert {"national_id": NATIONAL_ID} in [e["properties"] for e in events]
    history = read(admin, f"/api/v1/profiles/{customer}/traits/history?key=birthday").json()["history"]
    assert [h["value"] for h in history] == [BIRTHDAY]
    for path in (f"/api/v1/profiles/{customer}", f"/api/v1/profiles/{customer}/events"):
        masked = read(analyst, path)
        assert BIRTHDAY not in masked.text and NATIONAL_ID not in masked.text and "enc:v1" not in masked.text
    assert read(analyst, f"/api/v1/profiles/{customer}").json()["traits"]["birthday"] == "****"


def test_encrypted_traits_need_a_key_and_cannot_be_identifiers(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="THREADLINE_ENCRYPTION_KEYS is empty"):
        Settings(database_url=settings.database_url, encrypted_traits=["birthday"])
    with pytest.raises(ValidationError, match="shorter than 32"):
        Settings(encrypted_traits=["birthday"], encryption_keys=["short"])
    with pytest.raises(ValidationError, match="email, name cannot be encrypted"):
        Settings(encrypted_traits=["email", "name"], encryption_keys=[OLD_KEY])


def test_rotation_reencrypts_everything_and_the_old_key_can_go(
    db: Database, encrypting: Settings, customer: str
) -> None:
    old_id = TraitCipher([OLD_KEY], []).newest.id
    rotating = encrypting.model_copy(update={"encryption_keys": [NEW_KEY, OLD_KEY]})
    # A message between the key change and the rotation is sealed with the new key already.
    send(
        db,
        rotating,
        make_source(db, "app", "app"),
        {"type": "identify", "userId": "u-1", "traits": {"birthday": BIRTHDAY}},
    )
    report = rotate_keys(db, rotating, batch_size=2)  # small batches: the walk resumes across them
    assert report.rewritten["profiles"] == 1 and report.rewritten["trait_history"] == 1
    assert report.rewritten["events"] == 4 and report.rewritten["quarantine"] == 1
    stored = every_stored_text(db)
    assert f"enc:v1:{old_id}:" not in stored and BIRTHDAY not in stored
    assert sum(rotate_keys(db, rotating).rewritten.values()) == 0  # idempotent

    only_new = encrypting.model_copy(update={"encryption_keys": [NEW_KEY]})
    view = disclosure_for(only_new, reveal=True).profile(profile_view(db, customer))
    assert view["traits"]["birthday"] == BIRTHDAY
    assert view["trait_sources"]["birthday"]["count"] == 4  # still one value, counted across keys


def test_a_trait_added_later_is_encrypted_by_rotation(db: Database, settings: Settings) -> None:
    send(
        db, settings, make_source(db), {"type": "identify", "userId": "u-2", "traits": {"birthday": BIRTHDAY}}
    )
    assert BIRTHDAY in every_stored_text(db)
    later = settings.model_copy(update={"encrypted_traits": ["birthday"], "encryption_keys": [NEW_KEY]})
    rotate_keys(db, later)
    assert BIRTHDAY not in every_stored_text(db)
    view = disclosure_for(later, reveal=True).profile(profile_view(db, lookup_profile(db, "user_id", "u-2")))
    assert view["traits"]["birthday"] == BIRTHDAY


def test_threadline_privacy_rotate_keys(db: Database, encrypting: Settings, customer: str) -> None:
    env = {
        "THREADLINE_DATABASE_URL": encrypting.database_url,
        "THREADLINE_ENCRYPTED_TRAITS": "birthday,national_id",
        "THREADLINE_ENCRYPTION_KEYS": f"{NEW_KEY},{OLD_KEY}",
    }
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["privacy", "rotate-keys"], env=env)
        again = CliRunner().invoke(cli, ["privacy", "rotate-keys"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "profiles: 1 of 1 rows re-encrypted" in result.output
    assert "profiles: 0 of 1 rows re-encrypted" in again.output
    assert f"enc:v1:{TraitCipher([OLD_KEY], []).newest.id}:" not in every_stored_text(db)
