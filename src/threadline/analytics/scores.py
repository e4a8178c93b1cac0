"""Per-customer scores in `profile_scores`: written by a model's run, read by the 360 page, the REST API
and segments.

A run replaces every row of the scores it computes: a customer the model no longer scores (too little
history now, merged away, erased) loses the old value instead of keeping a stale one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.profiles import resolve_profile_id
from threadline.storage import Database
from threadline.storage.models import ProfileScore

# Score names, in one place: pages, the API and segments refer to these.
CLV_12M = "clv_12m"
EXPECTED_PURCHASES_12M = "expected_purchases_12m"
P_ALIVE = "p_alive"
CHURN_RISK = "churn_risk"
CLV_SCORES = (CLV_12M, EXPECTED_PURCHASES_12M, P_ALIVE)
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Score:
    profile_id: str
    name: str
    value: float | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoreView:
    name: str
    value: float | None
    details: dict[str, Any]
    computed_at: datetime
    model: str


def replace_scores(
    db: Database, names: Sequence[str], scores: Sequence[Score], *, model: str, now: datetime
) -> int:
    """Replace all rows of the scores `names` with `scores`, in one transaction (a reader sees the old run
    or the new one, never half of each); answers the rows written."""
    unknown = {s.name for s in scores} - set(names)
    if unknown:
        raise ValueError(f"scores {sorted(unknown)} are not among the names replaced")
    rows = [
        {
            "profile_id": s.profile_id,
            "name": s.name,
            "value": s.value,
            "details": s.details,
            "computed_at": now,
            "model": model,
        }
        for s in scores
    ]
    with db.write() as session:
        session.execute(delete(ProfileScore).where(ProfileScore.name.in_(list(names))))
        for start in range(0, len(rows), _CHUNK):
            session.execute(insert(ProfileScore), rows[start : start + _CHUNK])
    return len(rows)


def _scores_of(session: Session, profile_id: str) -> list[ScoreView]:
    rows = session.scalars(
        select(ProfileScore).where(ProfileScore.profile_id == profile_id).order_by(ProfileScore.name)
    )
    return [ScoreView(r.name, r.value, dict(r.details or {}), r.computed_at, r.model) for r in rows]


def profile_scores(db: Database, profile_id: str, *, viewer: Viewer) -> tuple[str, list[ScoreView]]:
    """The live profile's ID (following merges) and its scores; raises ProfileNotFound outside the
    viewer's data scope, like every read of one customer."""
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        return live, _scores_of(session, live)
