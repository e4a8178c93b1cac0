"""The durable job queue: enqueue, claim under a lease, complete, retry with backoff, release.

Claiming takes the next due job in one short transaction: `SELECT ... FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several workers take different jobs without waiting on each other; on SQLite the write
transaction (BEGIN IMMEDIATE, storage/engine.py) lets one claim through at a time. The job then runs
outside any transaction, and its outcome is recorded by another one that applies only while the claim is
still the worker's own (same worker, same attempt): a worker whose lease ran out, and whose job another
worker took over, cannot overwrite what the new holder records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update
from sqlalchemy import insert as insert_row
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.elements import ColumnElement

from threadline.errors import Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import Job

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATUSES = (QUEUED, RUNNING, DONE, FAILED)
MAX_RETRY_DELAY = timedelta(days=1)
_ERROR_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: int
    kind: str
    payload: dict[str, Any]
    status: str
    run_at: datetime
    attempts: int
    max_attempts: int
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    dedupe_key: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: Job) -> JobInfo:
        return cls(
            row.id,
            row.kind,
            dict(row.payload),
            row.status,
            row.run_at,
            row.attempts,
            row.max_attempts,
            row.locked_by,
            row.locked_until,
            row.last_error,
            row.dedupe_key,
            row.created_at,
            row.started_at,
            row.finished_at,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """A job one worker holds: the attempt it runs, under a lease it renews while the job runs."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    worker: str


def enqueue(
    db: Database,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    now: datetime,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 5,
) -> JobInfo | None:
    """Queue a job to run at `run_at` (now by default). A `dedupe_key` already queued by anyone, ever
    (until the row is pruned), makes this a no-op that returns None: a schedule's occurrence is queued
    once however many workers tick at the same moment."""
    if not kind or len(kind) > 60:
        raise Invalid("kind: must be 1 to 60 characters", details={"field": "kind"})
    if max_attempts < 1:
        raise Invalid("max_attempts: must be at least 1", details={"field": "max_attempts"})
    values: dict[str, Any] = {
        "kind": kind,
        "payload": dict(payload or {}),
        "status": QUEUED,
        "run_at": run_at or now,
        "attempts": 0,
        "max_attempts": max_attempts,
        "dedupe_key": dedupe_key,
        "created_at": now,
    }
    insert = postgresql_insert if db.dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Job).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Job.id)
    )
    with db.write() as session:
        job_id = session.scalar(statement)
        if job_id is None:
            return None
        row = session.get(Job, job_id)
        assert row is not None
        return JobInfo.of(row)


def enqueue_in(
    conn: Connection, kind: str, payload: Mapping[str, Any], *, now: datetime, max_attempts: int = 5
) -> None:
    """Queue a job inside the caller's transaction: it exists exactly when the caller's writes commit
    (ingestion queues `segments.refresh` with the events that call for it, at no extra commit)."""
    conn.execute(
        insert_row(Job).values(
            kind=kind,
            payload=dict(payload),
            status=QUEUED,
            run_at=now,
            attempts=0,
            max_attempts=max_attempts,
            created_at=now,
        )
    )


