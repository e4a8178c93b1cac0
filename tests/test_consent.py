"""The consent ledger end to end: statements, state and history, merges, the send check, ingestion with
context.consent, the REST API within data scopes, unsubscribe links, import columns and the 360 panel.
Real SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send
from threadline.accounts import viewer_for
from threadline.config import Settings
from threadline.errors import Forbidden
from threadline.identity import merge_profiles, unmerge
from threadline.ingest import list_quarantine
from threadline.ingest.importer import import_file
from threadline.privacy import (
    InvalidConsent,
    SendRefused,
    check_send,
    consent_history,
    consent_state,
    record_consent,
    require_send,
    search_audit,
    statement,
    unsubscribe_url,
)
from threadline.profiles import assign_owner
from threadline.storage import Database
from threadline.storage.models import ConsentRecord, ProcessingRestriction, User

T0 = datetime(2026, 3, 1, 9, 0)


def customer(db: Database, settings: Settings, user_id: str, **traits: str) -> str:
    send(
        db,
        settings,
        make_source(db, f"src-{user_id}"),
        {"type": "identify", "userId": user_id, "traits": traits},
    )
    return lookup_profile(db, "user_id", user_id)


def say(db: Database, profile_id: str, at: datetime, *statements: tuple[str, str, str]) -> None:
    said = [statement(p, c, s) for p, c, s in statements]
    record_consent(db, SYSTEM, profile_id, said, source="test", now=at, recorded_at=at)


def status(db: Database, profile_id: str, purpose: str, channel: str) -> str:
    return str(consent_state(db, profile_id, viewer=SYSTEM)["state"][purpose][channel]["status"])


def may_send(db: Database, profile_id: str, channel: str, purpose: str) -> tuple[bool, str]:
    with db.read() as session:
        decision = check_send(session, profile_id, channel, purpose)
    return decision.allowed, decision.reason


def test_state_is_the_latest_statement_and_all_competes_with_each_channel_by_time(
    db: Database, settings: Settings
) -> None:
    ann = customer(db, settings, "ann")
    assert status(db, ann, "marketing", "email") == "unknown"
    say(db, ann, T0, ("marketing", "all", "denied"))
    say(db, ann, T0 + timedelta(days=1), ("marketing", "email", "granted"), ("analytics", "sms", "granted"))
    assert status(db, ann, "marketing", "email") == "granted"  # said after the "all"
    assert status(db, ann, "marketing", "sms") == "denied"  # the "all" still holds there
    assert consent_state(db, ann, viewer=SYSTEM)["state"]["marketing"]["sms"]["via_all"] is True
    say(db, ann, T0 + timedelta(days=2), ("marketing", "all", "withdrawn"))
    assert status(db, ann, "marketing", "email") == "withdrawn"
    # A statement said earlier but entered later (a paper form) does not beat what was said since.
    say(db, ann, T0 + timedelta(hours=1), ("marketing", "email", "granted"))
    assert status(db, ann, "marketing", "email") == "withdrawn"
    history = consent_history(db, ann, viewer=SYSTEM)
    assert [(h["purpose"], h["channel"], h["status"]) for h in history[:3]] == [
        ("marketing", "all", "withdrawn"),
        ("analytics", "sms", "granted"),  # said together: in the order entered, newest first
        ("marketing", "email", "granted"),
    ]
    assert len(history) == 5 and history[-1]["status"] == "denied"


def test_statements_are_validated_naming_the_field(db: Database, settings: Settings) -> None:
    with pytest.raises(InvalidConsent) as bad:
        statement("marketing", "fax", "granted", prefix="statements[1].")
    assert bad.value.field == "statements[1].channel"
    with pytest.raises(InvalidConsent) as bad:
        statement("spam", "email", "granted")
    assert bad.value.field == "purpose"
    with pytest.raises(InvalidConsent) as bad:
        statement("marketing", "email", "maybe")
    assert bad.value.field == "status"
    assert statement(" Personalization ", "EMAIL", "Granted") == statement(
        "personalisation", "email", "granted"
    )
    ann = customer(db, settings, "ann")
    with pytest.raises(InvalidConsent) as bad:
        record_consent(
            db,
            SYSTEM,
            ann,
            [statement("marketing", "email", "granted")],
            source="t",
            now=T0,
            recorded_at=T0 + timedelta(days=1),
        )
    assert bad.value.field == "recorded_at"


def test_check_send_rules(db: Database, settings: Settings) -> None:
    ann = customer(db, settings, "ann")
    assert may_send(db, ann, "email", "marketing") == (False, "no_consent")  # opt-in: silence refuses
    assert may_send(db, ann, "email", "service") == (True, "service")  # a reply to their own request
    say(db, ann, T0, ("marketing", "email", "granted"), ("service", "sms", "denied"))
    assert may_send(db, ann, "email", "marketing") == (True, "granted")
    assert may_send(db, ann, "sms", "marketing") == (False, "no_consent")
    assert may_send(db, ann, "sms", "service") == (False, "denied")
    assert may_send(db, ann, "email", "service") == (True, "service")
    say(db, ann, T0 + timedelta(days=1), ("marketing", "all", "withdrawn"))
    assert may_send(db, ann, "email", "marketing") == (False, "withdrawn")
    with db.read() as session, pytest.raises(SendRefused) as refused:
        require_send(session, ann, "email", "marketing")
    assert refused.value.details["reason"] == "withdrawn"
    with db.read() as session, pytest.raises(InvalidConsent):
        check_send(session, ann, "all", "marketing")  # a message goes out on one channel
    say(db, ann, T0 + timedelta(days=2), ("marketing", "email", "granted"))
    with db.write() as session:
        session.add(ProcessingRestriction(profile_id=ann, since=T0, request_id=None, set_by=None))
    assert may_send(db, ann, "email", "marketing") == (False, "restricted")
    assert may_send(db, ann, "email", "service") == (False, "restricted")
    assert consent_state(db, ann, viewer=SYSTEM)["restricted"] is True


def test_a_merge_shows_both_ledgers_and_an_unmerge_gives_each_its_own(
    db: Database, settings: Settings
) -> None:
    ann, bee = customer(db, settings, "ann"), customer(db, settings, "bee")
    say(db, ann, T0, ("marketing", "email", "granted"))
    say(db, bee, T0 + timedelta(days=1), ("marketing", "sms", "granted"), ("analytics", "all", "denied"))
    with db.write() as session:  # a restriction on the merged-away profile counts for the survivor
        session.add(ProcessingRestriction(profile_id=bee, since=T0, request_id=None, set_by=None))
    merge = merge_profiles(
        db,
        ann,
        bee,
        trigger="steward",
        actor_user_id=None,
        rule=None,
        reason="same person",
        now=T0,
        force=True,
        settings=settings,
    )
    state = consent_state(db, bee, viewer=SYSTEM)  # the merged-away ID answers for the survivor
    assert state["profile_id"] == ann and state["requested_id"] == bee and state["restricted"]
    assert state["state"]["marketing"]["sms"]["status"] == "granted"
    assert state["state"]["marketing"]["email"]["status"] == "granted"
    assert {h["from_merged"] for h in consent_history(db, ann, viewer=SYSTEM)} == {True, False}
    assert may_send(db, ann, "email", "marketing") == (False, "restricted")
    with db.write() as session:
        session.delete(session.get(ProcessingRestriction, bee))
    assert may_send(db, bee, "sms", "marketing") == (True, "granted")

    unmerge(db, merge.id, actor_user_id=None, now=T0 + timedelta(days=2), settings=settings)
    assert status(db, ann, "marketing", "sms") == "unknown"
    assert status(db, bee, "marketing", "sms") == "granted"
    assert status(db, bee, "marketing", "email") == "unknown"


def test_ingestion_records_context_consent_with_evidence_and_quarantines_a_bad_one(
    db: Database, settings: Settings
) -> None:
    web = make_source(db, "signup-form")
    result = send(
        db,
        settings,
        web,
        {
            "type": "identify",
            "userId": "ann",
            "messageId": "m-1",
            "timestamp": "2026-03-01T09:00:00Z",
            "context": {
                "ip": "203.0.113.9",
                "consent": {"categoryPreferences": {"marketing": True, "Analytics": False}},
            },
        },
        {
            "type": "track",
            "event": "Newsletter Preferences Saved",
            "userId": "ann",
            "messageId": "m-2",
            "timestamp": "2026-03-02T09:00:00Z",
            "context": {
                "consent": {
                    "preferences": [
                        {"purpose": "marketing", "channel": "sms", "status": "denied"},
                        {"purpose": "service", "channel": "whatsapp", "status": "granted"},
                    ],
                    "form": "preferences-centre",
                    "text": "Send me offers by text message",
                }
            },
        },
        {
            "type": "track",
            "event": "Preferences Saved",
            "userId": "ann",
            "messageId": "m-bad",
            "context": {
                "consent": {"preferences": [{"purpose": "marketing", "channel": "fax", "status": "granted"}]}
            },
        },
    )
    assert result.accepted == 2
    [rejection] = result.rejected
    assert rejection.field == "context.consent.preferences[0].channel" and "fax" in rejection.reason
    [held] = list_quarantine(db, source="signup-form")
    assert held.field == "context.consent.preferences[0].channel"

    ann = lookup_profile(db, "user_id", "ann")
    assert status(db, ann, "marketing", "email") == "granted"  # categoryPreferences speak for every channel
    assert status(db, ann, "analytics", "push") == "denied"
    assert status(db, ann, "marketing", "sms") == "denied"
    assert status(db, ann, "service", "whatsapp") == "granted"
    history = {(h["purpose"], h["channel"]): h for h in consent_history(db, ann, viewer=SYSTEM)}
    assert history[("marketing", "all")]["recorded_at"] == "2026-03-01T09:00:00.000Z"
    assert history[("marketing", "all")]["evidence"] == {
        "messageId": "m-1",
        "source": "signup-form",
        "ip": "203.0.113.9",
    }
    assert history[("marketing", "sms")]["evidence"]["form"] == "preferences-centre"
    assert history[("marketing", "sms")]["evidence"]["text"] == "Send me offers by text message"
    assert history[("marketing", "sms")]["source"] == "signup-form"
    # A replayed message is a duplicate: its consent is not recorded twice.
    send(
        db,
        settings,
        web,
        {
            "type": "identify",
            "userId": "ann",
            "messageId": "m-1",
            "context": {"consent": {"categoryPreferences": {"marketing": True}}},
        },
    )
    with db.read() as session:
        assert len(session.scalars(select(ConsentRecord)).all()) == 4


class World:
    """Two agents with a customer each, an admin and an analyst (as in test_scopes.py)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.tokens = {
            name: make_token(db, f"{name}@example.com", name.rstrip("0123456789"))
            for name in ("admin", "agent1", "agent2", "analyst")
        }
        with db.read() as session:
            self.ids = {u.email.split("@")[0]: u.id for u in session.scalars(select(User))}
        self.customers = {n: customer(db, settings, f"c{n}", name=f"Customer {n}") for n in (1, 2)}
        admin = viewer_for(db, self.ids["admin"], "admin")
        assign_owner(db, admin, [self.customers[1]], self.ids["agent1"])
        assign_owner(db, admin, [self.customers[2]], self.ids["agent2"])

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return World(db, settings)


