"""Queueing deliveries: what ingestion and segment membership call, inside their own transaction.

Both run on hot paths (every ingestion batch, every membership chunk), so each call costs one read of
the enabled destinations (a table of a handful of rows, like ingestion's read of active segments),
matching in Python, one multi-row insert and one job per 500 deliveries. Nothing is sent here: the
worker's `destinations.deliver` job does (delivery.py), so a slow or dead webhook never holds up
ingestion. The rows and their job are written in the caller's transaction: a delivery exists exactly
when its event (or membership change) does, and a rolled-back batch leaves none behind.

The enabled destinations are read again each batch rather than cached: a cache shared by several
processes could not learn that a destination was disabled, and "disabled gets nothing" must hold from
the next batch on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from threadline.destinations.catalog import PENDING, DestinationNotFound, Filters
from threadline.jobs import enqueue_in
from threadline.storage.models import Destination, DestinationDelivery

JOB_KIND = "destinations.deliver"
JOB_SIZE = 500  # deliveries per job: a job's payload stays small and one job's run stays short
# Threadline's own membership events (segments/membership.py, SOURCE_NAME and ENTERED / EXITED): a
# destination gets those as segment_entered / segment_left payloads instead, not twice.
_SEGMENT_SOURCE = "Segments"
_SEGMENT_EVENTS = frozenset({"Segment Entered", "Segment Exited"})
SEGMENT_KINDS = {"entered": "segment_entered", "left": "segment_left"}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


def event_payload(row: Mapping[str, Any], source_name: str) -> dict[str, Any]:
    """A stored event as a Segment Spec message, with the profile it landed on (`profileId`)."""
    kind = row["type"]
    document: dict[str, Any] = {"type": kind, "messageId": row["message_id"]}
    if kind == "track":
        document["event"] = row["name"]
    elif kind in ("page", "screen") and row["name"] is not None:
        document["name"] = row["name"]
    if row.get("user_id") is not None:
        document["userId"] = row["user_id"]
    if row.get("anonymous_id") is not None:
        document["anonymousId"] = row["anonymous_id"]
    if row.get("properties"):
        document["properties"] = row["properties"]
    if row.get("traits"):
        document["traits"] = row["traits"]
    document["context"] = row.get("context") or {}
    document["timestamp"] = _iso(row["timestamp"])
    if row.get("sent_at") is not None:
        document["sentAt"] = _iso(row["sent_at"])
    document["receivedAt"] = _iso(row["received_at"])
    document["profileId"] = row["profile_id"]
    document["channel"] = row["channel"]
    document["source"] = source_name
    return document


def enabled_destinations(conn: Connection) -> list[tuple[int, Filters]]:
    rows = conn.execute(select(Destination.id, Destination.filters).where(Destination.enabled.is_(True)))
    return [(destination_id, Filters.stored(dict(filters))) for destination_id, filters in rows]


def queue_deliveries(conn: Connection, rows: Sequence[dict[str, Any]], *, now: datetime) -> list[int]:
    """Insert delivery rows and the jobs that send them; answers their ids."""
    if not rows:
        return []
    result = conn.execute(insert(DestinationDelivery).returning(DestinationDelivery.id), list(rows))
    ids = sorted(int(i) for i in result.scalars())
    for start in range(0, len(ids), JOB_SIZE):
        # Each entry is [delivery id, attempts made so far]: the job makes the next attempt only while
        # the row still says so, so a re-run or a stale job never sends the same attempt twice.
        batch = [[i, 0] for i in ids[start : start + JOB_SIZE]]
        enqueue_in(conn, JOB_KIND, {"deliveries": batch}, now=now)
    return ids


def _row(
    destination_id: int, profile_id: str | None, kind: str, name: str | None, payload: Any, now: datetime
) -> dict[str, Any]:
    return {
        "destination_id": destination_id,
        "profile_id": profile_id,
        "kind": kind,
        "name": None if name is None else name[:200],
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def forward_events(
    conn: Connection, events: Iterable[Mapping[str, Any]], *, sources: Mapping[int, str], now: datetime
) -> int:
    """Queue a delivery of each stored event (a row as ingestion inserts it) to every enabled
    destination that wants it; answers how many were queued."""
    destinations = enabled_destinations(conn)
    if not destinations:
        return 0
    rows = []
    for event in events:
        source_name = sources.get(event["source_id"], "")
        if source_name == _SEGMENT_SOURCE and event["name"] in _SEGMENT_EVENTS:
            continue
        payload: dict[str, Any] | None = None
        for destination_id, filters in destinations:
            if filters.wants_event(event["type"], event["name"]):
                payload = payload or event_payload(event, source_name)
                label = event["name"] or event["type"]
                rows.append(_row(destination_id, event["profile_id"], "event", label, payload, now))
    return len(queue_deliveries(conn, rows, now=now))


def forward_segment_changes(
    conn: Connection,
    segment_id: int,
    segment_name: str,
    profile_ids: Iterable[str],
    change: str,
    *,
    now: datetime,
) -> int:
    """Queue `{"type": "segment_entered" | "segment_left", ...}` for customers who entered or left a
    segment, to every enabled destination that wants that segment; answers how many were queued."""
    kind = SEGMENT_KINDS[change]
    wanting = [d for d, filters in enabled_destinations(conn) if filters.wants_segment(segment_id, change)]
    if not wanting:
        return 0
    at = _iso(now)
    rows = []
    for profile_id in profile_ids:
        payload = {
            "type": kind,
            "segment": {"id": segment_id, "name": segment_name},
            "profile_id": profile_id,
            "at": at,
            # Stable for this change, so a receiver can drop a repeat (deliveries are at least once).
            "messageId": f"{kind}-{segment_id}-{profile_id}-{now:%Y%m%dT%H%M%S%f}",
        }
        rows += [_row(d, profile_id, kind, segment_name, payload, now) for d in wanting]
    return len(queue_deliveries(conn, rows, now=now))


def send_to_destination(
    conn: Connection,
    destination_id: int,
    payload: dict[str, Any],
    *,
    profile_id: str | None,
    kind: str = "journey",
    name: str | None = None,
    now: datetime,
) -> int:
    """Queue one payload to one destination whatever its filters say (a journey's webhook step), in the
    caller's transaction, with the same signing, retries and dead letters; answers the delivery's id.
    Give `profile_id` when the payload is about a customer, so erasure removes it."""
    if conn.scalar(select(Destination.id).where(Destination.id == destination_id)) is None:
        raise DestinationNotFound(
            f"destination: no destination {destination_id}", details={"field": "destination"}
        )
    return queue_deliveries(conn, [_row(destination_id, profile_id, kind, name, payload, now)], now=now)[0]
