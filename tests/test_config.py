"""Every setting is documented in one place (docs/configuration.md) and parsed as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from threadline.cli.main import app
from threadline.config import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_setting_has_a_description_and_a_line_in_the_docs() -> None:
    documented = DOCS.read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"`THREADLINE_{name.upper()}`" in documented, f"{name} is missing from docs/configuration.md"
        assert field.description in documented, f"the description of {name} in the docs is stale"


def test_environment_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_IDENTIFIER_KINDS", "loyalty_id, device_id")
    monkeypatch.setenv("THREADLINE_IDENTITY_LIMITS", '{"user_id": 1, "email": 3}')
    monkeypatch.setenv("THREADLINE_DEFAULT_REGION", "CN")
    settings = Settings()
    assert settings.identifier_kinds == ["loyalty_id", "device_id"]
    assert settings.identity_limits == {"user_id": 1, "email": 3}
    assert settings.default_region == "CN"


def test_placeholder_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADLINE_SECRET_KEY", "changeme")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


def test_threadline_config_prints_every_variable_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline.config import get_settings

    monkeypatch.setenv("THREADLINE_ADMIN_PASSWORD", "hunter2-very-secret")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["config"], env={"COLUMNS": "300"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    for name in Settings.model_fields:
        assert f"THREADLINE_{name.upper()}" in result.output
