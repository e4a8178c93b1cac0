"""Keeping memberships current: a full recompute of a segment, and an incremental refresh of the
customers an ingestion batch touched.

Both diff what the definition selects now against `segment_memberships` and apply the difference in
chunks. Each customer who enters or leaves gets a "Segment Entered" / "Segment Exited" track event on
their timeline, through the one write path (the internal source "Segments"), so journeys can start on it.

Order within a chunk: the events first, then the membership rows. A job that dies in between runs
again and writes the events again; an exit's messageId is fixed by the stay it ends (segment, customer,
entered_at), so the write path drops the repeat; an entry's names the run's time, so a retry after such
a crash can show one entry twice. Twice is better than never for a trigger: journeys check membership.
A profile merged away meanwhile leaves without an event: its events and identifiers are the survivor's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from threadline.config import Settings
from threadline.destinations import forward_segment_changes
from threadline.ingest import ingest, internal_source
from threadline.segments.catalog import SegmentNotFound, compiler_for
from threadline.storage import Database
from threadline.storage.models import Identity, Profile, Segment, SegmentMembership

log = logging.getLogger(__name__)

SOURCE_NAME = "Segments"
ENTERED, EXITED = "Segment Entered", "Segment Exited"
CHUNK = 500
MAX_REFRESH = 5000  # profile ids one refresh job takes; ingestion batches are far smaller
# Identifier kinds that attach an event to the customer, in messaging's order (messaging/timeline.py).
_ATTACH_ORDER = ("user_id", "anonymous_id", "email")


@dataclass(frozen=True, slots=True)
class MembershipChange:
    segment_id: int
    entered: int
    exited: int
    members: int | None  # after a full recompute; None after a refresh

    def counts(self) -> dict[str, int]:
        return {"entered": self.entered, "exited": self.exited}


def recompute(db: Database, segment_id: int, *, now: datetime, settings: Settings) -> MembershipChange:
    """Compute a segment's members from scratch, apply the difference, and record the count."""
    with db.read() as session:
        row = session.get(Segment, segment_id)
        if row is None:
            raise SegmentNotFound(f"segment {segment_id} does not exist")
        name = row.name
        condition = compiler_for(session, now).condition(dict(row.definition))
        selected = set(session.scalars(select(Profile.id).where(Profile.merged_into.is_(None), condition)))
        current = dict(
            session.execute(
                select(SegmentMembership.profile_id, SegmentMembership.entered_at).where(
                    SegmentMembership.segment_id == segment_id
                )
            ).all()
        )
    entered = sorted(selected - current.keys())
    leaving = {p: at for p, at in current.items() if p not in selected}
    _apply(db, settings, segment_id, name, entered, leaving, now=now)
    with db.write() as session:
        members = session.scalar(select(func.count()).where(SegmentMembership.segment_id == segment_id))
        session.execute(
            update(Segment).where(Segment.id == segment_id).values(member_count=members or 0, computed_at=now)
        )
    return MembershipChange(segment_id, len(entered), len(leaving), int(members or 0))


def recompute_all(db: Database, *, now: datetime, settings: Settings) -> dict[str, int]:
    """Recompute every active segment (the scheduled `segments.recompute` job)."""
    with db.read() as session:
        ids = list(session.scalars(select(Segment.id).where(Segment.active.is_(True)).order_by(Segment.id)))
    totals = {"segments": 0, "entered": 0, "exited": 0}
    for segment_id in ids:
        change = recompute(db, segment_id, now=now, settings=settings)
        totals["segments"] += 1
        totals["entered"] += change.entered
        totals["exited"] += change.exited
    return totals


def refresh(db: Database, profile_ids: Iterable[str], *, now: datetime, settings: Settings) -> dict[str, int]:
    """Re-evaluate only these customers against every active segment (after ingestion touched them):
    each segment's condition AND profile id IN (...). Counts are adjusted by the difference."""
    ids = sorted(set(profile_ids))[:MAX_REFRESH]
    totals = {"segments": 0, "entered": 0, "exited": 0}
    if not ids:
        return totals
    with db.read() as session:
        segments = session.execute(
            select(Segment.id, Segment.name, Segment.definition)
            .where(Segment.active.is_(True))
            .order_by(Segment.id)
        ).all()
    for segment_id, name, definition in segments:
        entered: list[str] = []
        leaving: dict[str, datetime] = {}
        with db.read() as session:
            condition = compiler_for(session, now).condition(dict(definition))
            for chunk in _chunks(ids):
                selected = set(
                    session.scalars(
                        select(Profile.id).where(
                            Profile.id.in_(chunk), Profile.merged_into.is_(None), condition
                        )
                    )
                )
                current = dict(
                    session.execute(
                        select(SegmentMembership.profile_id, SegmentMembership.entered_at).where(
                            SegmentMembership.segment_id == segment_id,
                            SegmentMembership.profile_id.in_(chunk),
                        )
                    ).all()
                )
                entered += sorted(selected - current.keys())
                leaving.update({p: at for p, at in current.items() if p not in selected})
        if entered or leaving:
            _apply(db, settings, segment_id, name, entered, leaving, now=now)
            with db.write() as session:
                session.execute(
                    update(Segment)
                    .where(Segment.id == segment_id)
                    .values(member_count=Segment.member_count + len(entered) - len(leaving))
                )
        totals["segments"] += 1
        totals["entered"] += len(entered)
        totals["exited"] += len(leaving)
    return totals


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])


