"""`threadline analytics ...`: bring in what Insight needs from outside (marketing spend), and check how
the models do on this workspace's own data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from threadline.analytics import Windows, evaluate_models, import_spend
from threadline.cli.common import console, database, one_line_errors, progress_bar
from threadline.clock import utcnow

analytics = typer.Typer(help="Insight: dashboards' inputs and models.", no_args_is_help=True)


@analytics.command("import-spend")
@one_line_errors
def import_spend_file(
    file: Path = typer.Argument(..., help="A .csv (UTF-8) or .xlsx file of marketing spend."),
) -> None:
    """Import marketing spend per channel and day: columns channel, day (or date), amount (or spend,
    cost), currency, and optionally campaign.

    Valid rows are stored (a row of the same channel, day and campaign replaces the earlier amount);
    each rejected row is listed with its line and the column at fault. CAC per channel divides this
    spend by the customers acquired on the channel.
    """
    with database() as db:
        report = import_spend(db, file, now=utcnow())
    for rejected in report.rejected:
        console.print(
            f"line {rejected.line}: {rejected.column}: {rejected.reason}", highlight=False, soft_wrap=True
        )
    console.print(
        f"{report.stored} rows stored, {report.replaced} replaced, {len(report.rejected)} rejected",
        highlight=False,
    )
    if report.rejected and not (report.stored or report.replaced):
        raise typer.Exit(1)  # nothing usable: a wrong file, as a script should learn


@analytics.command("rollups")
@one_line_errors
def rollups(
    rebuild: bool = typer.Option(False, "--rebuild", help="Forget the rollups and read every event again."),
) -> None:
    """Bring the dashboards' daily rollups up to date now (the worker does it each minute, a bounded
    chunk at a time): after a large import, or with --rebuild after the measures changed or an unmerge."""
    from rich.progress import MofNCompleteColumn

    from threadline.analytics import refresh_rollups, reset_rollups

    with database() as db:
        if rebuild:
            reset_rollups(db, now=utcnow())
        with progress_bar(MofNCompleteColumn()) as bar:
            task = bar.add_task("events", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            run = refresh_rollups(db, now=utcnow(), limit=0, settled=True, progress=advance)
    console.print(
        f"{run.events} events added to the rollups (through event {run.through_event_id}); "
        f"{run.behind} arrived since",
        highlight=False,
    )


@analytics.command("evaluate")
@one_line_errors
def evaluate(
    churn_horizon: int = typer.Option(30, help="Churn: days without a purchase that count as churned."),
    clv_holdout: int = typer.Option(60, help="CLV: the last days held out of fitting."),
    recommendations_holdout: int = typer.Option(30, help="Recommendations: the last days held out."),
) -> None:
    """Refit churn risk, CLV and recommendations on the timeline up to a cutoff and report how each did
    on what came after it (held-out figures; nothing is stored). Defaults suit `threadline demo`'s data."""
    from rich.table import Table

    windows = Windows(churn_horizon, clv_holdout, recommendations_holdout)
    with database() as db:
        result = evaluate_models(db, now=utcnow(), windows=windows)
    table = Table("model", "held-out figures", title="Models on this workspace's data, time split")
    for name, figures in (
        ("churn risk", result.churn),
        ("CLV (BG/NBD)", result.clv),
        ("recommendations", result.recommendations),
    ):
        table.add_row(name, describe(figures))
    console.print(table)


def describe(figures: dict[str, Any]) -> str:
    """One model's figures as short lines; numbers rounded for reading."""
    if "skipped" in figures:
        return f"not evaluated: {figures['skipped']}"
    lines = []
    for key, value in figures.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        elif isinstance(value, datetime):
            value = f"{value:%Y-%m-%d %H:%M}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v:.3f}" for k, v in value.items())
        lines.append(f"{key.replace('_', ' ')}: {value}")
    return "\n".join(lines)
