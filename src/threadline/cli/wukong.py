"""`threadline import-wukong FILE --kind ...`: move customers, contacts, leads and follow-ups over from a
WukongCRM (悟空CRM) export (threadline.sales.wukong)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import MofNCompleteColumn, TimeRemainingColumn
from sqlalchemy import func, select

from threadline.accounts import Viewer, viewer_for
from threadline.cli.common import console, database, one_line_errors, progress_bar
from threadline.clock import utcnow
from threadline.config import get_settings
from threadline.errors import Invalid
from threadline.privacy import Actor, record
from threadline.sales import WUKONG_KINDS, WukongOutcome, import_wukong, parse_owner_map
from threadline.storage import Database
from threadline.storage.models import User


@one_line_errors
def import_wukong_file(
    file: Path = typer.Argument(..., help="The .xlsx or .csv file WukongCRM exported."),
    kind: str = typer.Option(..., help=f"What the file holds: {', '.join(WUKONG_KINDS)}."),
    mode: str = typer.Option("skip", help="What a row repeating a record does: skip, update or create."),
    owner_map: list[str] = typer.Option(
        [], "--owner-map", help="NAME=EMAIL: the Threadline user of a Wukong owner (负责人), repeatable."
    ),
    as_user: str | None = typer.Option(
        None, "--as", help="Import as this user (EMAIL): unowned records become theirs."
    ),
) -> None:
    """Import a WukongCRM export; bad rows go to FILE.rejects.csv with their line and column.

    Import customers first, then contacts and follow-ups (they find their customer by 客户名称).

    Owners (负责人) are matched by user name or email; an unknown one leaves the record unowned.

    With --as, unowned records are that user's. Importing the same file again stores nothing twice.
    """
    settings = get_settings()
    now = utcnow()
    with database() as db:
        viewer = _viewer(db, as_user)
        with progress_bar(MofNCompleteColumn(), TimeRemainingColumn()) as progress:
            task = progress.add_task(file.name, total=None)
            outcome = import_wukong(
                db,
                viewer,
                kind,
                file.name,
                file.read_bytes(),
                mode=mode,
                owner_map=parse_owner_map(owner_map),
                settings=settings,
                now=now,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        actor = Actor(viewer.user_id, user_agent="threadline cli")
        details = {"via": "cli", **outcome.summary()}
        record(db, actor, "import", outcome.object_type, None, at=now, details=details)
    rejects = None
    if outcome.rejects:
        rejects = file.with_name(file.name + ".rejects.csv")
        rejects.write_bytes(outcome.rejects_file("csv"))
    console.print(_summary(file, outcome, rejects), highlight=False, soft_wrap=True)


def _viewer(db: Database, email: str | None) -> Viewer:
    if email is None:
        return Viewer.system()
    with db.read() as session:
        user = session.execute(
            select(User.id, User.role).where(func.lower(User.email) == email.strip().lower(), User.is_active)
        ).first()
    if user is None:
        raise Invalid(f"--as: no active user {email!r}")
    return viewer_for(db, user.id, user.role)


def _summary(file: Path, outcome: WukongOutcome, rejects: Path | None) -> str:
    line = (
        f"{file.name}: {outcome.rows} rows, {outcome.created} created, {outcome.updated} updated, "
        f"{outcome.skipped} skipped (already there), {len(outcome.rejects)} rejected"
    )
    for notice in outcome.warnings:
        line += f"\nline {notice.row}, {notice.column}: {notice.message}"
    if outcome.ignored:
        line += f"\ncolumns not imported: {', '.join(outcome.ignored)}"
    if rejects is not None:
        line += f"\nrejected rows with their line, column and reason: {rejects}"
    return line
