"""Retention on SQLite and PostgreSQL: each data class loses exactly the rows older than its cutoff (an
injected clock puts rows a second before and exactly at it), a dry run removes nothing, the daily job
runs it and audits it, and the REST API, the settings page and `threadline privacy` change the policy,
refusing what is not one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from tests.conftest import LiveServer
from tests.factories import lookup_profile, make_source, make_token, profile_view, send
from tests.test_web_pages import csrf_of, sign_in
from threadline.cli.main import app
from threadline.clock import utcnow
from threadline.config import Settings, get_settings
from threadline.errors import Invalid
from threadline.jobs import DONE, Worker, handlers, list_jobs, schedules_for
from threadline.privacy import (
    apply_retention,
    get_retention_policy,
    queue_retention_run,
    retention_report,
    search_audit,
    set_retention_policy,
)
from threadline.storage import Database
from threadline.storage.models import (
    Event,
    MatchCandidate,
    QuarantinedMessage,
    SignInFailure,
    User,
    UserSession,
)

NOW = datetime(2025, 1, 15, 12, 0, 0)
SECOND = timedelta(seconds=1)


def days_ago(days: int, extra: timedelta = timedelta(0)) -> datetime:
    return NOW - timedelta(days=days) - extra


def count(db: Database, model: Any) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def quarantine(db: Database, *times: datetime) -> None:
    with db.write() as session:
        session.execute(
            insert(QuarantinedMessage),
            [
                {"received_at": at, "reason": "no type", "payload": '{"email": "a@example.com"}'}
                for at in times
            ],
        )


def a_user(db: Database) -> int:
    with db.write() as session:
        user = User(email="staff@example.com", role="agent", created_at=NOW, is_active=True, failed_logins=0)
        session.add(user)
        session.flush()
        return user.id


def sessions(db: Database, user_id: int, rows: dict[str, tuple[datetime, datetime | None]]) -> None:
    """Session id -> (last seen, revoked at)."""
    with db.write() as session:
        for key, (seen, revoked) in rows.items():
            session.add(
                UserSession(
                    id=key,
                    user_id=user_id,
                    created_at=seen,
                    last_seen_at=seen,
                    ip="10.0.0.1",
                    revoked_at=revoked,
                )
            )


def failures(db: Database, rows: dict[str, tuple[datetime, datetime | None]]) -> None:
    """Key -> (updated at, locked until)."""
    with db.write() as session:
        for key, (at, locked) in rows.items():
            session.add(SignInFailure(key=key, failures=1, locked_until=locked, updated_at=at))


def pairs(db: Database, rows: list[tuple[str, str, datetime | None]]) -> None:
    """(pair name, status, decided at)."""
    with db.write() as session:
        for name, status, decided in rows:
            session.add(
                MatchCandidate(
                    left_id=f"{name}-l",
                    right_id=f"{name}-r",
                    status=status,
                    match_probability=0.9,
                    match_weight=3.0,
                    evidence={"prior": -2, "comparisons": [{"comparison": "email", "left": "a@x.cn"}]},
                    run_id=1,
                    created_at=days_ago(400),
                    scored_at=days_ago(400),
                    decided_at=decided,
                )
            )


def candidates(db: Database) -> dict[str, tuple[str, dict[str, Any]]]:
    with db.read() as session:
        return {c.left_id[:-2]: (c.status, c.evidence) for c in session.scalars(select(MatchCandidate))}


def identify(at: datetime, user: str) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "timestamp": f"{at.isoformat()}Z", "traits": {"plan": "pro"}}


def test_each_class_loses_exactly_the_rows_older_than_its_cutoff(db: Database, settings: Settings) -> None:
    web = make_source(db)
    for at in (days_ago(30, SECOND), days_ago(30), days_ago(3)):
        send(db, settings, web, identify(at, "u1"))
    customer = lookup_profile(db, "user_id", "u1")
    quarantine(db, days_ago(7, SECOND), days_ago(7), days_ago(1))
    staff = a_user(db)
    sessions(
        db,
        staff,
        {
            "revoked-old": (days_ago(2, SECOND), days_ago(2, SECOND)),
            "revoked-at-cutoff": (days_ago(2), days_ago(2)),
            "open": (days_ago(2, SECOND), None),  # idle for less than the idle limit: still signed in
            "idle": (days_ago(20), None),  # idle past the limit: ended
        },
    )
    failures(
        db,
        {
            "old": (days_ago(1, SECOND), None),
            "at-cutoff": (days_ago(1), None),
            "still-locked": (days_ago(5), NOW + timedelta(minutes=5)),  # a lock is never forgotten early
        },
    )
    pairs(
        db,
        [
            ("merged-old", "merged", days_ago(10, SECOND)),
            ("obsolete-old", "obsolete", days_ago(10, SECOND)),
            ("rejected-old", "rejected", days_ago(10, SECOND)),
            ("merged-at-cutoff", "merged", days_ago(10)),
            ("pending", "pending", None),
        ],
    )
    policy = {"events": 30, "quarantine": 7, "sessions": 2, "sign_in_failures": 1, "match_candidates": 10}
    set_retention_policy(db, policy, user_id=None, now=NOW)
    expected = {"events": 1, "quarantine": 1, "sessions": 2, "sign_in_failures": 1, "match_candidates": 3}

    dry = retention_report(db, now=NOW)
    assert not dry.applied and dry.counts() == expected
    lines = {line.data_class: line for line in dry.lines}
    assert lines["events"].cutoff == days_ago(30) and lines["events"].oldest == days_ago(30, SECOND)
    assert lines["quarantine"].oldest == days_ago(7, SECOND)
    assert lines["sessions"].oldest == days_ago(20)  # the open session is no candidate at all
    assert (count(db, Event), count(db, QuarantinedMessage), count(db, UserSession)) == (3, 3, 4)
    assert search_audit(db, action="retention") == []  # a dry run is no run

    done = apply_retention(db, now=NOW, chunk=2)
    assert done.applied and done.counts() == expected
    with db.read() as session:
        assert sorted(session.scalars(select(Event.timestamp))) == [days_ago(30), days_ago(3)]
        assert sorted(session.scalars(select(QuarantinedMessage.received_at))) == [days_ago(7), days_ago(1)]
        assert set(session.scalars(select(UserSession.id))) == {"revoked-at-cutoff", "open"}
        assert set(session.scalars(select(SignInFailure.key))) == {"at-cutoff", "still-locked"}
    left = candidates(db)
    assert set(left) == {"rejected-old", "merged-at-cutoff", "pending"}
    # A rejected pair keeps its row, so the resolver never suggests it again; its evidence goes.
    assert left["rejected-old"] == ("rejected", {}) and left["pending"][1]["comparisons"]
    # The customer stays, with the counts of their whole life.
    summary = profile_view(db, customer)["summary"]
    assert summary["event_count"] == 3 and summary["channels"]["web"]["events"] == 3

    again = apply_retention(db, now=NOW)
    assert set(again.counts().values()) == {0}
    [first, second] = search_audit(db, action="retention")[::-1]
    assert first.user_email is None and first.details["removed"] == expected
    assert first.details["via"] == "worker" and first.details["policy"]["events"] == 30
    assert set(second.details["removed"].values()) == {0}


def test_the_defaults_keep_events_and_a_class_kept_forever_loses_nothing(db: Database) -> None:
    policy = get_retention_policy(db)
    assert dict(policy.days) == {
        "events": None,
        "quarantine": 30,
        "sessions": 90,
        "sign_in_failures": 30,
        "match_candidates": 365,
    }
    assert policy.updated_at is None
    quarantine(db, days_ago(31), days_ago(29))
    set_retention_policy(db, {"quarantine": None}, user_id=None, now=NOW)
    line = retention_report(db, now=NOW).lines[1]
    assert (line.data_class, line.days, line.cutoff, line.rows, line.oldest) == (
        "quarantine",
        None,
        None,
        0,
        days_ago(31),
    )
    assert apply_retention(db, now=NOW).counts()["quarantine"] == 0 and count(db, QuarantinedMessage) == 2
    # Other classes keep their values when one is changed.
    assert get_retention_policy(db).days["sessions"] == 90


def test_a_policy_is_checked_naming_the_class(db: Database) -> None:
    def refused(changes: dict[str, Any]) -> str:
        with pytest.raises(Invalid) as error:
            set_retention_policy(db, changes, user_id=None, now=NOW)
        assert error.value.message.startswith(f"{error.value.details['field']}: ")
        return str(error.value.details["field"])

    assert refused({"evnts": 30}) == "evnts"
    assert refused({"events": -1}) == "events"
    assert refused({"events": 0}) == "events"
    assert refused({"quarantine": 2.5}) == "quarantine"
    assert refused({"quarantine": "30"}) == "quarantine"
    assert refused({"sessions": True}) == "sessions"
    assert refused({"sessions": 36_501}) == "sessions"
    assert refused({"events": 30, "audit_log": 30}) == "audit_log"  # the audit log is never removed
    assert get_retention_policy(db).updated_at is None  # nothing was saved


def test_the_daily_job_runs_retention(db: Database, settings: Settings) -> None:
    quarantine(db, days_ago(31), days_ago(29))
    [daily] = [s for s in schedules_for(settings) if s.kind == "privacy.retention"]
    clock = {"at": NOW}
    worker = Worker(
        db,
        settings,
        clock=lambda: clock["at"],
        kinds={"privacy.retention": handlers()["privacy.retention"]},
        schedules=[daily],
    )
    [outcome] = worker.run_until_idle()
    assert (outcome.kind, outcome.status) == ("privacy.retention", DONE)
    assert count(db, QuarantinedMessage) == 1
    [job] = list_jobs(db, kind="privacy.retention")
    assert job.dedupe_key == "privacy.retention:2025-01-15T02:00"
    [entry] = search_audit(db, action="retention")
    assert entry.user_email is None and entry.details["removed"]["quarantine"] == 1
    assert worker.run_until_idle() == []  # once a day
    clock["at"] = NOW + timedelta(days=1)
    assert [o.status for o in worker.run_until_idle()] == [DONE]


@pytest.fixture
def admin_server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    with LiveServer(settings, db, clock=lambda: NOW) as live:
        yield live


@pytest.fixture
def api(admin_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=admin_server.url, timeout=30) as client:
        yield client


def test_the_rest_api_is_for_admins_validates_and_queues_a_run(
    db: Database, settings: Settings, api: httpx.Client
) -> None:
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'agent@example.com', 'agent')}"}
    assert api.get("/api/v1/retention").status_code == 401
    for method, path in (("GET", ""), ("PUT", ""), ("POST", "/run")):
        refused = api.request(method, f"/api/v1/retention{path}", json={"events": 1}, headers=agent)
        assert refused.status_code == 403, (method, path)
    quarantine(db, days_ago(31), days_ago(29))

    shown = api.get("/api/v1/retention", headers=admin).json()
    assert shown["policies"]["events"] is None and shown["updated_at"] is None
    line = next(line for line in shown["report"] if line["data_class"] == "quarantine")
    assert line == {
        "data_class": "quarantine",
        "label": "Quarantined messages",
        "days": 30,
        "cutoff": "2024-12-16T12:00:00Z",
        "rows": 1,
        "oldest": "2024-12-15T12:00:00Z",
    }

    for body, field in (
        ({"evnts": 30}, "evnts"),
        ({"quarantine": -5}, "quarantine"),
        ({"events": "2y"}, "events"),
    ):
        bad = api.put("/api/v1/retention", json=body, headers=admin)
        assert bad.status_code == 400, body
        assert bad.json()["error"]["details"] == {"field": field}
        assert bad.json()["error"]["message"].startswith(f"{field}: ")
    saved = api.put("/api/v1/retention", json={"events": 730, "quarantine": None}, headers=admin)
    assert saved.status_code == 200
    assert saved.json()["policies"]["events"] == 730 and saved.json()["policies"]["quarantine"] is None
    assert saved.json()["updated_at"] == "2025-01-15T12:00:00Z"
    [change] = search_audit(db, action="change", object_id="privacy.retention")
    assert change.user_email == "admin@example.com" and change.details["policies"]["events"] == 730

    api.put("/api/v1/retention", json={"quarantine": 30}, headers=admin)
    queued = api.post("/api/v1/retention/run", headers=admin)
    assert queued.status_code == 202 and queued.json()["queued"] is True
    assert api.post("/api/v1/retention/run", headers=admin).json() == {"queued": False, "job_id": None}
    worker = Worker(db, settings, clock=lambda: NOW, kinds=handlers(), schedules=[])
    assert [(o.kind, o.status) for o in worker.run_until_idle()] == [("privacy.retention", DONE)]
    assert count(db, QuarantinedMessage) == 1
    [run] = search_audit(db, action="retention")
    assert run.user_email is None and run.details["requested_by"] is not None and run.details["via"] == "api"


def test_the_settings_page_is_for_admins_saves_and_queues(db: Database, api: httpx.Client) -> None:
    make_token(db)
    make_token(db, "agent@example.com", "agent")
    quarantine(db, days_ago(31))
    sign_in(api, "agent@example.com")
    assert api.get("/settings/retention").status_code == 403
    refused = api.post(
        "/settings/retention", data={"csrf": csrf_of(api.get("/customers").text), "days_events": "1"}
    )
    assert refused.status_code == 403 and get_retention_policy(db).updated_at is None
    assert "/settings/retention" not in api.get("/customers").text  # no nav link for agents
    api.post("/logout", data={"csrf": csrf_of(api.get("/customers").text)})

    sign_in(api)
    page = api.get("/settings/retention")
    assert page.status_code == 200
    assert "Quarantined messages" in page.text and 'name="days_quarantine" value="30"' in page.text
    assert 'href="/settings/retention"' in page.text
    form = {f"days_{name}": "" for name in get_retention_policy(db).days}
    form |= {"csrf": csrf_of(page.text), "days_events": "730", "days_quarantine": "-3"}
    bad = api.post("/settings/retention", data=form)
    assert bad.status_code == 400 and "quarantine: must be a whole number" in bad.text
    assert 'name="days_events" value="730"' in bad.text  # what was typed stays
    form["days_quarantine"] = "7"
    saved = api.post("/settings/retention", data=form)
    assert saved.status_code == 303 and saved.headers["location"] == "/settings/retention?done=saved"
    days = get_retention_policy(db).days
    assert (days["events"], days["quarantine"], days["sessions"]) == (730, 7, None)  # empty: forever
    [change] = search_audit(db, action="change", object_id="privacy.retention")
    assert change.details["via"] == "web"

    run = api.post("/settings/retention/run", data={"csrf": csrf_of(api.get("/settings/retention").text)})
    assert run.status_code == 303 and run.headers["location"] == "/settings/retention?done=queued"
    assert [j.kind for j in list_jobs(db)] == ["privacy.retention"]
    assert "A retention run is queued" in api.get(run.headers["location"]).text


@pytest.fixture
def run(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_the_cli_reports_applies_and_changes_the_policy(run: CliRunner, db: Database) -> None:
    now = utcnow()
    quarantine(db, now - timedelta(days=40), now - timedelta(days=1))
    dry = run.invoke(app, ["privacy", "retention"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "quarantine" in dry.output and "30 days" in dry.output
    assert count(db, QuarantinedMessage) == 2

    for arguments, message in (
        (["--set", "evnts=30"], "error: evnts: not a data class; choose from events, quarantine"),
        (["--set", "events=-1"], "error: events: must be a whole number of days from 1 to 36500"),
        (["--set", "events=two"], "error: events: must be a whole number"),
        (["--set", "events"], "error: --set events: write CLASS=DAYS"),
    ):
        refused = run.invoke(app, ["privacy", "retention-policy", *arguments])
        assert refused.exit_code == 1 and refused.output.strip().startswith(message), refused.output
    assert get_retention_policy(db).updated_at is None

    changed = run.invoke(
        app, ["privacy", "retention-policy", "--set", "events=730", "--set", "sessions=forever"]
    )
    assert changed.exit_code == 0, changed.output
    assert "730 days" in changed.output
    days = get_retention_policy(db).days
    assert (days["events"], days["sessions"], days["quarantine"]) == (730, None, 30)

    applied = run.invoke(app, ["privacy", "retention", "--apply"])
    assert applied.exit_code == 0, applied.output
    assert count(db, QuarantinedMessage) == 1
    [entry] = search_audit(db, action="retention")
    assert entry.details["via"] == "cli" and entry.details["removed"]["quarantine"] == 1


def test_a_run_asked_for_twice_in_a_minute_is_queued_once(db: Database) -> None:
    assert queue_retention_run(db, requested_by=None, via="web", now=NOW) is not None
    assert queue_retention_run(db, requested_by=None, via="web", now=NOW + timedelta(seconds=30)) is None
    assert queue_retention_run(db, requested_by=None, via="web", now=NOW + timedelta(minutes=1)) is not None
