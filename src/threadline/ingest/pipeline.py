"""The one write path for incoming customer data: validate, quarantine, dedupe, stitch, store.

Every entry point (HTTP ingestion, CSV/XLSX import, demo data, the web tracker) ends here, so a message
is treated the same whichever way it came in. One call is one transaction: when `ingest` returns, what it
reports as accepted is committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from threadline.config import Settings
from threadline.identity import IdentityGraph, StitchCause, lock_key, priority
from threadline.ingest.messages import InvalidMessage, Message, ParseOptions, parse_message
from threadline.ingest.quarantine import quarantine
from threadline.ingest.sources import SourceInfo
from threadline.storage import Database, insert_rows
from threadline.storage.models import Event, TraitChange

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    message_id: str | None
    field: str | None
    reason: str
    quarantine_id: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "messageId": self.message_id,
            "field": self.field,
            "reason": self.reason,
            "quarantineId": self.quarantine_id,
        }


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    profile_ids: list[str | None] = field(default_factory=list)  # per input message, None if rejected


@dataclass(slots=True)
class _Candidate:
    index: int
    message: Message


def ingest(
    db: Database,
    source: SourceInfo,
    raws: Sequence[Any],
    *,
    settings: Settings,
    received_at: datetime,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    forced_type: str | None = None,
    max_message_bytes: int | None = None,
    sizes: Callable[[Any], int] | None = None,
) -> IngestResult:
    """Store the valid messages of `raws` from `source`, quarantine the rest, in one transaction."""
    options = ParseOptions(
        region=settings.default_region,
        identifier_kinds=tuple(settings.identifier_kinds),
        received_at=received_at,
        batch_sent_at=batch_sent_at,
        batch_context=batch_context,
    )
    limit = max_message_bytes or settings.max_message_bytes
    measure = sizes or (lambda raw: len(orjson.dumps(raw)))
    valid: list[_Candidate] = []
    invalid: list[tuple[int, Any, InvalidMessage]] = []
    for index, raw in enumerate(raws):
        try:
            if measure(raw) > limit:
                raise InvalidMessage(None, f"message is larger than {limit // 1024} KB")
            valid.append(_Candidate(index, parse_message(raw, options, forced_type=forced_type)))
        except InvalidMessage as error:
            invalid.append((index, raw, error))

    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with db.write() as session:
                return _store(session.connection(), source, raws, valid, invalid, settings, received_at)
        except (OperationalError, IntegrityError) as error:
            # Deadlock between two batches, a racing duplicate messageId, or SQLite busy past its
            # timeout: the transaction rolled back whole, so trying again is safe.
            if attempt == MAX_ATTEMPTS or not _retryable(error):
                raise
            log.warning("ingest retry %d after %s", attempt, type(error.orig).__name__)
            time.sleep(0.01 * attempt)
    raise AssertionError("unreachable")


def _retryable(error: DBAPIError) -> bool:
    code = getattr(error.orig, "sqlstate", None)
    if code in {"40P01", "40001", "23505"}:
        return True
    return "locked" in str(error.orig) or "busy" in str(error.orig)


def _store(
    conn: Connection,
    source: SourceInfo,
    raws: Sequence[Any],
    valid: list[_Candidate],
    invalid: list[tuple[int, Any, InvalidMessage]],
    settings: Settings,
    received_at: datetime,
) -> IngestResult:
    result = IngestResult(profile_ids=[None] * len(raws))
    for index, raw, error in invalid:
        is_obj = isinstance(raw, dict)
        quarantine_id = quarantine(
            conn,
            source_id=source.id,
            received_at=received_at,
            payload=orjson.dumps(raw).decode() if _serialisable(raw) else repr(raw),
            reason=str(error),
            field=error.field,
            message_id=raw.get("messageId") if is_obj else None,
            type=raw.get("type") if is_obj else None,
        )
        message_id = raw.get("messageId") if is_obj else None
        result.rejected.append(Rejection(index, message_id, error.field, error.reason, quarantine_id))
    if not valid:
        return result

    seen = _already_stored(conn, source.id, [c.message.message_id for c in valid])
    fresh: list[_Candidate] = []
    for candidate in valid:
        if candidate.message.message_id in seen:
            result.duplicates += 1
            continue
        seen.add(candidate.message.message_id)
        fresh.append(candidate)

    kinds = list(settings.identifier_kinds)
    graph = IdentityGraph(conn, limits=settings.identity_limits, ranks=priority(kinds), now=received_at)
    wanted = {i for c in fresh for i in (*c.message.identifiers, *c.message.alias_candidates)}
    graph.preload(wanted, extra_locks=[lock_key(f"message:{source.id}", c.message.message_id) for c in fresh])
    if graph.postgres:
        # A racing twin of this batch may have committed while we waited for the locks.
        late = _already_stored(conn, source.id, [c.message.message_id for c in fresh])
        if late:
            result.duplicates += sum(1 for c in fresh if c.message.message_id in late)
            fresh = [c for c in fresh if c.message.message_id not in late]

    events: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for candidate in fresh:
        message = candidate.message
        cause = StitchCause("message", source.id, message.message_id, message.timestamp)
        identifiers = message.identifiers
        if message.type == "alias":
            cause.trigger = "alias"
            previous = next((i for i in message.alias_candidates if i in graph.owner), None)
            identifiers = [*identifiers, previous or message.alias_candidates[1]]
            profile = graph.stitch(identifiers, cause, force=True)
        else:
            profile = graph.stitch(identifiers, cause)
        profile.record_event(source.channel, message.timestamp)
        for change in profile.apply_traits(message.profile_traits, message.timestamp, source.name):
            history.append(
                {
                    "profile_id": profile.id,
                    "original_profile_id": profile.id,
                    "key": change.key[:200],
                    "value": change.value,
                    "source_id": source.id,
                    "observed_at": change.observed_at,
                    "message_id": message.message_id,
                }
            )
        events.append(_event_row(message, profile.id, source, received_at))
        result.profile_ids[candidate.index] = profile.id
    graph.flush()
    for row in events:
        row["profile_id"] = graph.resolve(row["profile_id"])
    for row in history:
        row["profile_id"] = graph.resolve(row["profile_id"])
    insert_rows(conn, Event, events)
    insert_rows(conn, TraitChange, history)
    result.accepted = len(events)
    result.profile_ids = [graph.resolve(p) if p else None for p in result.profile_ids]
    return result


def _serialisable(raw: Any) -> bool:
    try:
        orjson.dumps(raw)
    except TypeError:
        return False
    return True


def _already_stored(conn: Connection, source_id: int, message_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start : start + 500]
        found.update(
            conn.scalars(
                select(Event.message_id).where(Event.source_id == source_id, Event.message_id.in_(chunk))
            )
        )
    return found


def _event_row(
    message: Message, profile_id: str, source: SourceInfo, received_at: datetime
) -> dict[str, Any]:
    properties = message.properties
    if message.type == "alias":
        properties = {**properties, "previousId": message.previous_id}
    elif message.type == "group":
        properties = {**properties, "groupId": message.group_id}
    return {
        "profile_id": profile_id,
        "original_profile_id": profile_id,
        "source_id": source.id,
        "channel": source.channel,
        "type": message.type,
        "name": message.name,
        "message_id": message.message_id,
        "user_id": message.user_id,
        "anonymous_id": message.anonymous_id,
        "timestamp": message.timestamp,
        "sent_at": message.sent_at,
        "received_at": received_at,
        "properties": properties,
        "traits": message.traits,
        "context": message.context,
    }