def test_rest_records_reads_and_checks_within_the_data_scope(world: World, http: httpx.Client) -> None:
    mine, theirs = world.customers[1], world.customers[2]
    agent = world.bearer("agent1")
    posted = http.post(
        f"/api/v1/profiles/{mine}/consents",
        headers=agent,
        json={
            "statements": [
                {"purpose": "marketing", "channel": "email", "status": "granted"},
                {"purpose": "analytics", "status": "denied"},
            ],
            "evidence": {"note": "asked on the phone, call 4411"},
        },
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["state"]["marketing"]["email"]["status"] == "granted"
    assert posted.json()["state"]["analytics"]["sms"]["status"] == "denied"

    read = http.get(f"/api/v1/profiles/{mine}/consents", headers=agent).json()
    assert read["state"]["marketing"]["email"]["allowed"] is True
    assert {h["source"] for h in read["history"]} == {"api"}
    assert read["history"][0]["entered_by"]["email"] == "agent1@example.com"
    assert read["history"][0]["evidence"] == {"note": "asked on the phone, call 4411"}

    check = http.get(
        "/api/v1/consent-check",
        headers=agent,
        params={"profile_id": mine, "channel": "sms", "purpose": "marketing"},
    )
    assert check.json()["allowed"] is False and check.json()["reason"] == "no_consent"

    # Another agent's customer answers 404 for reads, writes and checks alike, and is audited.
    for response in (
        http.get(f"/api/v1/profiles/{theirs}/consents", headers=agent),
        http.post(
            f"/api/v1/profiles/{theirs}/consents",
            headers=agent,
            json={"statements": [{"purpose": "marketing", "channel": "email", "status": "withdrawn"}]},
        ),
        http.get(
            "/api/v1/consent-check",
            headers=agent,
            params={"profile_id": theirs, "channel": "email", "purpose": "service"},
        ),
    ):
        assert response.status_code == 404 and response.json()["error"]["details"] is None
    with world.db.read() as session:
        assert session.scalars(select(ConsentRecord).where(ConsentRecord.profile_id == theirs)).all() == []
    denied = search_audit(world.db, user_email="agent1@example.com", action="denied")
    assert {d.object_id for d in denied} == {theirs}

    bad = http.post(
        f"/api/v1/profiles/{mine}/consents",
        headers=agent,
        json={
            "statements": [
                {"purpose": "marketing", "channel": "email", "status": "granted"},
                {"purpose": "marketing", "channel": "fax", "status": "granted"},
            ]
        },
    )
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "statements[1].channel"}
    analyst = http.post(
        f"/api/v1/profiles/{mine}/consents",
        headers=world.bearer("analyst"),
        json={"statements": [{"purpose": "marketing", "status": "granted"}]},
    )
    assert analyst.status_code == 403  # analysts change nothing

    [change] = search_audit(world.db, action="consent")
    assert change.object_id == mine and change.user_email == "agent1@example.com"
    assert change.details == {
        "via": "api",
        "statements": [
            {"purpose": "marketing", "channel": "email", "status": "granted"},
            {"purpose": "analytics", "channel": "all", "status": "denied"},
        ],
    }  # no evidence, no note: the audit log holds no personal data
    assert any(v.details.get("part") == "consent" for v in search_audit(world.db, action="view"))


