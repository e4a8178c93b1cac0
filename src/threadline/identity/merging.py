"""Explicit merges: a data steward's decision, or the batch resolver's match above its threshold.

They go through the stitcher's own merge (`IdentityGraph.merge` and `flush`): the same absorb, the same
row moves and flattening of `merged_into`, the same `merges` row, here with who or which rule decided,
the match probability and the evidence. Locking is the stitcher's too: advisory locks on every
identifier of both profiles and row locks on the profiles on PostgreSQL, BEGIN IMMEDIATE on SQLite.

Refused, naming the field: merging a profile into itself, a profile that is already merged away (the
caller decided about a customer that has changed since; it must look again at the survivor), a merge
past merge protection's limits unless forced, and a resolver's merge of a pair a person unmerged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.exc import OperationalError

from threadline.config import Settings, get_settings
from threadline.errors import Conflict, Invalid, NotFound
from threadline.identity.identifiers import Identifier, priority
from threadline.identity.stitch import IdentityGraph, lock_key
from threadline.storage import Database
from threadline.storage.models import Identity, Merge, Profile

EXPLICIT_TRIGGERS = ("resolver", "steward")
MAX_REASON = 1000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MergeInfo:
    """One `merges` row as the lineage shows it."""

    id: int
    status: str  # merged | blocked | unmerged
    survivor_id: str
    merged_id: str
    trigger: str  # message | alias | resolver | steward
    reason: str
    created_at: datetime
    actor_user_id: int | None = None
    rule: str | None = None
    match_probability: float | None = None
    identifier_kind: str | None = None
    identifier_value: str | None = None
    message_id: str | None = None
    unmerged_at: datetime | None = None
    unmerged_by: int | None = None
    unmerge_reason: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> MergeInfo:
        return cls(
            id=row.id,
            status=row.status,
            survivor_id=row.survivor_id,
            merged_id=row.merged_id,
            trigger=row.trigger,
            reason=row.reason,
            created_at=row.created_at,
            actor_user_id=row.actor_user_id,
            rule=row.rule,
            match_probability=row.match_probability,
            identifier_kind=row.identifier_kind,
            identifier_value=row.identifier_value,
            message_id=row.message_id,
            unmerged_at=row.unmerged_at,
            unmerged_by=row.unmerged_by,
            unmerge_reason=row.unmerge_reason,
        )


def with_retries(work: Callable[[], T]) -> T:
    """Run one write transaction, again if PostgreSQL broke a deadlock with ingestion by aborting it."""
    for attempt in range(1, 4):
        try:
            return work()
        except OperationalError as error:
            if attempt == 3 or getattr(error.orig, "sqlstate", None) not in {"40P01", "40001"}:
                raise
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


def _checked(
    survivor_id: str,
    merged_id: str,
    trigger: str,
    rule: str | None,
    reason: str,
    match_probability: float | None,
) -> str:
    if trigger not in EXPLICIT_TRIGGERS:
        raise Invalid(
            f"trigger: must be one of {', '.join(EXPLICIT_TRIGGERS)} (messages merge through ingestion)",
            details={"field": "trigger"},
        )
    if survivor_id == merged_id:
        raise Invalid("merged_id: a profile cannot be merged into itself", details={"field": "merged_id"})
    reason = reason.strip()
    if not 1 <= len(reason) <= MAX_REASON:
        raise Invalid(f"reason: must be 1 to {MAX_REASON} characters", details={"field": "reason"})
    if trigger == "resolver" and not (rule and rule.strip()):
        raise Invalid("rule: a resolver's merge names the rule that decided it", details={"field": "rule"})
    if rule is not None and len(rule) > 100:
        raise Invalid("rule: at most 100 characters", details={"field": "rule"})
    if match_probability is not None and not 0 <= match_probability <= 1:
        raise Invalid("match_probability: must be between 0 and 1", details={"field": "match_probability"})
    return reason


def merge_profiles(
    db: Database,
    survivor_id: str,
    merged_id: str,
    *,
    trigger: str,
    actor_user_id: int | None,
    rule: str | None,
    reason: str,
    match_probability: float | None = None,
    evidence: dict[str, Any] | None = None,
    now: datetime,
    force: bool = False,
    settings: Settings | None = None,
) -> MergeInfo:
    """Merge `merged_id` into `survivor_id`, which keeps its ID (the caller chooses; the stitcher keeps
    the older one). `force` passes merge protection's limits (THREADLINE_IDENTITY_LIMITS): a steward
    who has checked that two user ids really are one person."""
    reason = _checked(survivor_id, merged_id, trigger, rule, reason, match_probability)
    settings = settings or get_settings()
    record = {
        "trigger": trigger,
        "reason": reason,
        "actor_user_id": actor_user_id,
        "rule": rule,
        "match_probability": match_probability,
        "evidence": evidence,
    }

    def work() -> MergeInfo:
        with db.write() as session:
            conn = session.connection()
            graph = IdentityGraph(
                conn,
                limits=settings.identity_limits,
                ranks=priority(settings.identifier_kinds),
                now=now,
            )
            pair = [survivor_id, merged_id]
            identifiers = [
                Identifier(kind, value)
                for kind, value in conn.execute(
                    select(Identity.kind, Identity.value).where(Identity.profile_id.in_(pair))
                )
            ]
            graph.preload(identifiers, extra_locks=[lock_key("profile", p) for p in pair])
            graph.load(pair)
            for field, profile_id in (("survivor_id", survivor_id), ("merged_id", merged_id)):
                if profile_id not in graph.profiles:
                    raise NotFound(f"{field}: no profile {profile_id}", details={"field": field})
                live = graph.resolve(profile_id)
                if live != profile_id:
                    raise Conflict(
                        f"{field}: profile {profile_id} is already merged into {live}",
                        details={"field": field, "merged_into": live},
                    )
            if trigger == "resolver" and unmerged_between(conn, survivor_id, merged_id):
                raise Conflict(
                    f"merged_id: a person unmerged {merged_id} from {survivor_id}; the resolver does not "
                    "merge them again",
                    details={"field": "merged_id"},
                )
            too_many = graph.blocked_by_limits(survivor_id, merged_id)
            if too_many and not force:
                raise Conflict(
                    f"merged_id: merge protection: the merge would give one profile {too_many}",
                    details={"field": "merged_id", "limit": too_many},
                )
            graph.merge(survivor_id, merged_id, record)
            graph.flush()
            row = session.scalars(
                select(Merge)
                .where(Merge.merged_id == merged_id, Merge.status == "merged")
                .order_by(Merge.id.desc())
                .limit(1)
            ).one()
            return MergeInfo.from_row(row)

    return with_retries(work)


def get_merge(db: Database, merge_id: int) -> tuple[MergeInfo, str | None]:
    """A `merges` row, and the live profile that now holds what it merged (None unless merged)."""
    with db.read() as session:
        row = session.get(Merge, merge_id)
        if row is None:
            raise NotFound(f"merge_id: no merge {merge_id}", details={"field": "merge_id"})
        info = MergeInfo.from_row(row)
        if info.status != "merged":
            return info, None
        return info, live_profile_id(session.connection(), info.survivor_id)


def live_profile_id(conn: Connection, profile_id: str) -> str:
    """The profile an ID resolves to now (merged_into is kept one hop from the survivor)."""
    merged_into = conn.scalar(select(Profile.merged_into).where(Profile.id == profile_id))
    return merged_into or profile_id


def _absorbed(conn: Connection, profile_id: str) -> list[str]:
    """A profile and every profile merged into it, as the flattened merged_into keeps them."""
    live = live_profile_id(conn, profile_id)
    return [live, *conn.scalars(select(Profile.id).where(Profile.merged_into == live))]


def unmerged_between(conn: Connection, a: str, b: str) -> bool:
    one, two = _absorbed(conn, a), _absorbed(conn, b)
    if set(one) & set(two):
        return False  # one customer now: nothing is kept apart
    query = select(Merge.id).where(
        Merge.status == "unmerged",
        or_(
            and_(Merge.survivor_id.in_(one), Merge.merged_id.in_(two)),
            and_(Merge.survivor_id.in_(two), Merge.merged_id.in_(one)),
        ),
    )
    return conn.scalar(query.limit(1)) is not None


def pair_was_unmerged(db: Database, a: str, b: str) -> bool:
    """Whether a person undid a merge between these two customers (or what they absorbed): the batch
    resolver must not merge them again on its own. A message that carries identifiers of both still
    merges them (docs/identity.md)."""
    with db.read() as session:
        return unmerged_between(session.connection(), a, b)
