"""Destinations as records: what each receives (its filters), validation that names the field, the
signing secret made at creation, and the delivery log's counts and recent rows.

Who may change them (admins) is the interfaces' check, as for sources: a destination sends customers'
events out of Threadline, so it is a workspace setting, not a record in anyone's data scope.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from threadline.errors import Conflict, Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import Destination, DestinationDelivery, Segment

# Kept in step with threadline.ingest's MESSAGE_TYPES (ingest/messages.py; a test compares them): the
# ingest package imports this one on its write path, so this one cannot import it back.
EVENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")
SEGMENT_CHANGES = ("entered", "left")
PENDING, SENDING, DELIVERED, FAILED, DEAD = "pending", "sending", "delivered", "failed", "dead"
DELIVERY_STATUSES = (PENDING, SENDING, DELIVERED, FAILED, DEAD)
SECRET_PREFIX = "whsec_"
MAX_NAMES = 100


class DestinationNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class Filters:
    """What a destination receives. `events`: "all", "none" or event names (a track event's name, a
    page's or screen's name); `event_types`: message types, empty for every type; `segments`: "all",
    "none" or segment ids; `segment_changes`: entered and/or left."""

    events: str | tuple[str, ...] = "all"
    event_types: tuple[str, ...] = ()
    segments: str | tuple[int, ...] = "all"
    segment_changes: tuple[str, ...] = SEGMENT_CHANGES

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events if isinstance(self.events, str) else list(self.events),
            "event_types": list(self.event_types),
            "segments": self.segments if isinstance(self.segments, str) else list(self.segments),
            "segment_changes": list(self.segment_changes),
        }

    @classmethod
    def stored(cls, data: dict[str, Any]) -> Filters:
        """Filters as saved (already validated)."""
        events, segments = data.get("events", "all"), data.get("segments", "all")
        return cls(
            events if isinstance(events, str) else tuple(events),
            tuple(data.get("event_types", ())),
            segments if isinstance(segments, str) else tuple(int(s) for s in segments),
            tuple(data.get("segment_changes", SEGMENT_CHANGES)),
        )

    def wants_event(self, type_: str, name: str | None) -> bool:
        if self.events == "none" or (self.event_types and type_ not in self.event_types):
            return False
        return self.events == "all" or (name is not None and name in self.events)

    def wants_segment(self, segment_id: int, change: str) -> bool:
        if self.segments == "none" or change not in self.segment_changes:
            return False
        return self.segments == "all" or segment_id in self.segments


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    delivered: int = 0
    pending: int = 0
    failed: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "pending": self.pending,
            "failed": self.failed,
            "dead": self.dead,
        }


@dataclass(frozen=True, slots=True)
class DestinationView:
    id: int
    name: str
    url: str
    enabled: bool
    filters: Filters
    secret_hint: str  # the secret masked: it is shown in full once, when the destination is made
    created_at: datetime
    updated_at: datetime
    stats: DeliveryStats

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "enabled": self.enabled,
            **self.filters.as_dict(),
            "signing_secret": self.secret_hint,
            "created_at": self.created_at.isoformat() + "Z",
            "updated_at": self.updated_at.isoformat() + "Z",
            "stats": self.stats.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    destination_id: int
    kind: str
    name: str | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat() + "Z"

        return {
            "id": self.id,
            "destination_id": self.destination_id,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "created_at": iso(self.created_at),
            "delivered_at": iso(self.delivered_at),
        }


def mask_secret(secret: str) -> str:
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        raise Invalid("name: must be 1 to 100 characters", details={"field": "name"})
    return name.strip()


def check_url(url: Any) -> str:
    """An absolute http or https URL with a host. Private addresses are allowed on purpose: a
    destination is often an adapter on the same network, and only admins set them."""
    text = url.strip() if isinstance(url, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(text) > 2000:
        raise Invalid(
            "url: must be an http or https URL with a host, up to 2000 characters", details={"field": "url"}
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise Invalid("url: the port must be a number from 1 to 65535", details={"field": "url"}) from None
    return text


def _names(value: Any, field: str, *, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_NAMES:
        raise Invalid(f"{field}: must be a list of at most {MAX_NAMES} names", details={"field": field})
    names = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > 200:
            raise Invalid(
                f"{field}[{index}]: must be 1 to 200 characters", details={"field": f"{field}[{index}]"}
            )
        if allowed is not None and item not in allowed:
            raise Invalid(
                f"{field}[{index}]: must be one of {', '.join(allowed)}",
                details={"field": f"{field}[{index}]"},
            )
        if item.strip() not in names:
            names.append(item.strip())
    return tuple(names)


def check_filters(db: Database, data: dict[str, Any]) -> Filters:
    """Validate the filter fields of a create or an update (missing ones take their defaults)."""
    events = data.get("events", "all")
    if events not in ("all", "none"):
        events = _names(events, "events")
        if not events:
            raise Invalid(
                'events: name at least one event, or say "all" or "none"', details={"field": "events"}
            )
    event_types = _names(data.get("event_types") or [], "event_types", allowed=EVENT_TYPES)
    segments = data.get("segments", "all")
    if segments not in ("all", "none"):
        if not isinstance(segments, list) or not segments:
            raise Invalid(
                'segments: must be "all", "none" or a list of segment ids', details={"field": "segments"}
            )
        ids: list[int] = []
        for index, item in enumerate(segments):
            if not isinstance(item, int) or isinstance(item, bool):
                raise Invalid(
                    f"segments[{index}]: must be a segment id", details={"field": f"segments[{index}]"}
                )
            ids.append(item)
        with db.read() as session:
            known = set(session.scalars(select(Segment.id).where(Segment.id.in_(ids))))
        for index, item in enumerate(ids):
            if item not in known:
                raise Invalid(
                    f"segments[{index}]: no segment {item}", details={"field": f"segments[{index}]"}
                )
        segments = tuple(dict.fromkeys(ids))
    changes = data.get("segment_changes", list(SEGMENT_CHANGES))
    segment_changes = _names(changes, "segment_changes", allowed=SEGMENT_CHANGES)
    if segments != "none" and not segment_changes:
        raise Invalid(
            "segment_changes: name entered, left or both (or set segments to none)",
            details={"field": "segment_changes"},
        )
    return Filters(events, event_types, segments, segment_changes)


def create_destination(
    db: Database,
    *,
    name: Any,
    url: Any,
    enabled: bool = True,
    filters: dict[str, Any] | None = None,
    created_by: int | None = None,
    now: datetime,
) -> tuple[DestinationView, str]:
    """Make a destination; answers it and its signing secret, which is never shown in full again."""
    clean_name, clean_url = check_name(name), check_url(url)
    chosen = check_filters(db, filters or {})
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = Destination(
        name=clean_name,
        url=clean_url,
        enabled=bool(enabled),
        filters=chosen.as_dict(),
        signing_secret=secret,
        created_at=now,
        updated_at=now,
        created_by=created_by,
    )
    try:
        with db.write() as session:
            session.add(row)
            session.flush()
            destination_id = row.id
    except IntegrityError:
        raise Conflict(
            f"name: a destination named {clean_name!r} exists", details={"field": "name"}
        ) from None
    return get_destination(db, destination_id), secret


def update_destination(
    db: Database,
    destination_id: int,
    *,
    now: datetime,
    name: Any = None,
    url: Any = None,
    enabled: bool | None = None,
    filters: dict[str, Any] | None = None,
) -> DestinationView:
    """Change what is given (None leaves a field as it is); filters given in part keep the others."""
    with db.read() as session:
        row = session.get(Destination, destination_id)
        if row is None:
            raise DestinationNotFound(
                f"destination: no destination {destination_id}", details={"field": "destination"}
            )
        saved = dict(row.filters)
    values: dict[str, Any] = {"updated_at": now}
    if name is not None:
        values["name"] = check_name(name)
    if url is not None:
        values["url"] = check_url(url)
    if enabled is not None:
        values["enabled"] = bool(enabled)
    if filters:
        values["filters"] = check_filters(db, {**saved, **filters}).as_dict()
    try:
        with db.write() as session:
            session.execute(update(Destination).where(Destination.id == destination_id).values(**values))
    except IntegrityError:
        raise Conflict(
            f"name: a destination named {values['name']!r} exists", details={"field": "name"}
        ) from None
    return get_destination(db, destination_id)


def delete_destination(db: Database, destination_id: int) -> str:
    """Delete a destination and its delivery log (the foreign key cascades); answers its name."""
    with db.write() as session:
        row = session.get(Destination, destination_id)
        if row is None:
            raise DestinationNotFound(
                f"destination: no destination {destination_id}", details={"field": "destination"}
            )
        name = row.name
        session.delete(row)
    return name


def _stats(db: Database, ids: list[int]) -> dict[int, DeliveryStats]:
    counts: dict[int, dict[str, int]] = {i: {} for i in ids}
    with db.read() as session:
        rows = session.execute(
            select(DestinationDelivery.destination_id, DestinationDelivery.status, func.count())
            .where(DestinationDelivery.destination_id.in_(ids))
            .group_by(DestinationDelivery.destination_id, DestinationDelivery.status)
        ).all()
    for destination_id, status, count in rows:
        # `sending` lasts one request: counted with the pending ones it came from.
        key = PENDING if status == SENDING else status
        counts[destination_id][key] = counts[destination_id].get(key, 0) + int(count)
    return {i: DeliveryStats(**c) for i, c in counts.items()}


def _view(row: Destination, stats: DeliveryStats) -> DestinationView:
    return DestinationView(
        row.id,
        row.name,
        row.url,
        row.enabled,
        Filters.stored(dict(row.filters)),
        mask_secret(row.signing_secret),
        row.created_at,
        row.updated_at,
        stats,
    )


def list_destinations(db: Database) -> list[DestinationView]:
    with db.read() as session:
        rows = list(session.scalars(select(Destination).order_by(Destination.name)))
        for row in rows:
            session.expunge(row)
    stats = _stats(db, [row.id for row in rows])
    return [_view(row, stats[row.id]) for row in rows]


def get_destination(db: Database, destination_id: int) -> DestinationView:
    with db.read() as session:
        row = session.get(Destination, destination_id)
        if row is None:
            raise DestinationNotFound(
                f"destination: no destination {destination_id}", details={"field": "destination"}
            )
        session.expunge(row)
    return _view(row, _stats(db, [destination_id])[destination_id])


def recent_deliveries(
    db: Database, destination_id: int, *, status: str | None = None, limit: int = 20
) -> list[DeliveryView]:
    """The destination's latest deliveries, newest first (the payloads stay out: they are customer data)."""
    get_destination(db, destination_id)  # a 404 for an unknown destination, not an empty list
    query = (
        select(DestinationDelivery)
        .where(DestinationDelivery.destination_id == destination_id)
        .order_by(DestinationDelivery.id.desc())
        .limit(max(1, min(limit, 200)))
    )
    if status is not None:
        if status not in DELIVERY_STATUSES:
            raise Invalid(
                f"status: must be one of {', '.join(DELIVERY_STATUSES)}", details={"field": "status"}
            )
        query = query.where(DestinationDelivery.status == status)
    with db.read() as session:
        return [
            DeliveryView(
                r.id,
                r.destination_id,
                r.kind,
                r.name,
                r.status,
                r.attempts,
                r.next_attempt_at,
                r.last_status_code,
                r.last_error,
                r.created_at,
                r.delivered_at,
            )
            for r in session.scalars(query)
        ]
