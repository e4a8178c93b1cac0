"""The audit log: sign-ins and account changes are recorded, admins search it, nobody edits it."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.factories import make_token
from tests.test_web_pages import csrf_of, sign_in
from threadline.app import create_app
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.privacy import Actor, record, search_audit
from threadline.storage import Database


def test_sign_ins_are_recorded_without_the_address_typed(http: httpx.Client, db: Database) -> None:
    make_token(db)
    form = http.get("/login").text
    http.post(
        "/login", data={"email": "someone@example.com", "password": "wrong-password", "csrf": csrf_of(form)}
    )
    sign_in(http)
    [failed] = search_audit(db, action="sign_in_failed")
    assert failed.user_email is None and "someone" not in str(failed.details) and failed.ip == "127.0.0.1"
    [signed] = search_audit(db, action="sign_in")
    assert signed.user_email == "admin@example.com" and signed.user_agent


def test_audit_page_and_api_are_for_admins(http: httpx.Client, db: Database) -> None:
    admin_token = make_token(db)
    agent_token = make_token(db, "agent@example.com", "agent")
    sign_in(http)
    page = http.get("/audit", params={"action": "sign_in"})
    assert page.status_code == 200 and "admin@example.com" in page.text and "sign_in" in page.text
    api = http.get(
        "/api/v1/audit", params={"action": "sign_in"}, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert api.status_code == 200 and api.json()["entries"][0]["user"] == "admin@example.com"
    refused = http.get("/api/v1/audit", headers={"Authorization": f"Bearer {agent_token}"})
    assert refused.status_code == 403
    http.post("/logout", data={"csrf": csrf_of(page.text)})
    sign_in(http, "agent@example.com")
    assert http.get("/audit").status_code == 403


def test_account_changes_are_recorded(http: httpx.Client, db: Database) -> None:
    make_token(db)
    sign_in(http)
    page = http.get("/account").text
    http.post("/account/tokens", data={"csrf": csrf_of(page), "name": "laptop"})
    assert [e.action for e in search_audit(db, action="token_create")] == ["token_create"]
    users = http.get("/users").text
    http.post("/users/invite", data={"csrf": csrf_of(users), "email": "new@example.com", "role": "agent"})
    [invite] = search_audit(db, action="invite")
    assert invite.details == {"role": "agent"} and invite.object_type == "user"


def test_no_route_can_change_the_audit_log(settings: Settings, db: Database) -> None:
    app = create_app(settings, db=db)
    for route in app.routes:
        path = getattr(route, "path", "")
        if re.search(r"audit", path):
            assert getattr(route, "methods", {"GET"}) <= {"GET", "HEAD"}, path


def test_the_database_refuses_to_change_or_delete_an_audit_entry(db: Database) -> None:
    """Append-only below the app too (storage/append_only.py): any SQL that reaches the database."""
    record(db, Actor(None), "view", "profile", "p1", at=utcnow())
    for statement in ("UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
            session.execute(text(statement))
    [entry] = search_audit(db)
    assert entry.action == "view"