def test_rest_follows_a_merge(world: World, http: httpx.Client, settings: Settings) -> None:
    one, two = world.customers[1], world.customers[2]
    say(world.db, two, T0, ("marketing", "push", "granted"))
    merge_profiles(
        world.db,
        one,
        two,
        trigger="steward",
        actor_user_id=None,
        rule=None,
        reason="same",
        now=T0,
        force=True,
        settings=settings,
    )
    response = http.get(f"/api/v1/profiles/{two}/consents", headers=world.bearer("admin"))
    assert response.status_code == 200
    assert response.json()["profile_id"] == one and response.json()["requested_id"] == two
    assert response.headers["content-location"] == f"/api/v1/profiles/{one}/consents"
    assert response.json()["state"]["marketing"]["push"]["status"] == "granted"


def unsubscribe_link(db: Database, settings: Settings, profile_id: str, channel: str = "email") -> str:
    with db.write() as session:
        url = unsubscribe_url(session.connection(), settings, "https://crm.example.com/", profile_id, channel)
    assert url.startswith("https://crm.example.com/unsubscribe/")
    return url.removeprefix("https://crm.example.com")


def test_unsubscribe_link_asks_then_withdraws_and_one_click_works(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    ann = customer(db, settings, "ann", email="ann@example.com")
    say(db, ann, T0, ("marketing", "all", "granted"))
    path = unsubscribe_link(db, settings, ann)

    page = http.get(path)
    assert page.status_code == 200 and "Unsubscribe" in page.text and "ann@example.com" not in page.text
    assert status(db, ann, "marketing", "email") == "granted"  # opening the link (a scanner) changes nothing

    done = http.post(path)  # the confirm button: no login, no CSRF token
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert status(db, ann, "marketing", "email") == "withdrawn"
    assert status(db, ann, "marketing", "sms") == "granted"  # only the link's channel
    [entry] = [h for h in consent_history(db, ann, viewer=SYSTEM) if h["status"] == "withdrawn"]
    assert entry["source"] == "unsubscribe" and entry["evidence"]["form"] == "unsubscribe page"
    again = http.post(path)
    assert again.status_code == 200
    assert len(consent_history(db, ann, viewer=SYSTEM)) == 2  # a second click records nothing

    sms = unsubscribe_link(db, settings, ann, "sms")
    one_click = http.post(
        sms,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200
    assert status(db, ann, "marketing", "sms") == "withdrawn"
    latest = consent_history(db, ann, viewer=SYSTEM)[0]
    assert latest["evidence"]["form"] == "one-click"
    audited = search_audit(db, action="consent")
    assert [a.details["via"] for a in audited] == ["unsubscribe", "unsubscribe"]
    assert audited[0].details["one_click"] is True

    token = path.rsplit("/", 1)[1]
    for forged in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "garbage", token + "x"):
        for response in (http.get(f"/unsubscribe/{forged}"), http.post(f"/unsubscribe/{forged}")):
            assert response.status_code == 400 and "not valid" in response.text
    assert len(consent_history(db, ann, viewer=SYSTEM)) == 3


CONSENT_CSV = """\
Customer ID,Name,consent.marketing.email,consent.marketing.sms,consent.analytics
C-1,Ann Lee,yes,no,granted
C-2,Bob Stone,withdrawn,,TRUE
C-3,Cara Diaz,maybe,yes,
"""


def test_import_columns_become_consent_statements(db: Database, settings: Settings, tmp_path: Path) -> None:
    store = make_source(db, "store-pos", "store")
    file = tmp_path / "customers.csv"
    file.write_text(CONSENT_CSV, encoding="utf-8")
    report = import_file(db, settings, file, source=store)
    assert (report.accepted, report.rejected) == (2, 1)
    ann, bob = lookup_profile(db, "user_id", "C-1"), lookup_profile(db, "user_id", "C-2")
    assert status(db, ann, "marketing", "email") == "granted"
    assert status(db, ann, "marketing", "sms") == "denied"
    assert status(db, ann, "analytics", "post") == "granted"
    assert status(db, bob, "marketing", "email") == "withdrawn"
    assert status(db, bob, "marketing", "sms") == "unknown"  # an empty cell says nothing
    history = consent_history(db, ann, viewer=SYSTEM)
    assert {h["source"] for h in history} == {"store-pos"}
    assert history[0]["evidence"]["form"] == "import: customers.csv"
    assert report.rejects_path is not None
    rejects = report.rejects_path.read_text(encoding="utf-8-sig")
    assert "consent.marketing.email" in rejects and "'maybe' is not a consent" in rejects
    # Importing again stores nothing twice, consent included.
    import_file(db, settings, file, source=store)
    assert len(consent_history(db, ann, viewer=SYSTEM)) == 3

    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("Customer ID,consent.marketing.fax\nC-9,yes\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"consent\.marketing\.fax"):
        import_file(db, settings, bad_header, source=store)


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


def test_the_360_panel_shows_the_matrix_and_records_a_statement(world: World, http: httpx.Client) -> None:
    mine, theirs = world.customers[1], world.customers[2]
    say(world.db, mine, T0, ("marketing", "all", "granted"))
    csrf = sign_in(http, "agent1@example.com")
    page = http.get(f"/customers/{mine}")
    assert f'hx-get="/customers/{mine}/consent"' in page.text

    panel = http.get(f"/customers/{mine}/consent", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "<html" not in panel.text
    assert 'class="consent consent-granted"' in panel.text and "Record consent" in panel.text
    assert http.get(f"/customers/{mine}/consent").text.startswith("<!doctype html>")  # without htmx

    recorded = http.post(
        f"/customers/{mine}/consent",
        data={
            "csrf": csrf,
            "purpose": "marketing",
            "channel": "sms",
            "status": "withdrawn",
            "note": "rang us",
        },
    )
    assert recorded.status_code == 303 and recorded.headers["location"] == f"/customers/{mine}#consent"
    assert status(world.db, mine, "marketing", "sms") == "withdrawn"
    swapped = http.post(
        f"/customers/{mine}/consent",
        data={"csrf": csrf, "purpose": "service", "channel": "email", "status": "denied", "note": ""},
        headers={"HX-Request": "true"},
    )
    assert swapped.status_code == 200 and "rang us" in swapped.text and 'id="consent"' in swapped.text
    [web_entry] = [h for h in consent_history(world.db, mine, viewer=SYSTEM) if h["channel"] == "sms"]
    assert web_entry["source"] == "web" and web_entry["entered_by"]["email"] == "agent1@example.com"

    assert (
        http.post(
            f"/customers/{mine}/consent", data={"purpose": "marketing", "status": "granted"}
        ).status_code
        == 403
    )
    assert http.get(f"/customers/{theirs}/consent").status_code == 404
    forged = http.post(
        f"/customers/{theirs}/consent", data={"csrf": csrf, "purpose": "marketing", "status": "withdrawn"}
    )
    assert forged.status_code == 404
    with pytest.raises(Forbidden):  # and the domain refuses a reader without the edit permission
        record_consent(
            world.db,
            viewer_for(world.db, world.ids["analyst"], "analyst"),
            mine,
            [statement("marketing", "email", "granted")],
            source="t",
            now=T0,
        )
