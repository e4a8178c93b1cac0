"""What becomes of a scored pair: merged on its own, queued for a data steward, or rejected for good.

Pairs at or above the workspace's auto-merge threshold merge through threadline.identity.merge_profiles
(trigger "resolver", the rule named in the lineage); pairs between the review and auto-merge thresholds
wait in the review queue; a rejected pair keeps its row, so no later run suggests it again. A pair whose
merge a person undid is never merged by the resolver again (threadline.identity.pair_was_unmerged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from threadline.errors import Conflict, Invalid, NotFound
from threadline.identity import merge_profiles, pair_was_unmerged
from threadline.resolution.model import ScoredPair
from threadline.storage import Database, put_setting
from threadline.storage.models import MatchCandidate, Profile, WorkspaceSetting

THRESHOLDS_KEY = "resolution.thresholds"
PENDING, MERGED, REJECTED, OBSOLETE = "pending", "merged", "rejected", "obsolete"
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Match probabilities: at or above `auto_merge` merge; from `review` up to it, a person decides."""

    auto_merge: float = 0.99
    review: float = 0.80

    def checked(self) -> Thresholds:
        for name in ("auto_merge", "review"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise Invalid(f"{name}: must be above 0 and at most 1", details={"field": name})
        if self.review > self.auto_merge:
            raise Invalid("review: must not be above auto_merge", details={"field": "review"})
        return self

    @property
    def rule(self) -> str:
        return f"auto-merge at match probability >= {self.auto_merge:g}"


def get_thresholds(db: Database) -> Thresholds:
    with db.read() as session:
        stored = session.get(WorkspaceSetting, THRESHOLDS_KEY)
    if stored is None or not isinstance(stored.value, dict):
        return Thresholds()
    return Thresholds(**{k: float(v) for k, v in stored.value.items() if k in ("auto_merge", "review")})


def set_thresholds(db: Database, thresholds: Thresholds, *, user_id: int | None, now: datetime) -> Thresholds:
    thresholds = thresholds.checked()
    with db.write() as session:
        put_setting(session.connection(), THRESHOLDS_KEY, asdict(thresholds), user_id=user_id, now=now)
    return thresholds


def evidence_of(pair: ScoredPair) -> dict[str, Any]:
    return {
        "prior": pair.prior_weight,
        "comparisons": [
            {
                "comparison": e.comparison,
                "level": e.level,
                "weight": e.weight,
                "left": e.left,
                "right": e.right,
            }
            for e in pair.evidence
        ],
    }


def record_candidates(
    db: Database, run_id: int, pairs: Iterable[ScoredPair], thresholds: Thresholds, *, now: datetime
) -> int:
    """Keep every pair at or above the review threshold; returns how many are pending now.

    A pair seen before keeps its row: still pending, it gets the new score; decided, it stays decided.
    """
    wanted = {(min(p.left_id, p.right_id), max(p.left_id, p.right_id)): p for p in pairs}
    wanted = {k: p for k, p in wanted.items() if p.match_probability >= thresholds.review}
    with db.write() as session:
        known = {
            (left, right): (candidate_id, status)
            for candidate_id, left, right, status in session.execute(
                select(
                    MatchCandidate.id, MatchCandidate.left_id, MatchCandidate.right_id, MatchCandidate.status
                )
            )
        }
        fresh, refreshed = [], []
        for (left, right), pair in wanted.items():
            scores = {
                "match_probability": pair.match_probability,
                "match_weight": pair.match_weight,
                "evidence": evidence_of(pair),
                "run_id": run_id,
                "scored_at": now,
            }
            if (left, right) not in known:
                fresh.append(
                    {"left_id": left, "right_id": right, "status": PENDING, "created_at": now, **scores}
                )
            elif known[(left, right)][1] == PENDING:
                refreshed.append({"b_id": known[(left, right)][0], **scores})
        if fresh:
            session.connection().execute(insert(MatchCandidate), fresh)
        if refreshed:
            session.connection().execute(
                update(MatchCandidate)
                .where(MatchCandidate.id == bindparam("b_id"))
                .values({k: bindparam(k) for k in refreshed[0] if k != "b_id"}),
                refreshed,
            )
        pending = session.scalar(
            select(func.count()).select_from(MatchCandidate).where(MatchCandidate.status == PENDING)
        )
    return int(pending or 0)


def _live(session: Session, profile_id: str) -> str | None:
    """The live profile that holds `profile_id` now (merged ids point one hop to their survivor)."""
    row = session.execute(select(Profile.id, Profile.merged_into).where(Profile.id == profile_id)).first()
    if row is None:
        return None
    return str(row[1] or row[0])


def _survivor_first(session: Session, a: str, b: str) -> tuple[str, str]:
    """The older profile survives, as in the stitcher (its ID is the one people have seen longest)."""
    rows = dict(session.execute(select(Profile.id, Profile.created_at).where(Profile.id.in_([a, b]))).all())
    return (a, b) if (rows[a], a) <= (rows[b], b) else (b, a)


def live_pair(db: Database, left_id: str, right_id: str) -> tuple[str, str] | None:
    """Both profiles of a pair as they live now, survivor first; None when they are already one (or gone)."""
    with db.read() as session:
        a, b = _live(session, left_id), _live(session, right_id)
        if a is None or b is None or a == b:
            return None
        return _survivor_first(session, a, b)


def _close(
    db: Database,
    candidate_id: int,
    status: str,
    *,
    by: int | None,
    now: datetime,
    merge_id: int | None = None,
) -> None:
    with db.write() as session:
        session.execute(
            update(MatchCandidate)
            .where(MatchCandidate.id == candidate_id)
            .values(status=status, decided_at=now, decided_by=by, merge_id=merge_id)
        )


def merge_candidate(
    db: Database,
    candidate_id: int,
    *,
    trigger: str,
    actor_user_id: int | None,
    rule: str | None,
    reason: str,
    now: datetime,
) -> int | None:
    """Merge a candidate pair; returns the merges row id, or None when the pair was already one person."""
    with db.read() as session:
        candidate = session.get(MatchCandidate, candidate_id)
        if candidate is None:
            raise NotFound(f"candidate: no match candidate {candidate_id}", details={"field": "candidate"})
        if candidate.status != PENDING:
            raise Conflict(f"candidate: already {candidate.status}", details={"field": "candidate"})
        left, right = candidate.left_id, candidate.right_id
        probability, evidence = candidate.match_probability, dict(candidate.evidence)
    pair = live_pair(db, left, right)
    if pair is None:
        _close(db, candidate_id, OBSOLETE, by=actor_user_id, now=now)
        return None
    survivor, merged = pair
    info = merge_profiles(
        db,
        survivor,
        merged,
        trigger=trigger,
        actor_user_id=actor_user_id,
        rule=rule,
        reason=reason,
        match_probability=probability,
        evidence=evidence,
        now=now,
    )
    _close(db, candidate_id, MERGED, by=actor_user_id, now=now, merge_id=info.id)
    return info.id


def apply_auto_merges(
    db: Database, thresholds: Thresholds, *, now: Callable[[], datetime], progress: Progress | None = None
) -> tuple[int, int]:
    """Merge every pending pair at or above the auto-merge threshold; returns (merged, held back).

    Each merge is its own transaction, so an interrupted run resumes where it stopped: what is still
    pending is what is left. Pairs merge protection refuses, or that a person unmerged, are held back
    for a person to decide (unmerged ones are rejected for good).
    """
    with db.read() as session:
        due = session.execute(
            select(MatchCandidate.id, MatchCandidate.left_id, MatchCandidate.right_id)
            .where(
                MatchCandidate.status == PENDING, MatchCandidate.match_probability >= thresholds.auto_merge
            )
            .order_by(MatchCandidate.match_probability.desc(), MatchCandidate.id)
        ).all()
    merged = held = 0
    for done, (candidate_id, left, right) in enumerate(due, start=1):
        if pair_was_unmerged(db, left, right):
            _close(db, candidate_id, REJECTED, by=None, now=now())
            held += 1
        else:
            try:
                result = merge_candidate(
                    db,
                    candidate_id,
                    trigger="resolver",
                    actor_user_id=None,
                    rule=thresholds.rule,
                    reason="batch identity resolution found no shared identifier but a likely match",
                    now=now(),
                )
                merged += result is not None
            except Conflict:  # merge protection, or an unmerge between what the pair now holds
                held += 1
        if progress is not None:
            progress(done, len(due))
    return merged, held
