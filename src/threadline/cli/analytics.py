"""`threadline analytics ...`: bring in what Insight needs from outside (marketing spend)."""

from __future__ import annotations

from pathlib import Path

import typer

from threadline.analytics import import_spend
from threadline.cli.common import console, database, one_line_errors
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
