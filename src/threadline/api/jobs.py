"""REST: the background jobs (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from threadline.api.deps import AdminUser, DatabaseDep
from threadline.jobs import JobInfo, count_jobs, list_jobs

router = APIRouter(prefix="/api/v1", tags=["jobs"])


def _at(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def _job(job: JobInfo) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "payload": job.payload,
        "run_at": _at(job.run_at),
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "locked_by": job.locked_by,
        "locked_until": _at(job.locked_until),
        "last_error": job.last_error,
        "dedupe_key": job.dedupe_key,
        "created_at": _at(job.created_at),
        "started_at": _at(job.started_at),
        "finished_at": _at(job.finished_at),
    }


@router.get("/jobs", summary="Background jobs, newest first, with the number in each status")
def get_jobs(
    db: DatabaseDep,
    _: AdminUser,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    rows = list_jobs(db, status=status, kind=kind, limit=max(1, min(limit, 200)))
    return {"jobs": [_job(job) for job in rows], "counts": count_jobs(db)}
