"""`threadline import FILE`: bring an offline channel's CSV or XLSX export into Threadline."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import MofNCompleteColumn, TimeRemainingColumn

from threadline.cli.common import console, database, one_line_errors, progress_bar
from threadline.config import get_settings
from threadline.errors import Invalid
from threadline.ingest import ImportReport, get_source, load_mapping
from threadline.ingest import import_file as run_import


@one_line_errors
def import_file(
    file: Path = typer.Argument(..., help="A .csv (UTF-8; comma, semicolon or tab) or .xlsx file."),
    source: str = typer.Option(..., help="Name of the source the rows come from (its channel is theirs)."),
    kind: str = typer.Option(
        "identify", help="Message type of each row: identify, track, page, screen, group."
    ),
    map: list[str] = typer.Option([], "--map", help="FIELD=COLUMN, repeatable"),
    mapping: Path | None = typer.Option(None, help='A .json or .toml file of FIELD = "Column".'),
    event: str | None = typer.Option(None, help="Event name of every row of a track import."),
) -> None:
    """Import customers or events from a CSV/XLSX file; bad rows go to FILE.rejects.csv with reasons.

    Fields: userId, anonymousId, email, phone, name, first_name, last_name, timestamp, event, groupId.

    Also messageId, and traits.X, properties.X, context.X for any X.

    Common headers (Email, Mobile, 手机, 姓名, Customer ID...) are matched without a mapping.

    Other columns become traits (identify, group) or properties (track, page, screen).

    Importing the same file again stores nothing twice.
    """
    fields = load_mapping(mapping) if mapping is not None else {}
    fields.update(_map_items(map))
    settings = get_settings()
    with database() as db:
        info = get_source(db, source)
        with progress_bar(MofNCompleteColumn(), TimeRemainingColumn()) as progress:
            task = progress.add_task(file.name, total=None)
            report = run_import(
                db,
                settings,
                file,
                source=info,
                kind=kind,
                mapping=fields,
                event=event,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    console.print(_summary(file, report), highlight=False, soft_wrap=True)


def _map_items(items: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in items:
        target, sep, column = item.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise Invalid(f"--map {item!r}: expected FIELD=COLUMN, e.g. --map phone=Mobile")
        fields[target.strip()] = column.strip()
    return fields


def _summary(file: Path, report: ImportReport) -> str:
    duplicates = "duplicate" if report.duplicates == 1 else "duplicates"
    line = (
        f"{file.name}: {report.rows} {'row' if report.rows == 1 else 'rows'}, {report.accepted} accepted, "
        f"{report.duplicates} {duplicates} (already imported), {report.rejected} rejected"
    )
    if report.rejects_path is not None:
        line += f"; rejected rows with reasons: {report.rejects_path}"
    return line
