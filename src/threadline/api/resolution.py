"""REST: the review queue of likely duplicates, and the resolver's thresholds and runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.api.deps import AdminUser, CallerDep, DatabaseDep
from threadline.privacy import record
from threadline.resolution import (
    PENDING,
    Candidate,
    Thresholds,
    approve,
    decide_many,
    get_candidate,
    get_thresholds,
    list_candidates,
    list_runs,
    reject,
    set_thresholds,
)

router = APIRouter(prefix="/api/v1", tags=["identity resolution"])


def _candidate(c: Candidate) -> dict[str, Any]:
    return {
        "id": c.id,
        "left_id": c.left_id,
        "right_id": c.right_id,
        "status": c.status,
        "match_probability": c.match_probability,
        "match_weight": c.match_weight,
        "evidence": c.evidence,
        "scored_at": c.scored_at.isoformat() + "Z",
        "decided_at": c.decided_at.isoformat() + "Z" if c.decided_at else None,
        "decided_by": c.decided_by,
        "merge_id": c.merge_id,
    }


@router.get("/match-candidates", summary="Pairs of customers that are likely one person, most likely first")
def get_candidates(
    db: DatabaseDep, caller: CallerDep, status: str = PENDING, page: int = 1, limit: int = 50
) -> dict[str, Any]:
    rows, total = list_candidates(db, caller.viewer, status=status, page=page, size=max(1, min(limit, 200)))
    return {"candidates": [_candidate(c) for c in rows], "total": total, "page": page}


@router.get("/match-candidates/{candidate_id}", summary="One pair with both profiles and the evidence")
def get_one(request: Request, db: DatabaseDep, caller: CallerDep, candidate_id: int) -> dict[str, Any]:
    candidate, left, right = get_candidate(db, caller.viewer, candidate_id)
    at = request.app.state.clock()
    for profile_id in (candidate.left_id, candidate.right_id):
        record(db, caller.actor, "view", "profile", profile_id, at=at, details={"via": "api", "review": True})
    return {**_candidate(candidate), "left": left, "right": right}


class Decision(BaseModel):
    decision: str = Field(
        pattern="^(approve|reject)$", description="approve merges the pair; reject never suggests it again"
    )


class BulkDecision(Decision):
    ids: list[int] = Field(min_length=1, max_length=500)


@router.post("/match-candidates/{candidate_id}/decision", summary="Approve (merge) or reject a pair")
def decide(
    request: Request, db: DatabaseDep, caller: CallerDep, candidate_id: int, body: Decision
) -> dict[str, Any]:
    now = request.app.state.clock()
    merge_id = None
    if body.decision == "approve":
        merge_id = approve(db, caller.viewer, candidate_id, now=now)
    else:
        reject(db, caller.viewer, candidate_id, now=now)
    details = {"action": f"{body.decision}_match", "candidate": candidate_id, "merge": merge_id, "via": "api"}
    record(db, caller.actor, "change", "match_candidate", str(candidate_id), at=now, details=details)
    return {"id": candidate_id, "decision": body.decision, "merge_id": merge_id}


@router.post(
    "/match-candidates/decisions", summary="Approve or reject many pairs; each is decided on its own"
)
def decide_bulk(request: Request, db: DatabaseDep, caller: CallerDep, body: BulkDecision) -> dict[str, Any]:
    now = request.app.state.clock()
    outcome = decide_many(db, caller.viewer, body.ids, approve_them=body.decision == "approve", now=now)
    details = {
        "action": f"{body.decision}_matches",
        "done": outcome.done[:200],
        "failed": len(outcome.failed),
        "via": "api",
    }
    record(db, caller.actor, "change", "match_candidate", None, at=now, details=details)
    return {"done": outcome.done, "failed": {str(k): v for k, v in outcome.failed.items()}}


class ThresholdsBody(BaseModel):
    auto_merge: float = Field(gt=0, le=1)
    review: float = Field(gt=0, le=1)


@router.get("/resolution", summary="The resolver's thresholds and its recent runs")
def get_resolution(db: DatabaseDep, _: CallerDep) -> dict[str, Any]:
    thresholds = get_thresholds(db)
    return {
        "thresholds": {"auto_merge": thresholds.auto_merge, "review": thresholds.review},
        "runs": [
            {
                "id": r.id,
                "status": r.status,
                "stage": r.stage,
                "started_at": r.started_at.isoformat() + "Z",
                "finished_at": r.finished_at.isoformat() + "Z" if r.finished_at else None,
                "profiles": r.profiles,
                "pairs": r.pairs,
                "merged": r.merged,
                "queued": r.queued,
                "error": r.error,
            }
            for r in list_runs(db)
        ],
    }


@router.put("/resolution/thresholds", summary="Change the workspace's thresholds (admins)")
def put_thresholds(
    request: Request, db: DatabaseDep, caller: CallerDep, _: AdminUser, body: ThresholdsBody
) -> dict[str, Any]:
    now = request.app.state.clock()
    saved = set_thresholds(db, Thresholds(body.auto_merge, body.review), user_id=caller.user.id, now=now)
    details = {"action": "resolution_thresholds", "auto_merge": saved.auto_merge, "review": saved.review}
    record(db, caller.actor, "change", "workspace_settings", None, at=now, details=details)
    return {"auto_merge": saved.auto_merge, "review": saved.review}
