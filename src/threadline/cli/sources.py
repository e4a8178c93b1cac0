"""`threadline sources ...` and `threadline quarantine ...`."""

from __future__ import annotations

import typer
from rich.table import Table

from threadline.cli.common import console, database, one_line_errors
from threadline.clock import utcnow
from threadline.config import CHANNELS
from threadline.ingest import (
    activate_source,
    create_source,
    list_quarantine,
    list_sources,
    revoke_source,
    rotate_write_key,
)

sources = typer.Typer(
    help="Sources: one per channel feed, each with its own write key.", no_args_is_help=True
)
quarantine = typer.Typer(help="Messages rejected by validation, kept with the reason.", no_args_is_help=True)


@sources.command("create")
@one_line_errors
def sources_create(
    name: str, channel: str = typer.Option(..., help=f"One of: {', '.join(CHANNELS)}.")
) -> None:
    """Create a source and print its write key."""
    with database() as db:
        source = create_source(db, name, channel, now=utcnow())
    print(source.write_key)


@sources.command("list")
@one_line_errors
def sources_list() -> None:
    """List sources with their channel and write key."""
    with database() as db:
        rows = list_sources(db)
    table = Table("name", "channel", "write key", "created", "status")
    for s in rows:
        table.add_row(
            s.name,
            s.channel,
            s.write_key,
            f"{s.created_at:%Y-%m-%d %H:%M}",
            "revoked" if s.revoked else "active",
        )
    console.print(table)


@sources.command("rotate")
@one_line_errors
def sources_rotate(name: str) -> None:
    """Give a source a new write key and print it; the old key stops working (within 5 s in
    running servers, which cache keys briefly)."""
    with database() as db:
        source, _ = rotate_write_key(db, name)
    print(source.write_key)


@sources.command("revoke")
@one_line_errors
def sources_revoke(name: str) -> None:
    """Refuse a source's write key; its events and quarantine stay."""
    with database() as db:
        revoke_source(db, name, now=utcnow())
    print(f"revoked {name}")


@sources.command("activate")
@one_line_errors
def sources_activate(name: str) -> None:
    """Accept a revoked source's write key again."""
    with database() as db:
        activate_source(db, name)
    print(f"activated {name}")


@quarantine.command("list")
@one_line_errors
def quarantine_list(
    limit: int = typer.Option(50, help="How many, newest first."),
    source: str | None = typer.Option(None, help="Only this source."),
    payload: bool = typer.Option(False, help="Show the stored payload too."),
) -> None:
    """List quarantined messages with the field and reason."""
    with database() as db:
        rows = list_quarantine(db, limit=limit, source=source)
    table = Table(
        "id", "received", "source", "type", "messageId", "field", "reason", *(["payload"] if payload else [])
    )
    for q in rows:
        cells = [
            str(q.id),
            f"{q.received_at:%Y-%m-%d %H:%M:%S}",
            q.source or "-",
            q.type or "-",
            q.message_id or "-",
        ]
        cells += [q.field or "-", q.reason, *([q.payload[:500]] if payload else [])]
        table.add_row(*cells)
    console.print(table)
    if not rows:
        console.print("the quarantine is empty")
