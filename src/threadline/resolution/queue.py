"""The review queue: pairs a data steward approves (merge) or rejects (never suggested again).

A steward sees a pair only when both customers are in their data scope, and decides it only when they may
change both (threadline.accounts.customer_filter / customer_write_filter), with the edit permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from threadline.accounts import Viewer, customer_filter, customer_write_filter
from threadline.errors import Conflict, Forbidden, NotFound
from threadline.profiles import ProfileNotFound, profile_view
from threadline.resolution.decisions import PENDING, REJECTED, merge_candidate
from threadline.storage import Database
from threadline.storage.models import MatchCandidate, Profile

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    left_id: str
    right_id: str
    status: str
    match_probability: float
    match_weight: float
    evidence: dict[str, Any]
    scored_at: datetime
    decided_at: datetime | None
    decided_by: int | None
    merge_id: int | None
    left_name: str | None = None
    right_name: str | None = None

    @classmethod
    def of(cls, row: MatchCandidate, names: dict[str, str | None] | None = None) -> Candidate:
        names = names or {}
        return cls(
            row.id,
            row.left_id,
            row.right_id,
            row.status,
            row.match_probability,
            row.match_weight,
            dict(row.evidence or {}),
            row.scored_at,
            row.decided_at,
            row.decided_by,
            row.merge_id,
            names.get(row.left_id),
            names.get(row.right_id),
        )


def _visible(viewer: Viewer, *, write: bool = False) -> Any:
    """Candidates whose two profiles the viewer may read (or change)."""
    left, right = aliased(Profile), aliased(Profile)
    scope = customer_write_filter if write else customer_filter
    return (
        select(MatchCandidate)
        .join(left, left.id == MatchCandidate.left_id)
        .join(right, right.id == MatchCandidate.right_id)
        .where(scope(viewer, left), scope(viewer, right))
    )


def _may_review(viewer: Viewer) -> None:
    # Reviewing a pair is comparing two people's personal data side by side (names, emails, phones in
    # the evidence): a role that sees personal data masked (analysts) does not review duplicates.
    if not viewer.can("pii"):
        raise Forbidden("reviewing duplicates needs the permission to see personal data")


def list_candidates(
    db: Database, viewer: Viewer, *, status: str = PENDING, page: int = 1, size: int = PAGE_SIZE
) -> tuple[list[Candidate], int]:
    """One page of the queue, most likely matches first, and how many there are in all."""
    _may_review(viewer)
    query = _visible(viewer).where(MatchCandidate.status == status)
    with db.read() as session:
        total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        rows = session.scalars(
            query.order_by(MatchCandidate.match_probability.desc(), MatchCandidate.id)
            .limit(size)
            .offset((max(page, 1) - 1) * size)
        ).all()
        ids = {r.left_id for r in rows} | {r.right_id for r in rows}
        names = dict(
            session.execute(select(Profile.id, Profile.display_name).where(Profile.id.in_(ids))).all()
        )
    return [Candidate.of(r, names) for r in rows], total


def get_candidate(
    db: Database, viewer: Viewer, candidate_id: int
) -> tuple[Candidate, dict[str, Any], dict[str, Any]]:
    """A candidate with both profiles as the 360 page shows them; NotFound outside the viewer's scope."""
    _may_review(viewer)
    with db.read() as session:
        row = session.scalar(_visible(viewer).where(MatchCandidate.id == candidate_id))
        if row is None:
            raise NotFound(f"candidate: no match candidate {candidate_id}", details={"field": "candidate"})
        candidate = Candidate.of(row)
    try:
        left = profile_view(db, candidate.left_id, viewer=viewer)
        right = profile_view(db, candidate.right_id, viewer=viewer)
    except ProfileNotFound as error:
        raise NotFound(str(error), details={"field": "candidate"}) from error
    return candidate, left, right


def _writable(db: Database, viewer: Viewer, candidate_id: int) -> None:
    if not viewer.can("edit"):
        raise Forbidden("deciding a match needs the edit permission")
    with db.read() as session:
        if session.scalar(_visible(viewer, write=True).where(MatchCandidate.id == candidate_id)) is None:
            raise NotFound(f"candidate: no match candidate {candidate_id}", details={"field": "candidate"})


def approve(db: Database, viewer: Viewer, candidate_id: int, *, now: datetime) -> int | None:
    """Merge the pair (the older profile survives); returns the merges row id."""
    _writable(db, viewer, candidate_id)
    return merge_candidate(
        db,
        candidate_id,
        trigger="steward",
        actor_user_id=viewer.user_id,
        rule=None,
        reason="a data steward approved the match in the review queue",
        now=now,
    )


def reject(db: Database, viewer: Viewer, candidate_id: int, *, now: datetime) -> None:
    """Not the same person: the pair is never suggested again."""
    _writable(db, viewer, candidate_id)
    with db.write() as session:
        row = session.get(MatchCandidate, candidate_id)
        if row is None or row.status != PENDING:
            raise Conflict(
                f"candidate: already {row.status if row else 'gone'}", details={"field": "candidate"}
            )
        row.status, row.decided_at, row.decided_by = REJECTED, now, viewer.user_id


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    done: list[int]
    failed: dict[int, str]  # candidate id -> why


def decide_many(
    db: Database, viewer: Viewer, candidate_ids: Iterable[int], *, approve_them: bool, now: datetime
) -> BulkOutcome:
    """Approve or reject several pairs; each is its own decision, so one refusal stops none of the others."""
    done: list[int] = []
    failed: dict[int, str] = {}
    for candidate_id in dict.fromkeys(candidate_ids):
        try:
            if approve_them:
                approve(db, viewer, candidate_id, now=now)
            else:
                reject(db, viewer, candidate_id, now=now)
            done.append(candidate_id)
        except (Conflict, NotFound, Forbidden) as error:
            failed[candidate_id] = error.message
    return BulkOutcome(done, failed)