def _apply(
    db: Database,
    settings: Settings,
    segment_id: int,
    name: str,
    entered: list[str],
    leaving: dict[str, datetime],
    *,
    now: datetime,
) -> None:
    source = internal_source(db, SOURCE_NAME, channel="other", now=now) if entered or leaving else None
    for chunk in _chunks(entered):
        _record(db, settings, source, segment_id, name, chunk, ENTERED, {}, now)
        with db.write() as session:
            # A concurrent refresh may have put some in already; the primary key keeps one row each.
            present = set(
                session.scalars(
                    select(SegmentMembership.profile_id).where(
                        SegmentMembership.segment_id == segment_id, SegmentMembership.profile_id.in_(chunk)
                    )
                )
            )
            rows = [
                {"segment_id": segment_id, "profile_id": p, "entered_at": now}
                for p in chunk
                if p not in present
            ]
            if rows:
                session.execute(insert(SegmentMembership), rows)
                # Destinations hear of it with the row, in its transaction (docs/destinations.md).
                joined = [str(row["profile_id"]) for row in rows]
                forward_segment_changes(session.connection(), segment_id, name, joined, "entered", now=now)
    for chunk in _chunks(sorted(leaving)):
        _record(db, settings, source, segment_id, name, chunk, EXITED, leaving, now)
        with db.write() as session:
            session.execute(
                delete(SegmentMembership).where(
                    SegmentMembership.segment_id == segment_id, SegmentMembership.profile_id.in_(chunk)
                )
            )
            forward_segment_changes(session.connection(), segment_id, name, chunk, "left", now=now)


def _record(
    db: Database,
    settings: Settings,
    source: Any,
    segment_id: int,
    name: str,
    profile_ids: list[str],
    event: str,
    stays: dict[str, datetime],
    now: datetime,
) -> None:
    """The chunk's events, on each live customer's strongest identifier (merged-away ones get none)."""
    attach = _attachments(db, profile_ids)
    stamp = now.isoformat(timespec="milliseconds") + "Z"
    messages = []
    for profile_id in profile_ids:
        target = attach.get(profile_id)
        if target is None:
            continue
        since = stays.get(profile_id, now)
        messages.append(
            {
                "type": "track",
                "event": event,
                **target,
                "properties": {"segment_id": segment_id, "segment_name": name},
                "timestamp": stamp,
                # Fixed by what it records, so the write path drops a repeat (see the module's docstring).
                "messageId": f"segment-{segment_id}-{'in' if event == ENTERED else 'out'}-{profile_id}-"
                f"{since:%Y%m%dT%H%M%S%f}",
            }
        )
    if messages:
        ingest(db, source, messages, settings=settings, received_at=now)


def _attachments(db: Database, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
    with db.read() as session:
        rows = session.execute(
            select(Identity.profile_id, Identity.kind, Identity.value)
            .join(Profile, Profile.id == Identity.profile_id)
            .where(
                Identity.profile_id.in_(profile_ids),
                Identity.kind.in_(_ATTACH_ORDER),
                Profile.merged_into.is_(None),
            )
            .order_by(Identity.first_seen, Identity.id)  # the newest of each kind wins below
        ).all()
    found: dict[str, dict[str, str]] = {}
    for profile_id, kind, value in rows:
        found.setdefault(profile_id, {})[kind] = value
    attach: dict[str, dict[str, Any]] = {}
    for profile_id, kinds in found.items():
        if "user_id" in kinds:
            attach[profile_id] = {"userId": kinds["user_id"]}
        elif "anonymous_id" in kinds:
            attach[profile_id] = {"anonymousId": kinds["anonymous_id"]}
        elif "email" in kinds:
            attach[profile_id] = {"context": {"traits": {"email": kinds["email"]}}}
    return attach
