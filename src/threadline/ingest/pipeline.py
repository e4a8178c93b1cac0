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
from threadline.destinations import forward_events
from threadline.identity import IdentityGraph, StitchCause, lock_key, priority
from threadline.ingest.live import live_feed
from threadline.ingest.messages import (
    InvalidMessage,
    Message,
    ParseOptions,
    parse_message,
    seal_message,
    seal_raw,
)
from threadline.ingest.quarantine import quarantine
from threadline.ingest.sources import SourceInfo
from threadline.jobs import enqueue_in
from threadline.privacy import consent_rows, suppressed_among, trait_cipher
from threadline.profiles import golden_rules_in
from threadline.storage import Database, insert_rows
from threadline.storage.models import ConsentRecord, Event, Segment, TraitChange

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
    # Messages dropped because they carry an erased person's identifier (privacy/suppression.py).
    suppressed: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Candidate:
    index: int
    message: Message


@dataclass(slots=True)
class Submission:
    """One request's messages, validated and ready to store (with others, in one transaction)."""

    source: SourceInfo
    received_at: datetime
    count: int
    valid: list[_Candidate]
    invalid: list[tuple[int, Any, InvalidMessage]]


def prepare(
    source: SourceInfo,
    raws: Sequence[Any],
    *,
    settings: Settings,
    received_at: datetime,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    forced_type: str | None = None,
    sizes: Callable[[Any], int] | None = None,
) -> Submission:
    """Validate `raws` without touching the database (so it can run outside the writer)."""
    options = ParseOptions(
        region=settings.default_region,
        identifier_kinds=tuple(settings.identifier_kinds),
        received_at=received_at,
        batch_sent_at=batch_sent_at,
        batch_context=batch_context,
    )
    limit = settings.max_message_bytes
    cipher = trait_cipher(settings)  # None unless THREADLINE_ENCRYPTED_TRAITS lists traits
    measure = sizes or (lambda raw: len(orjson.dumps(raw)))
    valid: list[_Candidate] = []
    invalid: list[tuple[int, Any, InvalidMessage]] = []
    for index, raw in enumerate(raws):
        try:
            if measure(raw) > limit:
                raise InvalidMessage(None, f"message is larger than {limit // 1024} KB")
            message = parse_message(raw, options, forced_type=forced_type)
            if cipher is not None:
                seal_message(message, cipher)
            valid.append(_Candidate(index, message))
        except InvalidMessage as error:
            invalid.append((index, raw, error))
    return Submission(source, received_at, len(raws), valid, invalid)


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
    sizes: Callable[[Any], int] | None = None,
) -> IngestResult:
    """Store the valid messages of `raws` from `source`, quarantine the rest, in one transaction."""
    submission = prepare(
        source,
        raws,
        settings=settings,
        received_at=received_at,
        batch_sent_at=batch_sent_at,
        batch_context=batch_context,
        forced_type=forced_type,
        sizes=sizes,
    )
    return store(db, [submission], settings=settings)[0]


