"""`threadline jobs ...`: what the background workers have queued, running, done or failed."""

from __future__ import annotations

import json
from datetime import datetime

import typer
from rich.table import Table

from threadline.cli.common import console, database, one_line_errors
from threadline.clock import utcnow
from threadline.config import get_settings
from threadline.errors import Invalid
from threadline.jobs import STATUSES, check_kind, count_jobs, enqueue, list_jobs

jobs = typer.Typer(
    help="Background jobs, run by `threadline worker` or `threadline serve`.", no_args_is_help=True
)


@jobs.command("list")
@one_line_errors
def jobs_list(
    status: str | None = typer.Option(None, help=f"Only jobs in this status: {', '.join(STATUSES)}."),
    kind: str | None = typer.Option(None, help="Only jobs of this kind."),
    limit: int = typer.Option(50, help="How many jobs, newest first."),
) -> None:
    """List jobs, newest first, with the number in each status."""
    with database() as db:
        rows = list_jobs(db, status=status, kind=kind, limit=limit)
        counts = count_jobs(db)
    table = Table("id", "kind", "status", "attempts", "run at", "finished", "worker", "last error")
    for job in rows:
        table.add_row(
            str(job.id),
            job.kind,
            job.status,
            f"{job.attempts}/{job.max_attempts}",
            _when(job.run_at),
            _when(job.finished_at),
            job.locked_by or "",
            (job.last_error or "")[:200],
        )
    console.print(table)
    console.print("  ".join(f"{name}: {count}" for name, count in counts.items()), highlight=False)


@jobs.command("enqueue")
@one_line_errors
def jobs_enqueue(
    kind: str,
    payload: str = typer.Option("{}", help="The job's payload, a JSON object."),
) -> None:
    """Queue a job of KIND to run now (a running worker picks it up within
    THREADLINE_WORKER_POLL_SECONDS) and print its id."""
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise Invalid("payload: must be a JSON object", details={"field": "payload"})
    with database() as db:
        job = enqueue(db, check_kind(kind), data, now=utcnow(), max_attempts=get_settings().job_max_attempts)
    assert job is not None  # no dedupe key: always queued
    console.print(f"queued job {job.id} ({job.kind})", highlight=False)


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else ""
