"""Enrolment: the matching customers of new events (and of each day's schedule) enter active journeys.
Trait changes enrol in the write path's own transaction (trait_changes.py), date anniversaries by an
hourly scan (anniversaries.py); all of them enter through `enrol` here.

The `journeys.run` job reads events by id after a watermark (workspace_settings
"journeys.enrol.watermark"), like loyalty's earning job, in batches of one write transaction each, and
reads the last LOOKBACK ids again, because on PostgreSQL a transaction can commit an event with a lower
id after one with a higher id was seen. Reading an event twice is harmless: an enrollment's unique
(journey, customer, entry key) lets the first insert through and makes a repeat a no-op.

Entry keys carry the re-entry rule: "once" for journeys entered once ever; the trigger event's id (or the
schedule's day) for journeys entered again, after the rule's days have passed since the last entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from threadline.journeys.definitions import ACTIVE
from threadline.storage import Database, put_setting, read_setting
from threadline.storage.models import Event, Journey, JourneyEnrollment, Profile

MARK = "journeys.enrol.watermark"
LOOKBACK = 1000
# threadline.segments' membership events (segments/computed.py MEMBERSHIP_EVENTS), by trigger `on`.
SEGMENT_EVENTS = {"enter": "Segment Entered", "leave": "Segment Exited"}
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ActiveJourney:
    """An active journey as enrolment needs it, read once per run (or per ingest batch)."""

    id: int
    trigger: dict[str, Any]
    reentry: str
    reentry_days: int | None
    first_key: str
    activated_at: datetime
    scheduled_at: datetime | None


def active_journeys(conn: Connection, types: tuple[str, ...]) -> list[ActiveJourney]:
    rows = conn.execute(
        select(
            Journey.id,
            Journey.trigger,
            Journey.reentry,
            Journey.reentry_days,
            Journey.steps,
            Journey.activated_at,
            Journey.scheduled_at,
        ).where(Journey.status == ACTIVE)
    ).all()
    return [
        ActiveJourney(
            row.id,
            dict(row.trigger),
            row.reentry,
            row.reentry_days,
            row.steps[0]["key"],
            row.activated_at,
            row.scheduled_at,
        )
        for row in rows
        if row.trigger.get("type") in types and row.activated_at is not None
    ]


def _event_name(trigger: dict[str, Any]) -> str:
    if trigger["type"] == "segment":
        return SEGMENT_EVENTS[trigger.get("on", "enter")]
    return str(trigger["event"])


def _mark_of(value: Any) -> int:
    return int(value.get("event_id", 0)) if isinstance(value, dict) else 0


def _read_mark(conn: Connection) -> int:
    return _mark_of(read_setting(conn, MARK))


def _save_mark(conn: Connection, event_id: int, now: datetime) -> None:
    # The mark only moves forward: a run that read an older one must not take it back.
    stored = read_setting(conn, MARK)
    if stored is None or event_id > _mark_of(stored):
        put_setting(conn, MARK, {"event_id": event_id}, user_id=None, now=now)


def _matches(journey: ActiveJourney, name: str, properties: dict[str, Any]) -> bool:
    trigger = journey.trigger
    if name != _event_name(trigger):
        return False
    if trigger["type"] == "segment":
        return bool(properties.get("segment_id") == trigger["segment_id"])
    wanted = trigger.get("where") or {}
    return all(properties.get(k) == v for k, v in wanted.items())


def live_profile(conn: Connection, profile_id: str) -> str | None:
    current = profile_id
    for _ in range(5):
        merged_into = conn.execute(select(Profile.merged_into).where(Profile.id == current)).first()
        if merged_into is None or merged_into[0] == current:  # gone, or the erased-events holder
            return None
        if merged_into[0] is None:
            return current
        current = merged_into[0]
    return None


def _may_enter(conn: Connection, journey: ActiveJourney, profile_id: str, at: datetime) -> bool:
    """Not while in the journey already; after an earlier entry, only as the re-entry rule allows."""
    last = conn.execute(
        select(JourneyEnrollment.status, JourneyEnrollment.entered_at)
        .where(JourneyEnrollment.journey_id == journey.id, JourneyEnrollment.profile_id == profile_id)
        .order_by(JourneyEnrollment.entered_at.desc())
        .limit(1)
    ).first()
    if last is None:
        return True
    if last.status == ACTIVE or journey.reentry == "once":
        return False
    return bool(last.entered_at + timedelta(days=journey.reentry_days or 0) <= at)


def enrol(
    conn: Connection,
    journey: ActiveJourney,
    profile_id: str,
    key: str,
    context: dict[str, Any],
    *,
    at: datetime,
) -> int:
    """Enter the customer unless the re-entry rule says no; answers 1 when entered, else 0."""
    if not _may_enter(conn, journey, profile_id, at):
        return 0
    entry_key = "once" if journey.reentry == "once" else key
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    result = conn.execute(
        dialect_insert(JourneyEnrollment)
        .values(
            journey_id=journey.id,
            profile_id=profile_id,
            entry_key=entry_key,
            status=ACTIVE,
            step_index=0,
            step_key=journey.first_key,
            step_started_at=at,
            next_run_at=at,
            context=context,
            entered_at=at,
            updated_at=at,
        )
        .on_conflict_do_nothing(index_elements=["journey_id", "profile_id", "entry_key"])
    )
    return int(result.rowcount or 0)


def enrol_from_events(db: Database, *, now: datetime, batch_size: int = 500) -> int:
    """Enrol the customers of events since the watermark in journeys they trigger; answers how many."""
    with db.read() as session:
        journeys = active_journeys(session.connection(), ("event", "segment"))
        after = max(0, _read_mark(session.connection()) - LOOKBACK)
    names = sorted({_event_name(j.trigger) for j in journeys})
    enrolled = 0
    while names:
        with db.write() as session:
            conn = session.connection()
            rows = conn.execute(
                select(Event.id, Event.profile_id, Event.name, Event.properties, Event.timestamp)
                .where(Event.id > after, Event.name.in_(names))
                .order_by(Event.id)
                .limit(batch_size)
            ).all()
            if not rows:
                break
            for row in rows:
                properties = dict(row.properties or {})
                for journey in journeys:
                    if row.timestamp < journey.activated_at or not _matches(journey, row.name, properties):
                        continue
                    live = live_profile(conn, row.profile_id)
                    if live is None:
                        continue
                    context = {"trigger": row.name, "event_id": row.id, "event": properties}
                    enrolled += enrol(conn, journey, live, f"event:{row.id}", context, at=row.timestamp)
            after = rows[-1].id
            _save_mark(conn, after, now)
    return enrolled


def enrol_scheduled(db: Database, *, now: datetime) -> int:
    """Each schedule-triggered journey, once a day at its hour (UTC), enrols every live customer; its
    first steps (a branch) decide who goes on. Safe to run again: the day is the entry key."""
    with db.read() as session:
        journeys = active_journeys(session.connection(), ("schedule",))
    enrolled = 0
    for journey in journeys:
        occurrence = datetime(now.year, now.month, now.day, int(journey.trigger.get("at_hour", 9)))
        if now < occurrence or (journey.scheduled_at is not None and journey.scheduled_at >= occurrence):
            continue
        after = ""
        while True:
            with db.write() as session:
                conn = session.connection()
                ids = conn.scalars(
                    select(Profile.id)
                    .where(Profile.merged_into.is_(None), Profile.id > after)
                    .order_by(Profile.id)
                    .limit(_CHUNK)
                ).all()
                if not ids:
                    conn.execute(
                        update(Journey).where(Journey.id == journey.id).values(scheduled_at=occurrence)
                    )
                    break
                for profile_id in ids:
                    key = f"day:{occurrence:%Y-%m-%d}"
                    enrolled += enrol(conn, journey, profile_id, key, {"trigger": "schedule"}, at=now)
                after = ids[-1]
    return enrolled
