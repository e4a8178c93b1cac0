"""REST: the workspace's retention policy, its dry-run report, and a run on demand (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Request

from threadline.api.deps import AdminUser, CallerDep, DatabaseDep, SettingsDep
from threadline.privacy import (
    RETENTION_POLICY_KEY,
    RetentionPolicy,
    RetentionReport,
    get_retention_policy,
    queue_retention_run,
    record,
    retention_report,
    set_retention_policy,
)

router = APIRouter(prefix="/api/v1", tags=["privacy"])


def _at(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def policy_json(policy: RetentionPolicy) -> dict[str, Any]:
    return {
        "policies": dict(policy.days),
        "updated_at": _at(policy.updated_at),
        "updated_by": policy.updated_by,
    }


def report_json(report: RetentionReport) -> list[dict[str, Any]]:
    return [
        {
            "data_class": line.data_class,
            "label": line.label,
            "days": line.days,
            "cutoff": _at(line.cutoff),
            "rows": line.rows,
            "oldest": _at(line.oldest),
        }
        for line in report.lines
    ]


@router.get("/retention", summary="Days kept per data class, and what a run now would remove (admins)")
def get_retention(request: Request, db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    policy = get_retention_policy(db)
    report = retention_report(db, now=request.app.state.clock(), policy=policy)
    return {**policy_json(policy), "report": report_json(report)}


@router.put("/retention", summary="Change the days kept of the data classes named (admins)")
def put_retention(
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    _: AdminUser,
    body: dict[str, Any] = Body(
        description="Data class -> days kept (1 to 36500), or null to keep forever; classes not named "
        "keep their policy.",
        examples=[{"events": 730, "quarantine": 30}],
    ),
) -> dict[str, Any]:
    now = request.app.state.clock()
    saved = set_retention_policy(db, body, user_id=caller.user.id, now=now)
    details = {"action": "retention_policy", "policies": dict(saved.days), "via": "api"}
    record(db, caller.actor, "change", "workspace_settings", RETENTION_POLICY_KEY, at=now, details=details)
    return policy_json(saved)


@router.post(
    "/retention/run", status_code=202, summary="Queue a retention run now; a worker runs it (admins)"
)
def run_retention(
    request: Request, db: DatabaseDep, settings: SettingsDep, caller: CallerDep, _: AdminUser
) -> dict[str, Any]:
    job = queue_retention_run(
        db,
        requested_by=caller.user.id,
        via="api",
        now=request.app.state.clock(),
        max_attempts=settings.job_max_attempts,
    )
    # None: a run asked for this minute is queued already.
    return {"queued": job is not None, "job_id": job.id if job else None}
