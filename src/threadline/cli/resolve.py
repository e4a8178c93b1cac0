"""`threadline resolve`: batch probabilistic identity resolution, with a progress bar."""

from __future__ import annotations

import typer
from rich.progress import MofNCompleteColumn, TimeElapsedColumn

from threadline.cli.common import console, database, one_line_errors, progress_bar
from threadline.clock import utcnow
from threadline.resolution import (
    RunInfo,
    Thresholds,
    get_thresholds,
    list_runs,
    resume_decisions,
    run_resolution,
    set_thresholds,
)


@one_line_errors
def resolve(
    auto_merge: float | None = typer.Option(
        None, help="Merge pairs at or above this match probability (default: the workspace's, 0.99)."
    ),
    review: float | None = typer.Option(
        None, help="Queue pairs from this probability up for review (default: the workspace's, 0.80)."
    ),
    save: bool = typer.Option(False, help="Keep --auto-merge/--review as the workspace's thresholds."),
    resume: bool = typer.Option(False, help="Finish the merges of the last run that was interrupted."),
    runs: bool = typer.Option(False, help="List recent runs instead of running."),
) -> None:
    """Find customers who share no identifier but are likely one person: merge the sure ones, queue the
    likely ones for review (the Duplicates page)."""
    with database() as db:
        if runs:
            for run in list_runs(db):
                console.print(_line(run), highlight=False, soft_wrap=True)
            return
        current = get_thresholds(db)
        thresholds = Thresholds(
            auto_merge=current.auto_merge if auto_merge is None else auto_merge,
            review=current.review if review is None else review,
        ).checked()
        if save:
            set_thresholds(db, thresholds, user_id=None, now=utcnow())
        with progress_bar(MofNCompleteColumn(), TimeElapsedColumn()) as progress:
            task = progress.add_task("starting", total=None)

            def report(stage: str, done: float, total: float) -> None:
                progress.update(task, description=stage, completed=done, total=total)

            if resume:
                info = resume_decisions(db, now=utcnow, progress=report)
            else:
                info = run_resolution(db, now=utcnow, thresholds=thresholds, progress=report)
    console.print(_line(info), highlight=False, soft_wrap=True)


def _line(run: RunInfo) -> str:
    took = f" in {(run.finished_at - run.started_at).total_seconds():.1f} s" if run.finished_at else ""
    error = f" ({run.error})" if run.error else ""
    return (
        f"run {run.id}: {run.status}{error}{took}: {run.profiles:,} profiles, {run.pairs:,} likely pairs, "
        f"{run.merged:,} merged, {run.queued:,} waiting for review "
        f"(auto-merge >= {run.thresholds['auto_merge']:g}, review >= {run.thresholds['review']:g})"
    )
