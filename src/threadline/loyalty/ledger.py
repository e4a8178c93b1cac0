"""The points ledger as people use it: a customer's balance, tier and history; redeeming; adjusting.

Every read and change goes through the viewer's data scope (threadline.profiles.resolve_profile_id): a
customer outside it is "not found". Redeeming and adjusting need the edit permission and the customer in
the viewer's write scope. Both lock the customer's status row (standing.lock_status) so the balance they
check is the one they spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from threadline.accounts import Viewer
from threadline.config import Settings, get_settings
from threadline.errors import Conflict, Forbidden, Invalid
from threadline.loyalty.expiry import family_lots
from threadline.loyalty.program import Program, program_in
from threadline.loyalty.standing import (
    TierChange,
    compute_standing,
    family,
    lock_status,
    months_after,
    refresh_status,
)
from threadline.loyalty.timeline import announce
from threadline.profiles import may_change, resolve_profile_id
from threadline.storage import Database
from threadline.storage.models import LoyaltyEntry, LoyaltyStatus

MAX_REASON = 300  # loyalty_ledger.reason
MAX_POINTS = 10_000_000
HISTORY = 50


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


def loyalty_view(
    db: Database, profile_id: str, *, viewer: Viewer, now: datetime, limit: int = HISTORY
) -> dict[str, Any]:
    """Balance, tier, progress to the next tier, what expires next, and the ledger newest first (at most
    `limit` lines). Computed from the ledger, so right at once after a merge or unmerge."""
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        conn = session.connection()
        program = program_in(conn)
        standing = compute_standing(conn, live, program, now=now)
        since = conn.scalar(
            select(LoyaltyStatus.tier_since).where(
                LoyaltyStatus.profile_id == live, LoyaltyStatus.tier == standing.tier
            )
        )
        lots = [lot for lot in family_lots(conn, live) if lot.left and lot.expires_at is not None]
        rows = session.scalars(
            select(LoyaltyEntry)
            .where(LoyaltyEntry.profile_id.in_(family(conn, live)))
            .order_by(LoyaltyEntry.created_at.desc(), LoyaltyEntry.id.desc())
            .limit(max(1, min(limit, 500)))
        )
        history = [_line(row, live) for row in rows]
    tier = next((t for t in program.tiers if t.name == standing.tier), None)
    upcoming = program.next_tier(standing.tier)
    expiring = None
    if lots:
        first = min(lot.expires_at for lot in lots if lot.expires_at is not None)
        expiring = {"points": sum(lot.left for lot in lots if lot.expires_at == first), "at": _iso(first)}
    return {
        "profile_id": live,
        "requested_id": profile_id,
        "points": standing.points,
        "lifetime_points": standing.lifetime_points,
        "points_12m": standing.points_12m,
        "spend_12m": standing.spend_12m,
        "tier_basis": program.tier_basis,
        "figure": standing.figure,
        "tier": standing.tier,
        "tier_since": _iso(since),
        "benefits": tier.benefits if tier else "",
        "next_tier": None
        if upcoming is None
        else {
            "name": upcoming.name,
            "threshold": upcoming.threshold,
            "needed": round(max(0.0, upcoming.threshold - standing.figure), 2),
            "progress": round(
                min(1.0, standing.figure / upcoming.threshold) if upcoming.threshold else 1.0, 3
            ),
        },
        "expiring_next": expiring,
        "history": history,
    }


def _line(row: LoyaltyEntry, live: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "points": row.points,
        "reason": row.reason,
        "event_id": row.event_id,
        "created_at": _iso(row.created_at),
        "expires_at": _iso(row.expires_at),
        "actor_user_id": row.actor_user_id,
        "from_merged": row.profile_id != live,
    }


@dataclass(frozen=True, slots=True)
class LedgerChange:
    profile_id: str  # the live customer
    entry_id: int
    points: int  # as written: negative for a redemption
    balance: int  # after the change
    tier_change: TierChange | None


def _writable(db: Database, viewer: Viewer, profile_id: str) -> str:
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)  # ProfileNotFound (404) outside the scope
    if not viewer.can("edit") or not may_change(db, viewer, live):
        raise Forbidden("changing this customer's points needs the edit permission on the customer")
    return live


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise Invalid("reason: say why, for the customer's history", details={"field": "reason"})
    if len(text) > MAX_REASON:
        raise Invalid(f"reason: at most {MAX_REASON} characters", details={"field": "reason"})
    return text


def _points(points: Any, *, positive: bool) -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise Invalid("points: must be a whole number", details={"field": "points"})
    if positive and points <= 0:
        raise Invalid("points: must be above 0", details={"field": "points"})
    if not points or abs(points) > MAX_POINTS:
        raise Invalid(
            f"points: must be between -{MAX_POINTS} and {MAX_POINTS}, not 0", details={"field": "points"}
        )
    return points


def _write(
    conn: Connection,
    live: str,
    program: Program,
    *,
    kind: str,
    points: int,
    reason: str,
    actor: int | None,
    now: datetime,
) -> LedgerChange:
    """One ledger line for the live customer, refused if it would take the balance below zero."""
    lock_status(conn, live, now=now)
    balance = compute_standing(conn, live, program, now=now).points
    if points < 0 and balance + points < 0:
        raise Conflict(
            f"points: the balance is {balance}, which is less than {-points}",
            details={"field": "points", "balance": balance},
        )
    expires = months_after(now, program.expiry_months) if points > 0 and program.expiry_months else None
    entry_id = conn.execute(
        insert(LoyaltyEntry)
        .values(
            profile_id=live,
            kind=kind,
            points=points,
            reason=reason,
            event_id=None,
            expires_at=expires,
            created_at=now,
            actor_user_id=actor,
        )
        .returning(LoyaltyEntry.id)
    ).scalar_one()
    change = refresh_status(conn, live, program, now=now)
    return LedgerChange(live, int(entry_id), points, balance + points, change)


def redeem(
    db: Database,
    viewer: Viewer,
    profile_id: str,
    points: Any,
    reason: str,
    *,
    now: datetime,
    settings: Settings | None = None,
) -> LedgerChange:
    """Spend `points` of the customer's balance (a reward, a discount); Conflict naming `points` when
    the balance is less."""
    return _change(db, viewer, profile_id, "redeem", -_points(points, positive=True), reason, now, settings)


def adjust(
    db: Database,
    viewer: Viewer,
    profile_id: str,
    points: Any,
    reason: str,
    *,
    now: datetime,
    settings: Settings | None = None,
) -> LedgerChange:
    """Add (a goodwill gesture, a purchase the channels missed) or take away points, with a reason.
    Points added expire like earned ones; taking away more than the balance is refused."""
    return _change(db, viewer, profile_id, "adjust", _points(points, positive=False), reason, now, settings)


def _change(
    db: Database,
    viewer: Viewer,
    profile_id: str,
    kind: str,
    amount: int,
    reason: str,
    now: datetime,
    settings: Settings | None,
) -> LedgerChange:
    why = _reason(reason)
    live = _writable(db, viewer, profile_id)
    with db.write() as session:
        conn = session.connection()
        program = program_in(conn)
        change = _write(
            conn, live, program, kind=kind, points=amount, reason=why, actor=viewer.user_id, now=now
        )
    # A redemption changes no tier itself, but it refreshes the standing, which may carry a change a
    # merge made since the last earning run: announce it either way.
    if change.tier_change is not None:
        announce(db, settings or get_settings(), changes=[change.tier_change], now=now)
    return change