def claim(db: Database, worker: str, kinds: list[str], *, now: datetime, lease: timedelta) -> Claim | None:
    """Take the next due job of one of `kinds` (the ones this worker can run), or None.

    Due means queued with `run_at` reached, or running under a lease that ran out (its worker stopped).
    A job whose worker stopped during its last attempt is failed instead of run again: a job that kills
    its worker must not take every worker down in turn.
    """
    if not kinds:
        return None
    due = and_(
        Job.kind.in_(kinds),
        or_(
            and_(Job.status == QUEUED, Job.run_at <= now),
            and_(Job.status == RUNNING, Job.locked_until < now),
        ),
    )
    # An idle worker looks every few seconds: a read answers "nothing due" without taking the write lock
    # that SQLite's one writer (ingestion, in the same process) would have to wait for.
    with db.read() as session:
        if session.scalar(select(Job.id).where(due).limit(1)) is None:
            return None
    query = (
        select(Job)
        .where(due)
        .order_by(Job.run_at, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # SQLite has no such clause: BEGIN IMMEDIATE serialises claims
    )
    with db.write() as session:
        while True:
            row = session.scalars(query).first()
            if row is None:
                return None
            if row.status == RUNNING:
                row.last_error = (
                    f"attempt {row.attempts}: its worker stopped before it finished (lease ran out)"
                )
                if row.attempts >= row.max_attempts:
                    row.status, row.finished_at = FAILED, now
                    row.locked_by = row.locked_until = None
                    session.flush()
                    continue
            row.status = RUNNING
            row.attempts += 1
            row.locked_by = worker
            row.locked_until = now + lease
            row.started_at = now
            return Claim(row.id, row.kind, dict(row.payload), row.attempts, row.max_attempts, worker)


def _held(claim: Claim) -> ColumnElement[bool]:
    return and_(
        Job.id == claim.id,
        Job.status == RUNNING,
        Job.locked_by == claim.worker,
        Job.attempts == claim.attempt,
    )


def _apply(db: Database, claim: Claim, **values: Any) -> bool:
    """Change the job if the claim is still ours; False when its lease ran out and another worker took it."""
    with db.write() as session:
        result = session.execute(update(Job).where(_held(claim)).values(**values))
        return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


def complete(db: Database, claim: Claim, *, now: datetime) -> bool:
    return _apply(db, claim, status=DONE, finished_at=now, locked_by=None, locked_until=None)


def retry_delay(base: timedelta, attempt: int) -> timedelta:
    """Exponential backoff: base after the first failure, doubling after each further one, up to a day."""
    delay: timedelta = base * 2 ** (attempt - 1)
    return min(delay, MAX_RETRY_DELAY)


def record_failure(
    db: Database, claim: Claim, error: str, *, now: datetime, retry_base: timedelta
) -> str | None:
    """Queue the job again after its backoff, or fail it on its last attempt, keeping the error.
    Answers the job's new status, or None when the claim was no longer ours."""
    status = QUEUED if claim.attempt < claim.max_attempts else FAILED
    values: dict[str, Any] = {
        "status": status,
        "last_error": error[:_ERROR_LIMIT],
        "locked_by": None,
        "locked_until": None,
    }
    if status == QUEUED:
        values["run_at"] = now + retry_delay(retry_base, claim.attempt)
    else:
        values["finished_at"] = now
    return status if _apply(db, claim, **values) else None


def release(db: Database, claim: Claim) -> bool:
    """Put a claimed job back in the queue, the attempt not counted: its worker is stopping."""
    return _apply(db, claim, status=QUEUED, attempts=claim.attempt - 1, locked_by=None, locked_until=None)


def renew_lease(db: Database, claim: Claim, *, now: datetime, lease: timedelta) -> bool:
    return _apply(db, claim, locked_until=now + lease)


def get_job(db: Database, job_id: int) -> JobInfo:
    with db.read() as session:
        row = session.get(Job, job_id)
        if row is None:
            raise NotFound(f"job: no job {job_id}", details={"field": "job"})
        return JobInfo.of(row)


def list_jobs(
    db: Database, *, status: str | None = None, kind: str | None = None, limit: int = 50
) -> list[JobInfo]:
    """Jobs, newest first."""
    query = select(Job).order_by(Job.id.desc()).limit(max(1, min(limit, 1000)))
    if status is not None:
        query = query.where(Job.status == check_status(status))
    if kind is not None:
        query = query.where(Job.kind == kind)
    with db.read() as session:
        return [JobInfo.of(row) for row in session.scalars(query)]


def count_jobs(db: Database) -> dict[str, int]:
    """How many jobs are in each status (every status present, zero or not)."""
    with db.read() as session:
        rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    counts = {status: int(count) for status, count in rows}
    return {status: counts.get(status, 0) for status in STATUSES}


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise Invalid(f"status: must be one of {', '.join(STATUSES)}", details={"field": "status"})
    return status


def prune_finished(db: Database, *, before: datetime) -> int:
    """Delete done and failed jobs that finished before `before`; answers how many."""
    with db.write() as session:
        result = session.execute(delete(Job).where(Job.status.in_((DONE, FAILED)), Job.finished_at < before))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
