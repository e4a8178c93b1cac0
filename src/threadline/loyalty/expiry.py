"""Expiry: points lapse `expiry_months` after they were earned, first in first out.

The method (`outstanding`): a customer's credits (earn lines and adjustments up) are lots, ordered by
when they expire (the order they were earned in; a lot without expiry last). Everything spent (redeem,
expire, adjustments down) uses up lots in that order, oldest first. What is left of a lot whose expiry
has come is what expires. The expire lines written count as spent, so running the job again finds
nothing more: safe to repeat. Lots merged from another profile take part like the customer's own; an
expire line goes on the profile its lot was written for, so an unmerge takes it back with the lot.

The daily `loyalty.expire` job also refreshes every customer's standing, which is how a tier held on a
rolling window comes down once its holding period has passed (standing.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, insert, or_, select

from threadline.config import Settings
from threadline.loyalty.program import Program, program_in
from threadline.loyalty.standing import CREDITS, TierChange, family, live_of, lock_status, refresh_status
from threadline.loyalty.timeline import announce
from threadline.loyalty.watermarks import EXPIRE_MARK, iso, parse, read_mark, save_mark
from threadline.storage import Database
from threadline.storage.models import LoyaltyEntry, LoyaltyStatus, Profile


@dataclass(frozen=True, slots=True)
class Lot:
    id: int
    profile_id: str
    points: int
    expires_at: datetime | None
    left: int  # not yet used up by what was spent


def outstanding(entries: Sequence[tuple[int, str, str, int, datetime | None]]) -> list[Lot]:
    """FIFO: the credit lots of (id, profile_id, kind, points, expires_at) lines, each with what is left
    of it once everything spent has used up the lots that expire first."""
    credits = sorted(
        (e for e in entries if e[2] in CREDITS and e[3] > 0),
        key=lambda e: (e[4] is None, e[4] or datetime.max, e[0]),
    )
    spent = -sum(e[3] for e in entries if e[3] < 0)
    lots = []
    for entry_id, profile_id, _, points, expires_at in credits:
        used = min(points, spent)
        spent -= used
        lots.append(Lot(entry_id, profile_id, points, expires_at, points - used))
    return lots


def family_lots(conn: Connection, live: str) -> list[Lot]:
    rows = conn.execute(
        select(
            LoyaltyEntry.id,
            LoyaltyEntry.profile_id,
            LoyaltyEntry.kind,
            LoyaltyEntry.points,
            LoyaltyEntry.expires_at,
        ).where(LoyaltyEntry.profile_id.in_(family(conn, live)))
    ).all()
    return outstanding([tuple(row) for row in rows])  # type: ignore[misc]


def expire_customer(
    conn: Connection, live: str, program: Program, *, now: datetime
) -> tuple[int, TierChange | None]:
    """Write the expire lines the customer's lots are due; answers the points expired and any tier change."""
    lock_status(conn, live, now=now)
    due: dict[str, int] = defaultdict(int)
    for lot in family_lots(conn, live):
        if lot.left and lot.expires_at is not None and lot.expires_at <= now:
            due[lot.profile_id] += lot.left
    for profile_id, points in sorted(due.items()):
        conn.execute(
            insert(LoyaltyEntry).values(
                profile_id=profile_id,
                kind="expire",
                points=-points,
                reason="expired",
                event_id=None,
                expires_at=None,
                created_at=now,
                actor_user_id=None,
            )
        )
    return sum(due.values()), refresh_status(conn, live, program, now=now)


@dataclass(frozen=True, slots=True)
class ExpireRun:
    customers: int  # customers with points expired
    points: int
    tier_changes: int

    def counts(self) -> dict[str, int]:
        return {"customers": self.customers, "points": self.points, "tier_changes": self.tier_changes}


def expire_points(db: Database, settings: Settings, *, now: datetime, batch_size: int = 200) -> ExpireRun:
    """Expire the points due by `now`, then refresh every customer's standing (tiers on a rolling
    window come down); tier changes go on the timeline."""
    with db.read() as session:
        conn = session.connection()
        program, mark = program_in(conn), read_mark(conn, EXPIRE_MARK)
        since, seen_id = parse(mark.get("expires_at")), int(mark.get("entry_id", 0))
        due = LoyaltyEntry.expires_at <= now
        # Lots whose expiry came since the last run, and lots written since then already past it
        # (points earned late for an old purchase).
        query = select(LoyaltyEntry.profile_id).where(
            LoyaltyEntry.kind.in_(CREDITS),
            due,
            or_(LoyaltyEntry.id > seen_id, LoyaltyEntry.expires_at > since) if since else due,
        )
        customers = sorted(live_of(conn, set(conn.scalars(query.distinct()))))
        top = conn.scalar(select(LoyaltyEntry.id).order_by(LoyaltyEntry.id.desc()).limit(1)) or 0
    expired = touched = 0
    changes: list[TierChange] = []
    for start in range(0, len(customers), batch_size):
        with db.write() as session:
            for live in customers[start : start + batch_size]:
                points, change = expire_customer(session.connection(), live, program, now=now)
                expired, touched = expired + points, touched + bool(points)
                changes += [change] if change else []
    changes += _refresh_all(db, program, now=now, batch_size=batch_size)
    with db.write() as session:
        save_mark(session.connection(), EXPIRE_MARK, {"expires_at": iso(now), "entry_id": int(top)}, now=now)
    announce(db, settings, changes=changes, now=now)
    return ExpireRun(touched, expired, len(changes))


def _refresh_all(db: Database, program: Program, *, now: datetime, batch_size: int) -> list[TierChange]:
    """Every live customer's standing, recomputed in batches (one short transaction each)."""
    changes: list[TierChange] = []
    after = ""
    while True:
        with db.write() as session:
            conn = session.connection()
            ids = list(
                conn.scalars(
                    select(LoyaltyStatus.profile_id)
                    .join(
                        Profile, and_(Profile.id == LoyaltyStatus.profile_id, Profile.merged_into.is_(None))
                    )
                    .where(LoyaltyStatus.profile_id > after)
                    .order_by(LoyaltyStatus.profile_id)
                    .limit(batch_size)
                )
            )
            for live in ids:
                change = refresh_status(conn, live, program, now=now)
                if change is not None:
                    changes.append(change)
        if not ids:
            return changes
        after = ids[-1]
