"""`threadline serve` and the first-run bootstrap that `make run` uses."""

from __future__ import annotations

import secrets

import typer
import uvicorn
from sqlalchemy import func, select

from threadline.accounts import count_users, create_user
from threadline.app import create_app
from threadline.cli.common import console, database, one_line_errors, open_db
from threadline.cli.worker import log_to_stderr
from threadline.clock import utcnow
from threadline.config import get_settings
from threadline.demo import generate_demo
from threadline.ingest import list_sources
from threadline.service import InboundMailServer
from threadline.storage.models import Profile


@one_line_errors
def serve(
    host: str = typer.Option("127.0.0.1", envvar="HOST", help="Interface to listen on."),
    port: int = typer.Option(8000, envvar="PORT", help="HTTP port."),
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Run no background worker in this process (run `threadline worker`)."
    ),
) -> None:
    """Serve the web workspace, the ingestion API and the REST API, with the background worker in a
    thread unless --no-worker, and the inbound SMTP server when THREADLINE_SMTP_INBOUND_PORT is set."""
    settings = get_settings()
    db = open_db()
    log_to_stderr()
    console.print(f"Threadline on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    app = create_app(settings, db=db, worker=not no_worker)
    # The inbound SMTP server runs in a thread of its own beside HTTP, for as long as uvicorn does.
    inbound = InboundMailServer(db, settings) if settings.smtp_inbound_port else None
    if inbound is not None:
        inbound.start()
        console.print(f"inbound SMTP on {inbound.host}:{inbound.port}")
    try:
        # Access logs would write query strings such as ?email=... to disk: no PII in logs.
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
    finally:
        if inbound is not None:
            inbound.stop()


@one_line_errors
def bootstrap(
    customers: int = typer.Option(None, help="Demo customers to load into an empty database."),
    locale: str = typer.Option("en_US", help="en_US or zh_CN."),
) -> None:
    """First run: create the first admin and a demo data set if the database is empty; print them."""
    settings = get_settings()
    with database() as db:
        if count_users(db) == 0:
            password = settings.admin_password or secrets.token_urlsafe(12)
            create_user(db, settings.admin_email, "admin", password, now=utcnow())
            console.print(f"[bold]first admin[/bold]: {settings.admin_email}  password: {password}")
            console.print("  (shown once; set THREADLINE_ADMIN_PASSWORD to choose it)")
        with db.read() as session:
            empty = not session.scalar(select(func.count()).select_from(Profile))
        if empty:
            count = customers if customers is not None else settings.demo_customers
            report = generate_demo(db, settings, customers=count, seed=7, locale=locale, progress=True)
            console.print(f"loaded demo data: {report}")
        console.print("[bold]write keys[/bold] (HTTP Basic username for /v1/*):")
        for source in list_sources(db):
            console.print(f"  {source.name:<16} {source.channel:<12} {source.write_key}")
