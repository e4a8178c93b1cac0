"""`threadline privacy ...`: retention of personal data (and, beside it, the other privacy chores)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.progress import MofNCompleteColumn, TimeElapsedColumn
from rich.table import Table

from threadline.cli.common import console, database, one_line_errors, progress_bar
from threadline.clock import utcnow
from threadline.errors import Invalid
from threadline.privacy import (
    DATA_CLASSES,
    RETENTION_POLICY_KEY,
    Actor,
    RetentionReport,
    apply_retention,
    get_retention_policy,
    record,
    retention_report,
    set_retention_policy,
)

privacy = typer.Typer(help="Privacy: how long personal data is kept.", no_args_is_help=True)
FOREVER = ("forever", "null", "none", "keep")  # what --set takes for "keep forever"


@privacy.command("retention")
@one_line_errors
def retention(
    apply: bool = typer.Option(False, "--apply", help="Remove the rows; without it, only report them."),
) -> None:
    """Report, per data class, what the retention policy would remove now (a dry run), or remove it
    with --apply. The daily `privacy.retention` job does the same in the background."""
    with database() as db:
        if not apply:
            _print(retention_report(db, now=utcnow()))
            return
        with progress_bar(MofNCompleteColumn(), TimeElapsedColumn()) as progress:
            task = progress.add_task("starting", total=None)

            def report(name: str, done: int, total: int) -> None:
                progress.update(task, description=name, completed=done, total=total)

            done = apply_retention(db, now=utcnow(), via="cli", progress=report)
        _print(done)


def _parse(assignment: str) -> tuple[str, Any]:
    name, equals, days = assignment.partition("=")
    name, days = name.strip(), days.strip()
    if not equals or not name:
        raise Invalid(f"--set {assignment}: write CLASS=DAYS, e.g. events=730", details={"field": "set"})
    if days.lower() in FOREVER:
        return name, None
    # Anything else that is not a whole number is refused by the policy's check, naming the class.
    return name, int(days) if days.lstrip("-").isdigit() else days


@privacy.command("retention-policy")
@one_line_errors
def retention_policy(
    assignments: list[str] = typer.Option(
        [],
        "--set",
        help="CLASS=DAYS, e.g. events=730, or CLASS=forever; repeat for more classes.",
    ),
) -> None:
    """Show the days kept per data class, or change them with --set."""
    with database() as db:
        if assignments:
            changes = dict(_parse(a) for a in assignments)
            now = utcnow()
            policy = set_retention_policy(db, changes, user_id=None, now=now)
            details = {"action": "retention_policy", "policies": dict(policy.days), "via": "cli"}
            record(
                db, Actor(None), "change", "workspace_settings", RETENTION_POLICY_KEY, at=now, details=details
            )
        else:
            policy = get_retention_policy(db)
    table = Table("data class", "kept for", "what it is")
    for kind in DATA_CLASSES:
        days = policy.days.get(kind.name)
        table.add_row(kind.name, "forever" if days is None else f"{days} days", kind.label)
    console.print(table)


def _print(report: RetentionReport) -> None:
    title = "removed" if report.applied else "would remove (dry run; --apply removes)"
    table = Table("data class", "kept for", "older than", title, "oldest row")
    for line in report.lines:
        table.add_row(
            line.data_class,
            "forever" if line.days is None else f"{line.days} days",
            _when(line.cutoff),
            f"{line.rows:,}",
            _when(line.oldest),
        )
    console.print(table)


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else ""
