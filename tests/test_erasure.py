"""Erasure that sticks and the access export, on SQLite and PostgreSQL, through the real write path.

The proof is a byte search: after an erasure, neither the SQLite file (after a checkpoint and VACUUM)
nor a pg_dump of the PostgreSQL database holds the person's email, phone or name.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from tests.factories import lookup_profile, make_source, send
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.errors import NotFound
from threadline.identity import merge_profiles
from threadline.privacy import erase_person, export_person, set_erasure_policy
from threadline.privacy.personal_data import ERASED_PROFILE_ID, HOLDERS, NO_CUSTOMER_DATA
from threadline.storage import Database
from threadline.storage.models import (
    Attachment,
    Base,
    Conversation,
    ConversationMessage,
    Event,
    MatchCandidate,
    OutboundMessage,
    PrivacyRequest,
    Profile,
    QuarantinedMessage,
    SurveyResponse,
)

EMAIL = "zelda.quixote@example.org"
PHONE = "+14155550123"
NAME = "Zelda Quixote"
OTHER_EMAIL = "bob.other@example.net"


def load_person(db: Database, settings: Settings) -> tuple[str, str]:
    """Zelda on three channels (two profiles merged), with orders, a quarantined message, a resolver
    pair and a privacy request; Bob beside her. Returns (Zelda's profile, Bob's profile)."""
    web = make_source(db, "website", "web")
    store = make_source(db, "till", "store")
    send(db, settings, web, {"type": "page", "anonymousId": "anon-zq-1", "name": "Home", "messageId": "w1"})
    send(
        db,
        settings,
        store,
        {
            "type": "identify",
            "userId": "zq-42",
            "messageId": "s1",
            "traits": {"email": EMAIL, "phone": PHONE, "name": NAME, "city": "Toledo"},
        },
        {
            "type": "track",
            "userId": "zq-42",
            "event": "Order Completed",
            "messageId": "s2",
            "properties": {"revenue": 120.5, "currency": "USD", "note": f"gift for {NAME}", "email": EMAIL},
        },
        {
            "type": "track",
            "userId": "zq-42",
            "event": "Order Completed",
            "messageId": "s3",
            "properties": {"revenue": 30, "currency": "USD"},
        },
        {
            "type": "identify",
            "userId": "bob-1",
            "messageId": "b1",
            "traits": {"email": OTHER_EMAIL, "name": "Bob Other"},
        },
        {
            "type": "track",
            "userId": "bob-1",
            "event": "Order Completed",
            "messageId": "b2",
            "properties": {"revenue": 7},
        },
    )
    # A rejected message that carried her email stays in the quarantine until the erasure.
    send(
        db,
        settings,
        store,
        {
            "type": "identify",
            "userId": "zq-42",
            "timestamp": "not a time",
            "traits": {"email": EMAIL, "name": NAME},
        },
    )
    zelda = lookup_profile(db, "user_id", "zq-42")
    anon = lookup_profile(db, "anonymous_id", "anon-zq-1")
    bob = lookup_profile(db, "user_id", "bob-1")
    merge_profiles(
        db,
        zelda,
        anon,
        trigger="steward",
        actor_user_id=None,
        rule=None,
        reason="same visitor",
        now=utcnow(),
        settings=settings,
    )
    with db.write() as session:
        session.execute(
            insert(MatchCandidate).values(
                left_id=min(zelda, bob),
                right_id=max(zelda, bob),
                status="rejected",
                match_probability=0.5,
                match_weight=0.0,
                evidence={"comparisons": [{"left": NAME, "right": "Bob Other"}]},
                run_id=1,
                created_at=utcnow(),
                scored_at=utcnow(),
            )
        )
        session.execute(
            insert(PrivacyRequest).values(
                kind="erasure",
                regulation="gdpr",
                status="verified",
                profile_id=zelda,
                requester=EMAIL,
                subject=PHONE,
                details={"note": f"{NAME} wrote in"},
                received_at=utcnow(),
                due_at=utcnow(),
                outcome={},
            )
        )
        # An email sent to her (threadline.messaging): her address and her name in its body.
        session.execute(
            insert(OutboundMessage).values(
                profile_id=zelda,
                channel="email",
                purpose="service",
                to_address=EMAIL,
                subject="Your order",
                body_text=f"Dear {NAME}, your order is on its way.",
                status="sent",
                attempts=1,
                created_at=utcnow(),
                updated_at=utcnow(),
                origin="manual",
            )
        )
        # A service conversation she started by email, with an attachment and a survey answer.
        conversation = session.execute(
            insert(Conversation)
            .values(
                profile_id=zelda,
                channel="email",
                subject=f"Help for {NAME}",
                status="resolved",
                priority="normal",
                tags=[],
                created_at=utcnow(),
                updated_at=utcnow(),
                last_message_at=utcnow(),
                reopened=0,
                sla_state="ok",
            )
            .returning(Conversation.id)
        ).scalar_one()
        message = session.execute(
            insert(ConversationMessage)
            .values(
                conversation_id=conversation,
                direction="in",
                sender=EMAIL,
                body_text=f"My phone is {PHONE}, {NAME}",
                created_at=utcnow(),
            )
            .returning(ConversationMessage.id)
        ).scalar_one()
        session.execute(
            insert(Attachment).values(
                message_id=message,
                filename="receipt.txt",
                content_type="text/plain",
                size=30,
                data=f"receipt for {EMAIL}".encode(),
            )
        )
        session.execute(
            insert(SurveyResponse).values(
                profile_id=zelda,
                conversation_id=conversation,
                kind="csat",
                channel="email",
                token_hash="t" * 64,
                sent_at=utcnow(),
                answered_at=utcnow(),
                score=2,
                comment=f"{NAME} was not happy",
            )
        )
    return zelda, bob


def orders(db: Database) -> tuple[int, float]:
    with db.read() as session:
        count = session.scalar(select(func.count()).where(Event.name == "Order Completed"))
        revenue = sum(
            float((p or {}).get("revenue", 0))
            for p in session.scalars(select(Event.properties).where(Event.name == "Order Completed"))
        )
    return int(count or 0), revenue


def database_bytes(db: Database, settings: Settings, tmp_path: Path) -> bytes:
    if db.dialect == "sqlite":
        raw = db.engine.raw_connection()  # autocommit (see storage/engine.py): VACUUM needs it
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            raw.cursor().execute("VACUUM")
        finally:
            raw.close()
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed")
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    dump = tmp_path / "dump.sql"
    subprocess.run([pg_dump, "--data-only", "--file", str(dump), url], check=True)
    return dump.read_bytes()


def test_every_table_is_exported_and_erased_or_says_why_not() -> None:
    covered = {holder.table for holder in HOLDERS} | set(NO_CUSTOMER_DATA)
    assert {table.name for table in Base.metadata.sorted_tables} - covered == set()


def test_an_erased_person_leaves_no_bytes_and_stays_erased(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    zelda, bob = load_person(db, settings)
    before = database_bytes(db, settings, tmp_path)
    for needle in (EMAIL, PHONE, NAME):
        assert needle.encode() in before  # the search can see it when it is there
    orders_before = orders(db)

    report = erase_person(db, settings, zelda, now=utcnow())

    assert report.profiles == 2 and report.identifiers_suppressed == 4
    assert report.rows["quarantine"] == 1 and report.rows["events"] == 4
    after = database_bytes(db, settings, tmp_path)
    for needle in (EMAIL, PHONE, NAME, "zq-42", "anon-zq-1", "Toledo"):
        assert needle.encode() not in after, needle
    assert OTHER_EMAIL.encode() in after  # Bob is untouched
    # Aggregates stay right: the orders are kept, anonymised, on no one.
    assert orders(db) == orders_before
    with db.read() as session:
        kept = session.execute(
            select(Event.properties, Event.user_id).where(Event.profile_id == ERASED_PROFILE_ID)
        ).all()
        assert {"revenue": 120.5, "currency": "USD"} in [p for p, _ in kept]
        assert all(user is None for _, user in kept)
        request = session.scalars(select(PrivacyRequest)).one()
        assert (request.requester, request.subject, request.profile_id) == (None, None, None)
        assert session.get(Profile, bob) is not None
    with pytest.raises(NotFound):
        lookup_profile(db, "email", EMAIL)
    with pytest.raises(NotFound):
        export_person(db, zelda)

    # A later event carrying the erased email (or her old userId) does not re-create her.
    web = make_source(db, "app", "app")
    result = send(
        db,
        settings,
        web,
        {"type": "identify", "userId": "new-id", "messageId": "late-1", "traits": {"email": EMAIL.upper()}},
        {"type": "track", "userId": "zq-42", "event": "Opened", "messageId": "late-2"},
        {
            "type": "identify",
            "userId": "carol-1",
            "messageId": "late-3",
            "traits": {"email": "carol@example.com"},
        },
    )
    assert result.suppressed == {0, 1} and result.accepted == 1
    with pytest.raises(NotFound):
        lookup_profile(db, "email", EMAIL)
    with pytest.raises(NotFound):
        lookup_profile(db, "user_id", "new-id")
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(QuarantinedMessage)) == 0
        assert session.scalar(select(func.count()).where(Event.message_id.in_(["late-1", "late-2"]))) == 0


def test_erasure_can_delete_events_instead(db: Database, settings: Settings) -> None:
    zelda, _ = load_person(db, settings)
    set_erasure_policy(db, events="delete", keep_properties=[], user_id=None, now=utcnow())
    erase_person(db, settings, zelda, now=utcnow())
    assert orders(db) == (1, 7.0)  # only Bob's order is left


def test_the_export_holds_everything_about_the_person_and_nothing_of_anyone_else(
    db: Database, settings: Settings
) -> None:
    zelda, _ = load_person(db, settings)
    export = export_person(db, zelda)

    assert export["profile"]["traits"]["email"] == EMAIL
    assert {(i["kind"], i["value"]) for i in export["identities"]} == {
        ("user_id", "zq-42"),
        ("email", EMAIL),
        ("phone", PHONE),
        ("anonymous_id", "anon-zq-1"),
    }
    assert [e["message_id"] for e in export["events"]] == ["w1", "s1", "s2", "s3"]
    assert {h["key"] for h in export["trait_history"]} >= {"email", "phone", "name", "city"}
    assert len(export["quarantine"]) == 1 and EMAIL in export["quarantine"][0]["payload"]
    assert len(export["merges"]) == 1
    assert [r["kind"] for r in export["privacy_requests"]] == ["erasure"]
    assert [(m["to_address"], m["status"]) for m in export["messages"]] == [(EMAIL, "sent")]
    [conversation] = export["conversations"]
    assert conversation["subject"] == f"Help for {NAME}" and PHONE in conversation["messages"][0]["body_text"]
    assert [a["filename"] for a in export["attachments"]] == ["receipt.txt"]
    assert [(s["kind"], s["score"]) for s in export["surveys"]] == [("csat", 2)]
    flat = repr(export)
    assert OTHER_EMAIL not in flat and "Bob Other" not in flat and "bob-1" not in flat


def test_erasing_a_merged_away_id_erases_the_live_person(db: Database, settings: Settings) -> None:
    zelda, _ = load_person(db, settings)
    with db.read() as session:
        merged = session.scalar(select(Profile.id).where(Profile.merged_into == zelda))
    assert merged is not None
    report = erase_person(db, settings, merged, now=utcnow())
    assert report.profile_id == zelda
    with db.read() as session:
        left = session.scalar(
            select(func.count()).select_from(Profile).where(Profile.id != ERASED_PROFILE_ID)
        )
        assert left == 1  # Bob


def test_the_erased_profile_never_shows(db: Database, settings: Settings) -> None:
    zelda, _ = load_person(db, settings)
    erase_person(db, settings, zelda, now=utcnow())
    with db.read() as session:
        live = session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))).all()
        assert ERASED_PROFILE_ID not in live
        assert session.execute(text("SELECT 1")).scalar() == 1
    with pytest.raises(NotFound):
        erase_person(db, settings, ERASED_PROFILE_ID, now=utcnow())
