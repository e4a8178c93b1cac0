"""REST: a customer's computed scores (12-month CLV, expected purchases, P(alive), churn risk with its main
reasons), within the caller's data scope; reads are audited like the profile's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from threadline.analytics import profile_scores
from threadline.api.deps import CallerDep, DatabaseDep
from threadline.api.profiles import audited

router = APIRouter(prefix="/api/v1", tags=["profiles"])


@router.get(
    "/profiles/{profile_id}/scores",
    summary="The customer's computed scores: clv_12m, expected_purchases_12m, p_alive, churn_risk",
)
def get_scores(profile_id: str, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    live, scores = audited(
        request, db, caller, profile_id, lambda: profile_scores(db, profile_id, viewer=caller.viewer)
    )
    return {
        "profile_id": live,
        "scores": {
            s.name: {
                "value": s.value,
                "details": s.details,
                "computed_at": s.computed_at.isoformat(timespec="seconds") + "Z",
                "model": s.model,
            }
            for s in scores
        },
    }
