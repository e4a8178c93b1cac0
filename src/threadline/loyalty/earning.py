"""Earning: the `loyalty.earn` job turns events from every channel into ledger lines.

It reads events by id after a watermark (workspace_settings "loyalty.earn.watermark"), in batches of one
write transaction each: an earn line per event an earn rule names (at most one: the ledger's unique
(event_id, kind)), the customers' standing refreshed, then, after commit, "Points Earned" and any
"Loyalty Tier Changed" on their timelines; the watermark moves last.

Safe to run again: each run reads again the last LOOKBACK ids before the watermark, because on
PostgreSQL a transaction can commit an event with a lower id after one with a higher id was seen; an
event that has its earn line already is skipped. A run that died after a batch committed but before
its timeline events were written writes them on the next run (their messageIds make a repeat a
duplicate); a tier change lost that way shows in the standing but has no event.

The same job refreshes the customers of merges and unmerges since its last run, so a tier that a merge
gives (or an unmerge takes back) reaches the timeline too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, or_, select

from threadline.config import Settings
from threadline.loyalty.program import Program, program_in
from threadline.loyalty.standing import TierChange, live_of, months_after, refresh_status
from threadline.loyalty.timeline import Earned, announce, loyalty_source
from threadline.loyalty.watermarks import EARN_MARK, iso, parse, read_mark, save_mark
from threadline.storage import Database
from threadline.storage.models import Event, LoyaltyEntry, LoyaltyStatus, Merge

LOOKBACK = 1000  # event ids read again before the watermark
MERGE_LOOKBACK = timedelta(minutes=10)  # merges read again before the last run, for the same reason
MAX_REASON = 300  # loyalty_ledger.reason


@dataclass(frozen=True, slots=True)
class EarnRun:
    events: int  # earning events newly credited
    points: int
    tier_changes: int
    timeline: int  # timeline events written

    def counts(self) -> dict[str, int]:
        return {
            "events": self.events,
            "points": self.points,
            "tier_changes": self.tier_changes,
            "timeline": self.timeline,
        }


def earn_points(db: Database, settings: Settings, *, now: datetime, batch_size: int = 500) -> EarnRun:
    """Credit every earning event after the watermark; answers what it did (counts, no personal data)."""
    own_source = loyalty_source(db, now=now).id
    with db.read() as session:
        conn = session.connection()
        program, mark = program_in(conn), read_mark(conn, EARN_MARK)
    announced_to = int(mark.get("event_id", 0))
    after = max(0, announced_to - LOOKBACK)
    credited = points = timeline = changed = 0
    names = sorted(rule.event for rule in program.earn_rules)
    while names:
        with db.write() as session:
            batch = _earn_batch(session.connection(), program, names, own_source, after, batch_size, now)
        if batch.last is None:
            break
        # Lines found already but past the watermark were written by a run that stopped before
        # announcing them: announce them again (a repeat is a duplicate messageId).
        unannounced = [e for e in batch.found if e.event_id > announced_to]
        earned = [*batch.new, *unannounced]
        timeline += announce(db, settings, earned=earned, changes=batch.changes, now=now)
        credited += len(batch.new)
        points += sum(e.points for e in batch.new)
        changed += len(batch.changes)
        after = batch.last
        with db.write() as session:
            conn = session.connection()
            marked = read_mark(conn, EARN_MARK)
            if after > int(marked.get("event_id", 0)):
                save_mark(conn, EARN_MARK, {**marked, "event_id": after}, now=now)
    merge_changes = _refresh_merged(db, program, now=now)
    timeline += announce(db, settings, changes=merge_changes, now=now)
    return EarnRun(credited, points, changed + len(merge_changes), timeline)


@dataclass(frozen=True, slots=True)
class _Batch:
    last: int | None  # the last event id read; None when there were none
    new: list[Earned]
    found: list[Earned]  # credited before
    changes: list[TierChange]


def _earn_batch(
    conn: Connection,
    program: Program,
    names: list[str],
    own_source: int,
    after: int,
    size: int,
    now: datetime,
) -> _Batch:
    rows = conn.execute(
        select(
            Event.id,
            Event.profile_id,
            Event.original_profile_id,
            Event.channel,
            Event.name,
            Event.properties,
            Event.timestamp,
        )
        .where(Event.id > after, Event.name.in_(names), Event.source_id != own_source)
        .order_by(Event.id)
        .limit(size)
    ).all()
    if not rows:
        return _Batch(None, [], [], [])
    credited = dict(
        conn.execute(
            select(LoyaltyEntry.event_id, LoyaltyEntry.points).where(
                LoyaltyEntry.kind == "earn", LoyaltyEntry.event_id.in_([row.id for row in rows])
            )
        ).all()
    )
    new: list[Earned] = []
    found: list[Earned] = []
    touched: set[str] = set()
    for row in rows:
        rule = program.rule_for(row.name)
        if rule is None:
            continue
        # Earned when it happened (a purchase imported late earns at its own time), never in the future.
        at = min(row.timestamp, now)
        if row.id in credited:
            found.append(Earned(row.profile_id, row.id, row.name, row.channel, int(credited[row.id]), at))
            continue
        points = program.points_for(rule, row.properties or {}, row.channel)
        if points <= 0:
            continue
        conn.execute(
            insert(LoyaltyEntry).values(
                # The profile the event was written for: an unmerge gives the event, and so its
                # points, back to it (standing.py).
                profile_id=row.original_profile_id,
                kind="earn",
                points=points,
                reason=f"{row.name} ({row.channel})"[:MAX_REASON],
                event_id=row.id,
                expires_at=months_after(at, program.expiry_months) if program.expiry_months else None,
                created_at=at,
                actor_user_id=None,
            )
        )
        new.append(Earned(row.profile_id, row.id, row.name, row.channel, points, at))
        touched.add(row.profile_id)
    changes = [
        change
        for live in sorted(live_of(conn, touched))
        if (change := refresh_status(conn, live, program, now=now)) is not None
    ]
    return _Batch(rows[-1].id, new, found, changes)


def _refresh_merged(db: Database, program: Program, *, now: datetime) -> list[TierChange]:
    """Refresh the standing of both sides of every merge and unmerge since the last run that concern a
    customer with points, so the tier they hold now reaches the timeline."""
    with db.write() as session:
        conn = session.connection()
        mark = read_mark(conn, EARN_MARK)
        since = parse(mark.get("merges_at"))
        query = select(Merge.survivor_id, Merge.merged_id).where(Merge.status.in_(("merged", "unmerged")))
        if since is not None:
            since -= MERGE_LOOKBACK
            query = query.where(or_(Merge.created_at > since, Merge.unmerged_at > since))
        ids = {profile_id for pair in conn.execute(query) for profile_id in pair}
        changes: list[TierChange] = []
        if ids:
            with_points = set(
                conn.scalars(select(LoyaltyEntry.profile_id).where(LoyaltyEntry.profile_id.in_(sorted(ids))))
            ) | set(
                conn.scalars(
                    select(LoyaltyStatus.profile_id).where(LoyaltyStatus.profile_id.in_(sorted(ids)))
                )
            )
            for live in sorted(live_of(conn, with_points)):
                change = refresh_status(conn, live, program, now=now)
                if change is not None:
                    changes.append(change)
        save_mark(conn, EARN_MARK, {**mark, "merges_at": iso(now)}, now=now)
    return changes
