"""Data subject requests end to end: logged, verified, carried out (access, rectification, erasure,
restriction, objection), reminded; through the domain, the REST API and the pages, both databases."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from tests.conftest import LiveServer
from tests.factories import lookup_profile, make_source, make_token, profile_view, send
from tests.test_web_pages import csrf_of, sign_in
from threadline.accounts import Viewer, create_user
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.errors import Conflict, Invalid, NotFound
from threadline.jobs import DONE, Worker, handlers, schedules_for
from threadline.privacy import (
    carry_out,
    check_send,
    create_request,
    get_request,
    lift_restriction,
    record_consent,
    remind_due,
    search_audit,
    statement,
    verify_request,
)
from threadline.storage import Database

NOW = datetime(2026, 12, 1, 9, 0, 0)


def customer(db: Database, settings: Settings) -> str:
    source = make_source(db)
    send(
        db,
        settings,
        source,
        {
            "type": "identify",
            "userId": "u-77",
            "messageId": "m1",
            "traits": {"email": "ivy@example.com", "name": "Ivy Wong", "city": "Lyon"},
        },
    )
    return lookup_profile(db, "email", "ivy@example.com")


def verified(db: Database, settings: Settings, kind: str, **extra: object) -> int:
    request_id = create_request(
        db, settings, kind=kind, subject="IVY@example.com", received_at=NOW, user_id=None, **extra
    )  # type: ignore[arg-type]
    verify_request(db, request_id, method="email_confirmation", note=None, user_id=None, now=NOW)
    return request_id


def test_a_request_finds_its_customer_and_is_due_by_its_regulation(db: Database, settings: Settings) -> None:
    profile = customer(db, settings)
    gdpr = create_request(
        db, settings, kind="access", subject="ivy@example.com", received_at=NOW, user_id=None
    )
    ccpa = create_request(
        db, settings, kind="access", regulation="ccpa", subject="+1 nope", received_at=NOW, user_id=None
    )
    assert get_request(db, gdpr).profile_id == profile
    assert get_request(db, gdpr).due_at == NOW + timedelta(days=30)
    assert get_request(db, ccpa).due_at == NOW + timedelta(days=45)
    assert get_request(db, ccpa).profile_id is None
    assert [e["action"] for e in get_request(db, ccpa).log] == ["received", "subject_not_found"]
    with pytest.raises(Invalid) as bad:
        create_request(db, settings, kind="forget-me", subject="x", received_at=NOW, user_id=None)
    assert bad.value.details == {"field": "kind"}
    with pytest.raises(Invalid):
        create_request(
            db, settings, kind="rectification", subject="ivy@example.com", received_at=NOW, user_id=None
        )


def test_nothing_is_carried_out_before_verification(db: Database, settings: Settings) -> None:
    customer(db, settings)
    request_id = create_request(
        db, settings, kind="erasure", subject="ivy@example.com", received_at=NOW, user_id=None
    )
    with pytest.raises(Conflict):
        carry_out(db, settings, request_id, user_id=None, now=NOW)
    lookup_profile(db, "email", "ivy@example.com")  # still there


def test_erasure_request(db: Database, settings: Settings) -> None:
    customer(db, settings)
    request_id = verified(db, settings, "erasure")
    outcome = carry_out(db, settings, request_id, user_id=None, now=NOW)
    assert outcome["identifiers_suppressed"] == 2
    with pytest.raises(NotFound):
        lookup_profile(db, "email", "ivy@example.com")
    done = get_request(db, request_id)
    assert (done.status, done.subject, done.profile_id) == ("completed", None, None)
    with pytest.raises(Conflict):
        carry_out(db, settings, request_id, user_id=None, now=NOW)


def test_restriction_stops_sending_until_lifted(db: Database, settings: Settings) -> None:
    profile = customer(db, settings)
    record_consent(
        db, Viewer.system(), profile, [statement("marketing", "email", "granted")], source="test", now=NOW
    )
    with db.read() as session:
        assert check_send(session, profile, "email", "marketing").allowed
    carry_out(db, settings, verified(db, settings, "restriction"), user_id=None, now=NOW)
    with db.read() as session:
        assert not check_send(session, profile, "email", "marketing").allowed
        assert not check_send(session, profile, "email", "service").allowed
    assert lift_restriction(db, profile, user_id=None, now=NOW)
    with db.read() as session:
        assert check_send(session, profile, "email", "marketing").allowed


def test_objection_withdraws_consent_on_every_channel(db: Database, settings: Settings) -> None:
    profile = customer(db, settings)
    record_consent(
        db,
        Viewer.system(),
        profile,
        [statement("marketing", "email", "granted"), statement("marketing", "sms", "granted")],
        source="test",
        now=NOW - timedelta(days=1),
    )
    request_id = verified(db, settings, "objection", details={"purposes": ["marketing"]})
    assert carry_out(db, settings, request_id, user_id=None, now=NOW) == {"withdrawn": ["marketing"]}
    with db.read() as session:
        for channel in ("email", "sms", "post"):
            assert not check_send(session, profile, channel, "marketing").allowed


def test_rectification_corrects_traits_through_the_write_path(db: Database, settings: Settings) -> None:
    profile = customer(db, settings)
    request_id = verified(
        db, settings, "rectification", details={"traits": {"city": "Lille", "name": "Ivy Wang"}}
    )
    carry_out(db, settings, request_id, user_id=None, now=utcnow())
    view = profile_view(db, profile)
    assert view["traits"]["city"] == "Lille" and view["traits"]["name"] == "Ivy Wang"


def test_access_export_is_logged(db: Database, settings: Settings) -> None:
    customer(db, settings)
    request_id = verified(db, settings, "access")
    outcome = carry_out(db, settings, request_id, user_id=None, now=NOW)
    assert outcome["sections"]["identities"] == 2 and outcome["sections"]["events"] == 1


def test_reminders_for_requests_due_within_a_week(db: Database, settings: Settings) -> None:
    customer(db, settings)
    soon = create_request(
        db,
        settings,
        kind="access",
        subject="ivy@example.com",
        received_at=NOW - timedelta(days=25),
        user_id=None,
    )
    later = create_request(
        db, settings, kind="access", subject="ivy@example.com", received_at=NOW, user_id=None
    )
    assert remind_due(db, now=NOW) == [soon]
    assert remind_due(db, now=NOW + timedelta(hours=1)) == []  # once a day
    assert later not in remind_due(db, now=NOW + timedelta(days=22))  # due in 8 days
    assert later in remind_due(db, now=NOW + timedelta(days=24))


def test_the_api_is_for_admins_and_audited(db: Database, settings: Settings, server: LiveServer) -> None:
    customer(db, settings)
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'agent@example.com', 'agent')}"}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/api/v1/privacy-requests", headers=agent).status_code == 403
        bad = http.post(
            "/api/v1/privacy-requests", headers=admin, json={"kind": "nope", "subject": "ivy@example.com"}
        )
        assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "kind"}
        made = http.post(
            "/api/v1/privacy-requests", headers=admin, json={"kind": "erasure", "subject": "ivy@example.com"}
        )
        assert made.status_code == 201
        request_id = made.json()["id"]
        early = http.post(f"/api/v1/privacy-requests/{request_id}/carry-out", headers=admin)
        assert early.status_code == 409
        http.post(
            f"/api/v1/privacy-requests/{request_id}/verify", headers=admin, json={"method": "id_document"}
        )
        export = http.get(f"/api/v1/privacy-requests/{request_id}/export", headers=admin)
        assert export.status_code == 200 and export.json()["profile"]["traits"]["email"] == "ivy@example.com"
        done = http.post(f"/api/v1/privacy-requests/{request_id}/carry-out", headers=admin)
        assert done.status_code == 200 and done.json()["status"] == "completed"
        assert http.get("/api/v1/privacy/erasure-policy", headers=admin).json()["events"] == "anonymise"
        assert (
            http.put("/api/v1/privacy/erasure-policy", headers=admin, json={"events": "shred"}).status_code
            == 400
        )
    actions = {e.action for e in search_audit(db)}
    assert {"create", "export", "delete"} <= actions


def test_the_pages_walk_a_request_through(db: Database, settings: Settings, server: LiveServer) -> None:
    profile = customer(db, settings)
    create_user(db, "admin@example.com", "admin", "correct horse battery", now=utcnow())
    create_user(db, "agent@example.com", "agent", "correct horse battery", now=utcnow())
    with httpx.Client(base_url=server.url, timeout=30) as http:
        sign_in(http)
        page = http.get("/privacy")
        assert page.status_code == 200
        made = http.post(
            "/privacy",
            data={
                "csrf": csrf_of(page.text),
                "kind": "access",
                "regulation": "gdpr",
                "subject": "ivy@example.com",
            },
        )
        assert made.status_code == 303
        url = made.headers["location"]
        detail = http.get(url)
        assert profile in detail.text and "Verify" in detail.text
        too_soon = http.get(f"{url}/export")
        assert too_soon.status_code == 409
        http.post(f"{url}/verify", data={"csrf": csrf_of(detail.text), "method": "known_contact"})
        document = http.get(f"{url}/export")
        assert document.status_code == 200 and "ivy@example.com" in document.text and "Lyon" in document.text
        as_json = http.get(f"{url}/export?format=json")
        assert as_json.json()["profile_id"] == profile
        done = http.post(f"{url}/carry-out", data={"csrf": csrf_of(detail.text)})
        assert done.status_code == 303
        assert "completed" in http.get(url).text
    with httpx.Client(base_url=server.url, timeout=30) as http:
        sign_in(http, "agent@example.com")
        assert http.get("/privacy").status_code == 403


def test_the_worker_reminds_daily(db: Database, settings: Settings) -> None:
    customer(db, settings)
    soon = create_request(
        db,
        settings,
        kind="erasure",
        subject="ivy@example.com",
        received_at=NOW - timedelta(days=26),
        user_id=None,
    )
    [daily] = [s for s in schedules_for(settings) if s.kind == "privacy.request-reminders"]
    kind = "privacy.request-reminders"
    worker = Worker(db, settings, clock=lambda: NOW, kinds={kind: handlers()[kind]}, schedules=[daily])
    [outcome] = worker.run_until_idle()
    assert outcome.status == DONE
    assert [e["action"] for e in get_request(db, soon).log][-1] == "reminder"
