"""The `threadline` command. Each group lives in its own module; this file only assembles them."""

from __future__ import annotations

import typer

from threadline import __version__
from threadline.cli import (
    accounts,
    analytics,
    demo,
    imports,
    jobs,
    privacy,
    privacy_keys,
    profiles,
    resolve,
    serve,
    settings,
    smtp,
    sources,
    worker,
    wukong,
)
from threadline.cli.common import console, one_line_errors, open_db

app = typer.Typer(
    help="Threadline: omnichannel CRM and customer data platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_group = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_group.command("upgrade")
@one_line_errors
def db_upgrade() -> None:
    """Apply migrations to the configured database."""
    open_db().dispose()
    console.print("database is at the latest schema")


@app.command("version")
def version() -> None:
    """Print the version."""
    print(__version__)


app.add_typer(db_group, name="db")
app.add_typer(accounts.users, name="users")
app.add_typer(accounts.tokens, name="tokens")
app.add_typer(accounts.teams, name="teams")
app.add_typer(sources.sources, name="sources")
app.add_typer(sources.quarantine, name="quarantine")
app.add_typer(profiles.profiles, name="profiles")
app.add_typer(jobs.jobs, name="jobs")
app.add_typer(privacy.privacy, name="privacy")
app.add_typer(analytics.analytics, name="analytics")
privacy.privacy.command("rotate-keys")(privacy_keys.rotate_encryption_keys)
app.command("config")(settings.show_config)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("smtp")(smtp.smtp)
app.command("demo")(demo.demo)
app.command("import")(imports.import_file)
app.command("import-wukong")(wukong.import_wukong_file)
app.command("resolve")(resolve.resolve)
app.command("bootstrap", hidden=True)(serve.bootstrap)
