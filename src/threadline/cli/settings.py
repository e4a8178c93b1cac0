"""`threadline config`: every setting, its value and what it does."""

from __future__ import annotations

from rich.table import Table

from threadline.cli.common import console
from threadline.config import Settings, get_settings

SECRET_FIELDS = {
    "secret_key",
    "admin_password",
    "privacy_key",
    "encryption_keys",
    "smtp_password",
    "provider_webhook_secret",
}


def show_config() -> None:
    """Print every setting (environment variable, current value, description)."""
    settings = get_settings()
    table = Table("variable", "value", "description")
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        shown = ("(set)" if value else "(empty)") if name in SECRET_FIELDS else str(value)
        table.add_row(f"THREADLINE_{name.upper()}", shown, field.description or "")
    console.print(table)