def store(db: Database, submissions: Sequence[Submission], *, settings: Settings) -> list[IngestResult]:
    """Store prepared submissions in one transaction; one result per submission, in order."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with db.write() as session:
                results = _store(session.connection(), submissions, settings)
            live_feed.announce(submissions, results)  # after commit; a dict check when nobody watches
            return results
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


def _quarantine_invalid(
    conn: Connection, submission: Submission, result: IngestResult, settings: Settings
) -> None:
    for index, raw, error in submission.invalid:
        is_obj = isinstance(raw, dict)
        message_id = raw.get("messageId") if is_obj else None
        quarantine_id = quarantine(
            conn,
            source_id=submission.source.id,
            received_at=submission.received_at,
            payload=_payload(raw, settings),
            reason=str(error),
            field=error.field,
            message_id=message_id,
            type=raw.get("type") if is_obj else None,
        )
        result.rejected.append(Rejection(index, message_id, error.field, error.reason, quarantine_id))


def _store(conn: Connection, submissions: Sequence[Submission], settings: Settings) -> list[IngestResult]:
    # Imported here: journeys' actions write through this path, so a module-level import is circular.
    from threadline.journeys import watch_traits

    results = [IngestResult(profile_ids=[None] * s.count) for s in submissions]
    fresh: list[tuple[int, _Candidate]] = []  # (submission number, candidate)
    for number, submission in enumerate(submissions):
        _quarantine_invalid(conn, submission, results[number], settings)
    stored = _stored_pairs(conn, [(s.source.id, c.message.message_id) for s in submissions for c in s.valid])
    for number, submission in enumerate(submissions):
        for candidate in submission.valid:
            key = (submission.source.id, candidate.message.message_id)
            if key in stored:
                results[number].duplicates += 1
                continue
            stored.add(key)  # the same messageId twice in one request is stored once too
            fresh.append((number, candidate))
    if not fresh:
        return results
    fresh = _without_suppressed(conn, settings, submissions, fresh, results)
    if not fresh:
        return results

    kinds = list(settings.identifier_kinds)
    now = max(s.received_at for s in submissions)
    rules = golden_rules_in(conn)  # one primary-key read per transaction; a change applies from the next
    graph = IdentityGraph(conn, limits=settings.identity_limits, ranks=priority(kinds), now=now, rules=rules)
    wanted = {i for _, c in fresh for i in (*c.message.identifiers, *c.message.alias_candidates)}
    message_locks = [lock_key(f"message:{submissions[n].source.id}", c.message.message_id) for n, c in fresh]
    graph.preload(wanted, extra_locks=message_locks)
    if graph.postgres:
        # A racing twin of this batch may have committed while we waited for the locks.
        late = _stored_pairs(conn, [(submissions[n].source.id, c.message.message_id) for n, c in fresh])
        for n, c in fresh:
            if (submissions[n].source.id, c.message.message_id) in late:
                results[n].duplicates += 1
        fresh = [(n, c) for n, c in fresh if (submissions[n].source.id, c.message.message_id) not in late]

    # Journeys triggered by a trait change (docs/journeys.md): one read of the active journeys per batch,
    # and nothing more per message unless one watches a trait the message writes.
    trait_watch = watch_traits(conn)
    events: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []  # context.consent statements, in the event's transaction
    for number, candidate in fresh:
        submission, message = submissions[number], candidate.message
        source = submission.source
        cause = StitchCause("message", source.id, message.message_id, message.timestamp)
        if message.type == "alias":
            cause.trigger = "alias"
            previous = next((i for i in message.alias_candidates if i in graph.owner), None)
            identifiers = [*message.identifiers, previous or message.alias_candidates[1]]
            profile = graph.stitch(identifiers, cause, force=True)
        else:
            profile = graph.stitch(message.identifiers, cause)
        profile.record_event(source.channel, message.timestamp)
        watched = trait_watch.before(profile.traits, message.profile_traits) if trait_watch else None
        for change in profile.apply_traits(message.profile_traits, message.timestamp, source.name, rules):
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
        if watched and trait_watch is not None:
            origin = f"{source.id}:{message.message_id}"
            trait_watch.note(profile.id, watched, profile.traits, message.timestamp, origin)
        events.append(_event_row(message, profile.id, source, submission.received_at))
        if message.consent is not None:
            consents += consent_rows(
                profile.id,
                message.consent,
                source=source.name,
                recorded_at=message.timestamp,
                now=now,
                message_id=message.message_id,
                ip=message.context.get("ip"),
            )
        results[number].profile_ids[candidate.index] = profile.id
        results[number].accepted += 1
    graph.flush()
    for row in events:
        row["profile_id"] = graph.resolve(row["profile_id"])
    for row in (*history, *consents):
        row["profile_id"] = graph.resolve(row["profile_id"])
    insert_rows(conn, Event, events)
    insert_rows(conn, TraitChange, history)
    insert_rows(conn, ConsentRecord, consents)
    if trait_watch is not None:
        trait_watch.enrol(conn, graph.resolve)
    # Destinations (webhooks) get the stored events: delivery rows and their job in this transaction, so a
    # delivery exists exactly when its event does; the worker sends them (docs/destinations.md).
    forward_events(conn, events, sources={s.source.id: s.source.name for s in submissions}, now=now)
    # Segments re-evaluate the customers touched (docs/segments.md): one job per batch, queued in the
    # batch's transaction so it exists exactly when the events do. Only when some segment is active (one
    # read of a small table): a workspace without segments should not fill the job queue; a segment
    # made meanwhile is filled by its own recompute.
    if conn.scalar(select(Segment.id).where(Segment.active.is_(True)).limit(1)) is not None:
        touched = sorted({row["profile_id"] for row in events})
        enqueue_in(conn, "segments.refresh", {"profile_ids": touched}, now=now)
    for result in results:
        result.profile_ids = [graph.resolve(p) if p else None for p in result.profile_ids]
    return results


def _without_suppressed(
    conn: Connection,
    settings: Settings,
    submissions: Sequence[Submission],
    fresh: list[tuple[int, _Candidate]],
    results: list[IngestResult],
) -> list[tuple[int, _Candidate]]:
    """Drop messages carrying an erased person's identifier: an erasure must stick. They are neither
    stored nor quarantined (that would keep the erased data); one indexed read per batch."""
    carried = (i for _, c in fresh for i in (*c.message.identifiers, *c.message.alias_candidates))
    hit = suppressed_among(conn, settings, {(i.kind, i.value) for i in carried})
    if not hit:
        return fresh
    kept = []
    for number, candidate in fresh:
        message = candidate.message
        if any((i.kind, i.value) in hit for i in (*message.identifiers, *message.alias_candidates)):
            results[number].suppressed.add(candidate.index)
        else:
            kept.append((number, candidate))
    log.info("ingest: dropped %d message(s) for erased people", len(fresh) - len(kept))
    return kept


def _payload(raw: Any, settings: Settings) -> str:
    """A rejected message as the quarantine keeps it; its encrypted traits stay encrypted there too."""
    cipher = trait_cipher(settings)
    if cipher is not None:
        raw = seal_raw(raw, cipher)
    return orjson.dumps(raw).decode() if _serialisable(raw) else repr(raw)


def _serialisable(raw: Any) -> bool:
    try:
        orjson.dumps(raw)
    except TypeError:
        return False
    return True


def _stored_pairs(conn: Connection, keys: list[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (source id, messageId) pairs already have an event."""
    by_source: dict[int, list[str]] = {}
    for source_id, message_id in keys:
        by_source.setdefault(source_id, []).append(message_id)
    found: set[tuple[int, str]] = set()
    for source_id, message_ids in by_source.items():
        for start in range(0, len(message_ids), 500):
            chunk = message_ids[start : start + 500]
            query = select(Event.message_id).where(Event.source_id == source_id, Event.message_id.in_(chunk))
            found.update((source_id, m) for m in conn.scalars(query))
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
