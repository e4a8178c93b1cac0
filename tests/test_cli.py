"""The `threadline` command as a user runs it: exit codes, one-line errors, what it prints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from threadline.cli.main import app
from threadline.config import Settings, get_settings
from threadline.ingest import list_sources
from threadline.storage import Database


@pytest.fixture
def run(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_sources_create_prints_a_write_key_and_list_shows_it(run: CliRunner, db: Database) -> None:
    created = run.invoke(app, ["sources", "create", "till", "--channel", "store"])
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert len(key) >= 24 and [s.write_key for s in list_sources(db)] == [key]
    listed = run.invoke(app, ["sources", "list"])
    assert listed.exit_code == 0 and "till" in listed.output and key in listed.output


def test_bad_channel_and_duplicate_name_fail_with_one_line(run: CliRunner) -> None:
    bad = run.invoke(app, ["sources", "create", "x", "--channel", "fax"])
    assert bad.exit_code == 1
    assert bad.output.strip().startswith("error: channel: must be one of web, app, store")
    run.invoke(app, ["sources", "create", "till", "--channel", "store"])
    again = run.invoke(app, ["sources", "create", "till", "--channel", "store"])
    assert again.exit_code == 1 and "already exists" in again.output
    assert len(again.output.strip().splitlines()) == 1


def test_users_and_tokens(run: CliRunner) -> None:
    made = run.invoke(
        app,
        ["users", "create", "Ops@Example.com", "--role", "admin", "--password-stdin"],
        input="a long enough password\n",
    )
    assert made.exit_code == 0, made.output
    assert "created admin ops@example.com" in made.output
    short = run.invoke(
        app, ["users", "create", "b@example.com", "--role", "agent", "--password-stdin"], input="x\n"
    )
    assert short.exit_code == 1 and "password: must be at least 10 characters" in short.output
    role = run.invoke(
        app, ["users", "create", "c@example.com", "--role", "boss", "--password-stdin"], input="x" * 9
    )
    assert role.exit_code == 1 and "role: must be one of" in role.output
    token = run.invoke(app, ["tokens", "create", "ops@example.com"])
    assert token.exit_code == 0 and token.output.startswith("tl_")
    nobody = run.invoke(app, ["tokens", "create", "nobody@example.com"])
    assert nobody.exit_code == 1 and "no active user" in nobody.output


def test_quarantine_list_shows_field_and_reason(run: CliRunner, db: Database, settings: Settings) -> None:
    from tests.factories import make_source, send

    source = make_source(db)
    assert run.invoke(app, ["quarantine", "list"]).output.strip().endswith("the quarantine is empty")
    send(
        db,
        settings,
        source,
        {"type": "identify", "userId": "u", "traits": {"email": "nope"}, "messageId": "q-1"},
    )
    listed = run.invoke(app, ["quarantine", "list", "--payload"])
    assert listed.exit_code == 0
    for expected in ("traits.email", "not a valid email", "q-1", "website", '"nope"'):
        assert expected in listed.output


def test_bootstrap_creates_the_first_admin_and_demo_once(run: CliRunner, db: Database) -> None:
    first = run.invoke(app, ["bootstrap", "--customers", "12"])
    assert first.exit_code == 0, first.output
    assert "first admin" in first.output and "loaded demo data: 12 customers" in first.output
    assert "website" in first.output
    second = run.invoke(app, ["bootstrap", "--customers", "12"])
    assert second.exit_code == 0
    assert "first admin" not in second.output and "loaded demo data" not in second.output


def test_db_upgrade_and_version(run: CliRunner) -> None:
    assert run.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert run.invoke(app, ["version"]).output.strip() == "0.1.0"


def test_python_dash_m_threadline_runs_the_same_command() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "threadline", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "sources" in result.stdout and "import" in result.stdout
