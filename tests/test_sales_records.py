"""Leads, accounts, contacts and deals end to end: linking to the unified profile, conversion, pipelines
and stage history, won/lost, custom fields, data scopes, import and export, erasure. Real SQLite and
PostgreSQL, real HTTP."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

import httpx
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send
from threadline.accounts import Viewer, create_team, set_user_team, viewer_for
from threadline.config import Settings
from threadline.errors import Conflict, Forbidden, Invalid, NotFound
from threadline.privacy import erase_person, export_person
from threadline.profiles import assign_owner
from threadline.sales import (
    RecordQuery,
    close_deal,
    convert_lead,
    create_record,
    export_records,
    get_record,
    import_records,
    list_records,
    move_deal,
    pipeline_board,
    read_table,
    save_custom_field,
    save_pipeline,
    transfer_records,
    update_record,
)
from threadline.storage import Database
from threadline.storage.models import AuditEntry, Contact, Lead, SalesAccount, User

T0 = datetime(2026, 5, 4, 9, 0)


class Team:
    """An admin, a manager of team North with agent1 in it, agent2 outside it, and an analyst."""

    def __init__(self, db: Database) -> None:
        self.tokens = {
            name: make_token(db, f"{name}@example.com", name.rstrip("0123456789"))
            for name in ("admin", "manager", "agent1", "agent2", "analyst")
        }
        create_team(db, "North", manager_email="manager@example.com", now=T0)
        set_user_team(db, "agent1@example.com", "North")
        with db.read() as session:
            self.ids = {u.email.split("@")[0]: u.id for u in session.scalars(select(User))}
        self.db = db

    def viewer(self, name: str) -> Viewer:
        role = name.rstrip("0123456789")
        return viewer_for(self.db, self.ids[name], role)

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def team(db: Database) -> Team:
    return Team(db)


def lead(db: Database, settings: Settings, viewer: Viewer, **values: Any) -> dict[str, Any]:
    return create_record(db, viewer, "lead", {"name": "Wei Zhang", **values}, settings=settings, now=T0)


# -- profile link and conversion ------------------------------------------------------------------------
def test_a_lead_is_linked_to_the_profile_a_later_web_identify_lands_on(
    db: Database, settings: Settings, team: Team
) -> None:
    made = lead(db, settings, team.viewer("agent1"), email=" Wei.Zhang@Example.com ", phone="(415) 555-0100")
    assert made["email"] == "wei.zhang@example.com" and made["phone"] == "+14155550100"
    assert made["profile_id"] and made["owner"] == "agent1@example.com"
    web = make_source(db)
    send(
        db,
        settings,
        web,
        {"type": "identify", "anonymousId": "browser-1", "traits": {"email": "WEI.ZHANG@example.com"}},
    )
    assert lookup_profile(db, "anonymous_id", "browser-1") == made["profile_id"]
    with pytest.raises(Invalid) as bad:
        lead(db, settings, team.viewer("agent1"), email="not an email")
    assert bad.value.details == {"field": "email"}


def test_converting_a_lead_makes_an_account_contact_and_deal_keeping_the_profile(
    db: Database, settings: Settings, team: Team
) -> None:
    agent = team.viewer("agent1")
    made = lead(db, settings, agent, company="Acme", email="wei@acme.example", source="fair")
    with pytest.raises(Invalid) as bad:
        convert_lead(db, agent, made["id"], deal={"amount": "lots"}, settings=settings, now=T0)
    assert bad.value.details == {"field": "deal.amount"}
    with db.read() as session:  # nothing of the failed conversion stayed
        assert session.scalar(select(SalesAccount.id)) is None
    done = convert_lead(
        db, agent, made["id"], deal={"amount": "1200.50", "currency": "cny"}, settings=settings, now=T0
    )
    assert done["status"] == "converted" and done["converted_deal_id"]
    account = get_record(db, agent, "account", done["converted_account_id"])
    assert (account["name"], account["kind"], account["source"], account["owner"]) == (
        "Acme",
        "company",
        "fair",
        "agent1@example.com",
    )
    [contact] = account["contacts"]
    assert contact["email"] == "wei@acme.example" and contact["profile_id"] == made["profile_id"]
    [deal] = account["deals"]
    assert (deal["amount"], deal["currency"], deal["stage"], deal["status"]) == (
        1200.5,
        "CNY",
        "prospecting",
        "open",
    )
    with pytest.raises(Conflict):
        convert_lead(db, agent, made["id"], settings=settings, now=T0)
    consumer = lead(db, settings, agent, name="Li Na", phone="+8613800138000")
    person = convert_lead(db, agent, consumer["id"], kind="person", settings=settings, now=T0)
    account = get_record(db, agent, "account", person["converted_account_id"])
    assert (account["name"], account["kind"], account["profile_id"]) == (
        "Li Na",
        "person",
        consumer["profile_id"],
    )


# -- pipelines, stages, won and lost ------------------------------------------------------------------------
def test_pipelines_stage_history_and_won_lost(db: Database, settings: Settings, team: Team) -> None:
    admin, agent = team.viewer("admin"), team.viewer("agent1")
    with pytest.raises(Invalid) as bad:
        save_pipeline(db, admin, "Projects", [{"name": "Scoping", "probability": 140}])
    assert bad.value.details == {"field": "stages[0].probability"}
    with pytest.raises(Forbidden):
        save_pipeline(db, agent, "Projects", [{"name": "Scoping", "probability": 20}])
    projects = save_pipeline(
        db, admin, "Projects", [{"name": "Scoping", "probability": 20}, {"name": "Signed", "probability": 90}]
    )
    account = create_record(db, agent, "account", {"name": "Acme"}, settings=settings, now=T0)
    with pytest.raises(Invalid) as bad:
        bad_deal = {"name": "X", "account_id": account["id"], "pipeline_id": projects.id, "stage": "nope"}
        create_record(db, agent, "deal", bad_deal, settings=settings, now=T0)
    assert bad.value.details == {"field": "stage"}
    rollout = {"name": "Rollout", "account_id": account["id"], "pipeline_id": projects.id, "amount": 1000}
    deal = create_record(
        db, agent, "deal", {**rollout, "expected_close": "2026-06-30"}, settings=settings, now=T0
    )
    assert deal["stage"] == "scoping" and deal["probability"] == 20
    moved = move_deal(db, agent, deal["id"], "Signed", now=T0)
    assert [(h["from_stage"], h["to_stage"]) for h in moved["stage_history"]] == [
        (None, "scoping"),
        ("scoping", "signed"),
    ]
    board = pipeline_board(db, agent, projects.id)
    assert [(c["key"], c["count"], c["weighted"]) for c in board["columns"]] == [
        ("scoping", 0, 0),
        ("signed", 1, 900),
    ]
    with pytest.raises(Invalid) as bad:
        close_deal(db, agent, deal["id"], "lost", now=T0)
    assert bad.value.details == {"field": "lost_reason"}
    lost = close_deal(db, agent, deal["id"], "lost", reason="price", now=T0)
    assert (lost["status"], lost["lost_reason"], lost["probability"], lost["closed_at"]) == (
        "lost",
        "price",
        0,
        T0,
    )
    won = close_deal(db, agent, close_deal(db, agent, deal["id"], "open", now=T0)["id"], "won", now=T0)
    assert won["status"] == "won" and won["lost_reason"] is None
    with pytest.raises(Conflict):  # a stage deals are in cannot go
        save_pipeline(
            db, admin, "Projects", [{"name": "Scoping", "probability": 20}], pipeline_id=projects.id
        )


# -- custom fields --------------------------------------------------------------------------------------
def test_custom_fields_required_unique_and_typed_with_field_named_errors(
    db: Database, settings: Settings, team: Team
) -> None:
    admin, agent = team.viewer("admin"), team.viewer("agent1")
    with pytest.raises(Forbidden):
        save_custom_field(db, agent, {"entity": "lead", "key": "budget", "label": "Budget", "type": "number"})
    save_custom_field(
        db, admin, {"entity": "lead", "key": "budget", "label": "Budget", "type": "number", "required": True}
    )
    save_custom_field(
        db, admin, {"entity": "lead", "key": "tax_id", "label": "Tax ID", "type": "text", "unique": True}
    )
    save_custom_field(
        db,
        admin,
        {
            "entity": "lead",
            "key": "channels",
            "label": "Channels",
            "type": "multi_select",
            "options": ["WeChat", "Email"],
        },
    )
    with pytest.raises(Invalid) as bad:
        lead(db, settings, agent)
    assert bad.value.details == {"field": "custom.budget"}
    with pytest.raises(Invalid) as bad:
        lead(db, settings, agent, custom={"budget": "a lot"})
    assert bad.value.details == {"field": "custom.budget"}
    first = lead(
        db, settings, agent, custom={"budget": "5,000", "tax_id": "T-1", "channels": "wechat; Email"}
    )
    assert first["custom"] == {"budget": 5000, "tax_id": "T-1", "channels": ["WeChat", "Email"]}
    with pytest.raises(Invalid) as bad:
        lead(db, settings, agent, custom={"budget": 1, "tax_id": "t-1"})
    assert bad.value.details == {"field": "custom.tax_id"}
    with pytest.raises(Invalid) as bad:
        lead(db, settings, agent, custom={"budget": 1, "channels": ["Fax"]})
    assert bad.value.details == {"field": "custom.channels"}
    lead(db, settings, agent, name="Other", custom={"budget": 7})
    found = list_records(db, agent, "lead", RecordQuery(custom={"channels": "WeChat"}))
    assert [r["id"] for r in found.rows] == [first["id"]]
    assert list_records(db, agent, "lead", RecordQuery(custom={"budget": "7"})).rows[0]["name"] == "Other"


# -- scope ----------------------------------------------------------------------------------------------
def test_agents_see_their_own_managers_their_team_and_transfer_needs_the_permission(
    db: Database, settings: Settings, team: Team
) -> None:
    mine = lead(db, settings, team.viewer("agent1"), name="Mine")
    theirs = lead(db, settings, team.viewer("agent2"), name="Theirs")
    account = create_record(
        db, team.viewer("agent2"), "account", {"name": "Other Co"}, settings=settings, now=T0
    )
    contact = create_record(
        db,
        team.viewer("agent2"),
        "contact",
        {"name": "C", "account_id": account["id"]},
        settings=settings,
        now=T0,
    )
    agent1 = team.viewer("agent1")
    assert [r["name"] for r in list_records(db, agent1, "lead", RecordQuery()).rows] == ["Mine"]
    for entity, record_id in (("lead", theirs["id"]), ("account", account["id"]), ("contact", contact["id"])):
        with pytest.raises(NotFound):
            get_record(db, agent1, entity, record_id)
    with pytest.raises(NotFound):
        update_record(db, agent1, "lead", theirs["id"], {"name": "x"}, settings=settings, now=T0)
    with pytest.raises(Invalid) as bad:  # a contact cannot join an account out of scope
        create_record(
            db, agent1, "contact", {"name": "C", "account_id": account["id"]}, settings=settings, now=T0
        )
    assert bad.value.details == {"field": "account_id"}
    assert [r["name"] for r in list_records(db, team.viewer("manager"), "lead", RecordQuery()).rows] == [
        "Mine"
    ]
    assert {r["name"] for r in list_records(db, team.viewer("analyst"), "lead", RecordQuery()).rows} == {
        "Mine",
        "Theirs",
    }
    with pytest.raises(Forbidden):
        transfer_records(db, agent1, "lead", [mine["id"]], team.ids["agent2"], now=T0)
    with pytest.raises(Forbidden):
        update_record(
            db, agent1, "lead", mine["id"], {"owner_id": team.ids["agent2"]}, settings=settings, now=T0
        )
    with pytest.raises(Forbidden):
        create_record(db, team.viewer("analyst"), "lead", {"name": "x"}, settings=settings, now=T0)
    assert (
        transfer_records(db, team.viewer("manager"), "lead", [mine["id"]], "agent2@example.com", now=T0) == 1
    )
    assert list_records(db, agent1, "lead", RecordQuery()).total == 0


# -- import and export ----------------------------------------------------------------------------------
def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def test_import_skips_updates_or_creates_duplicates_and_rejects_bad_rows(
    db: Database, settings: Settings, team: Team
) -> None:
    agent = team.viewer("agent1")
    save_custom_field(
        db, team.viewer("admin"), {"entity": "lead", "key": "budget", "label": "Budget", "type": "number"}
    )
    lead(db, settings, agent, name="Wei", email="wei@example.com")
    data = _csv(
        [
            ["name", "email", "phone", "status", "Budget"],
            ["Wei Z", "WEI@example.com", "", "qualified", "10"],  # the same person by email
            ["Ann", "ann@example.com", "415 555 0101", "new", ""],
            ["Bad", "bad-email", "", "new", ""],
            ["Worse", "", "", "sleeping", ""],
            ["Cash", "", "", "new", "many"],
        ]
    )
    header, rows = read_table("leads.csv", data)
    skipped = import_records(db, agent, "lead", header, rows, mode="skip", settings=settings, now=T0)
    assert (skipped.created, skipped.updated, skipped.skipped) == (1, 0, 1)
    assert [(r.row, r.column) for r in skipped.rejects] == [(4, "email"), (5, "status"), (6, "Budget")]
    rejects = list(csv.reader(io.StringIO(skipped.rejects_file().decode("utf-8-sig"))))
    assert (
        rejects[0][:3] == ["row", "column", "error"]
        and rejects[1][:2] == ["4", "email"]
        and rejects[1][3] == "Bad"
    )
    updated = import_records(db, agent, "lead", header, rows[:2], mode="update", settings=settings, now=T0)
    assert (updated.created, updated.updated) == (0, 2)
    wei = list_records(db, agent, "lead", RecordQuery(q="wei@")).rows
    assert [(r["name"], r["status"], r["custom"]) for r in wei] == [("Wei Z", "qualified", {"budget": 10})]
    created = import_records(db, agent, "lead", header, rows[:1], mode="create", settings=settings, now=T0)
    assert created.created == 1
    assert list_records(db, agent, "lead", RecordQuery(q="wei@")).total == 2
    with pytest.raises(Invalid) as bad:
        import_records(db, agent, "lead", ["name", "colour"], [], mode="skip", settings=settings, now=T0)
    assert bad.value.details == {"field": "colour"}
    # Contacts name their account; an XLSX file reads the same.
    create_record(db, agent, "account", {"name": "Acme"}, settings=settings, now=T0)
    book = Workbook()
    book.active.append(["account", "name", "email", "is_decision_maker"])
    book.active.append(["acme", "Bo", "bo@acme.example", "yes"])
    book.active.append(["Nobody Inc", "Cy", "", ""])
    buffer = io.BytesIO()
    book.save(buffer)
    header, rows = read_table("contacts.xlsx", buffer.getvalue())
    outcome = import_records(db, agent, "contact", header, rows, mode="skip", settings=settings, now=T0)
    assert outcome.created == 1 and [(r.row, r.column) for r in outcome.rejects] == [(3, "account")]


def test_export_stays_in_scope_and_needs_the_permission(db: Database, settings: Settings, team: Team) -> None:
    lead(db, settings, team.viewer("agent1"), name="Mine", email="mine@example.com")
    lead(db, settings, team.viewer("agent2"), name="Theirs")
    with pytest.raises(Forbidden):
        export_records(db, team.viewer("agent1"), "lead", RecordQuery(), "csv")
    data, count = export_records(db, team.viewer("manager"), "lead", RecordQuery(), "xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    assert count == 1 and [c.value for c in sheet[2]][1:4] == ["Mine", None, "mine@example.com"]


# -- REST, pages and the 360 panel ------------------------------------------------------------------------
@pytest.fixture
def http(settings: Settings, db: Database) -> Any:
    with (
        LiveServer(settings, db, clock=lambda: T0) as live,
        httpx.Client(base_url=live.url, timeout=30) as client,
    ):
        yield client


def test_rest_crud_scope_export_and_audit(
    db: Database, settings: Settings, team: Team, http: httpx.Client
) -> None:
    agent1, agent2 = team.bearer("agent1"), team.bearer("agent2")
    bad = http.post("/api/v1/sales/leads", headers=agent1, json={"name": "Wei", "phone": "12"})
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "phone"}
    made = http.post(
        "/api/v1/sales/leads", headers=agent1, json={"name": "Wei", "email": "wei@example.com"}
    ).json()
    assert http.get(f"/api/v1/sales/leads/{made['id']}", headers=agent1).json()["created_at"].endswith("Z")
    forged = http.get(f"/api/v1/sales/leads/{made['id']}", headers=agent2)
    assert forged.status_code == 404 and forged.json()["error"]["details"] is None
    assert (
        http.patch(f"/api/v1/sales/leads/{made['id']}", headers=agent2, json={"name": "x"}).status_code == 404
    )
    assert http.get("/api/v1/sales/leads/export.csv", headers=agent1).status_code == 403
    exported = http.get("/api/v1/sales/leads/export.csv", headers=team.bearer("admin"), params={"q": "wei"})
    assert exported.status_code == 200 and "wei@example.com" in exported.text
    template = http.get("/api/v1/sales/leads/template.csv", headers=agent1)
    assert template.text.lstrip("\ufeff").startswith("name,company,email,phone")
    converted = http.post(
        f"/api/v1/sales/leads/{made['id']}/convert", headers=agent1, json={"kind": "person", "deal": {}}
    )
    assert converted.status_code == 200, converted.text
    imported = http.post(
        "/api/v1/sales/leads/import",
        headers=agent1,
        files={"file": ("leads.csv", _csv([["name", "email"], ["Ann", "ann@example.com"], ["", "x"]]))},
        data={"mode": "skip"},
    ).json()
    assert (imported["created"], imported["rejected"], imported["rejects"][0]["column"]) == (1, 1, "name")
    with db.read() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.object_type == "lead")))
    actions = [(e.action, e.details.get("change")) for e in entries]
    assert ("denied", None) in actions and ("change", "convert") in actions and ("import", None) in actions
    export = next(e for e in entries if e.action == "export")
    assert export.details["count"] == 1 and export.details["filters"] == ["q"]
    assert not any("wei@example.com" in str(e.details) or "Ann" in str(e.details) for e in entries)


def sign_in(http: httpx.Client, email: str) -> str:
    form = http.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    http.post("/login", data={"email": email, "password": "correct horse battery", "csrf": csrf.group(1)})
    page = re.search(r'name="csrf" value="([^"]+)"', http.get("/leads").text)
    assert page
    return page.group(1)


def test_pages_lists_forms_board_and_the_360_panel(
    db: Database, settings: Settings, team: Team, http: httpx.Client
) -> None:
    csrf = sign_in(http, "agent1@example.com")
    refused = http.post("/leads/new", data={"csrf": csrf, "name": "", "email": ""})
    assert refused.status_code == 400 and "name: is required" in refused.text
    saved = http.post(
        "/leads/new", data={"csrf": csrf, "name": "Wei", "email": "wei@example.com", "status": "new"}
    )
    assert saved.status_code == 303
    lead_id = int(saved.headers["location"].rsplit("/", 1)[1])
    assert "Wei" in http.get("/leads").text and 'href="/leads"' in http.get("/leads").text
    converted = http.post(
        f"/leads/{lead_id}/convert",
        data={
            "csrf": csrf,
            "kind": "person",
            "with_deal": "on",
            "deal_name": "First order",
            "deal_amount": "99",
        },
    )
    assert converted.status_code == 303
    with db.read() as session:
        profile_id = session.scalar(select(Lead.profile_id).where(Lead.id == lead_id))
    # The person's profile keeps its own owner (customer scope); here it is the rep's too.
    assign_owner(db, team.viewer("admin"), [profile_id], team.ids["agent1"])
    board = http.get("/deals/board")
    assert "First order" in board.text and "<script>" not in board.text
    assert 'hx-get="/customers/' in http.get(f"/customers/{profile_id}").text
    panel = http.get(f"/customers/{profile_id}/sales", headers={"HX-Request": "true"}).text
    assert "First order" in panel and f"/leads/{lead_id}" in panel
    account_id = int(converted.headers["location"].rsplit("/", 1)[1])
    account_page = http.get(f"/accounts/{account_id}").text
    deal_id = int(re.findall(r'href="/deals/(\d+)"', account_page)[0])
    for path in (f"/deals/{deal_id}", "/accounts", "/contacts", "/deals", "/leads/import", "/leads/new"):
        assert http.get(path).status_code == 200, path
    assert http.get(f"/leads/{lead_id}/convert").status_code == 200
    moved = http.post(f"/deals/{deal_id}/stage", data={"csrf": csrf, "stage": "proposal", "back": "board"})
    assert moved.status_code == 303 and "proposal" in http.get(f"/deals/{deal_id}").text
    lost = http.post(f"/deals/{deal_id}/close", data={"csrf": csrf, "status": "lost", "lost_reason": ""})
    assert lost.status_code == 400 and "lost_reason" in lost.text
    imported = http.post(
        "/leads/import",
        data={"csrf": csrf, "mode": "skip"},
        files={"file": ("l.csv", _csv([["name", "email"], ["", "a@example.com"]]))},
    )
    assert imported.status_code == 200 and "rejects" in imported.text
    other = create_record(db, team.viewer("agent2"), "lead", {"name": "Theirs"}, settings=settings, now=T0)
    assert http.get(f"/leads/{other['id']}").status_code == 404
    assert http.get("/leads/export.csv").status_code == 403


# -- erasure --------------------------------------------------------------------------------------------
def test_erasing_a_person_anonymises_their_leads_and_person_account_and_deletes_contacts(
    db: Database, settings: Settings, team: Team
) -> None:
    agent = team.viewer("agent1")
    made = lead(db, settings, agent, name="Li Na", email="li@example.com", company=None)
    converted = convert_lead(
        db, agent, made["id"], kind="person", deal={"amount": 50}, settings=settings, now=T0
    )
    company = create_record(db, agent, "account", {"name": "Acme"}, settings=settings, now=T0)
    create_record(
        db,
        agent,
        "contact",
        {"name": "Li Na", "email": "li@example.com", "account_id": company["id"]},
        settings=settings,
        now=T0,
    )
    exported = export_person(db, made["profile_id"])
    assert exported["leads"][0]["email"] == "li@example.com" and len(exported["contacts"]) == 2
    assert exported["accounts"][0]["name"] == "Li Na" and exported["deals"][0]["amount"] == 50
    erase_person(db, settings, made["profile_id"], now=T0)
    with db.read() as session:
        assert session.scalars(select(Contact)).all() == []
        erased = session.get(Lead, made["id"])
        assert erased is not None and (erased.name, erased.email, erased.profile_id) == (
            "(erased)",
            None,
            None,
        )
        person = session.get(SalesAccount, converted["converted_account_id"])
        assert person is not None and (person.name, person.profile_id) == ("(erased)", None)
        assert session.get(SalesAccount, company["id"]) is not None  # the company is not personal data
    deal = get_record(db, SYSTEM, "deal", converted["converted_deal_id"])
    assert deal["amount"] == 50 and deal["name"] == "(erased)"
