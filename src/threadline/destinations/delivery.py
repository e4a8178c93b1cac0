"""Sending deliveries: the worker's `destinations.deliver` job, retries with backoff, dead letters.

A job's payload lists `[delivery id, attempts made]` pairs. For each, the job makes the next attempt
only while the row still shows that many attempts (moving it to `sending` first), so a re-run of the
job, or a stale job, never repeats an attempt another run made. Retries are not the job queue's own
(30 s doubling, docs/worker.md): a webhook that is down is usually down for minutes or hours, so a failed
delivery waits 1 min, 5 min, 30 min, 2 h, then 12 h, in a follow-up job queued for that time, and is
dead-lettered after THREADLINE_DESTINATION_MAX_ATTEMPTS. The follow-up's dedupe key is made from its
rows and time, so a re-run of this job queues it once.

At least once, unlike messaging's at most once: a receiver is a program, not a customer's inbox, and
every payload carries a stable `messageId` it can drop a repeat by. A worker that dies mid-request leaves
the row `sending`; the job's re-run sends it again.

Within one job, once a destination fails, its further deliveries are not tried (no attempt counted):
they wait with the failed one, so a dead endpoint costs one timeout per job, not one per event.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from threadline.clock import Clock
from threadline.config import Settings
from threadline.destinations.catalog import (
    DEAD,
    DELIVERED,
    FAILED,
    PENDING,
    SENDING,
    DestinationNotFound,
)
from threadline.destinations.forwarding import JOB_KIND, queue_deliveries
from threadline.jobs import enqueue
from threadline.storage import Database
from threadline.storage.models import Destination, DestinationDelivery

RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
DELIVERY_HEADER = "X-Threadline-Delivery"
_ANSWER_LIMIT = 300  # characters of a failing answer kept in last_error


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure."""
    return RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver said: a status code (None when there was no answer) and an error."""

    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def body_of(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def post(url: str, secret: str, body: bytes, *, delivery_id: int, now: datetime, timeout: float) -> Answer:
    """POST `body` signed like every Threadline webhook (messaging's provider webhooks, docs/service.md):
    X-Threadline-Timestamp and X-Threadline-Signature = sha256=HMAC(secret, "{timestamp}.{body}")."""
    from threadline.messaging import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook

    stamp = str(int(now.replace(tzinfo=UTC).timestamp()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign_webhook(secret, stamp, body),
        DELIVERY_HEADER: str(delivery_id),
        "User-Agent": "Threadline",
    }
    parts = urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        context = ssl.create_default_context()
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        said = response.read(_ANSWER_LIMIT).decode("utf-8", "replace").strip()
    except TimeoutError:
        return Answer(None, f"no answer within {timeout:g} s")
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, f"could not deliver: {type(error).__name__}: {error}"[:_ANSWER_LIMIT])
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Answer(response.status, None)
    return Answer(response.status, f"{response.status} {response.reason}: {said}"[:_ANSWER_LIMIT])


@dataclass(slots=True)
class _Claimed:
    id: int
    attempt: int
    destination_id: int
    url: str
    secret: str
    body: bytes


def deliver(
    db: Database, settings: Settings, pairs: Iterable[Sequence[int]], *, clock: Clock
) -> dict[str, int]:
    """Run one `destinations.deliver` job: attempt each listed delivery that is still due at that
    attempt; answers counts (delivered, failed, dead, skipped)."""
    now = clock()
    counts = {"delivered": 0, "failed": 0, "dead": 0, "skipped": 0}
    follow_ups: dict[datetime, list[list[int]]] = {}
    broken: dict[int, tuple[datetime, str]] = {}  # destinations that failed in this run
    for delivery_id, made in sorted((int(p[0]), int(p[1])) for p in pairs):
        claimed, waiting = _claim(db, delivery_id, made, now, broken)
        if waiting is not None:
            follow_ups.setdefault(waiting[0], []).append([delivery_id, waiting[1]])
            counts["failed"] += 1
            continue
        if claimed is None:
            counts["skipped"] += 1
            continue
        answer = post(
            claimed.url,
            claimed.secret,
            claimed.body,
            delivery_id=claimed.id,
            now=now,
            timeout=settings.destination_timeout_seconds,
        )
        outcome, next_at = _record(db, settings, claimed, answer, now)
        counts[outcome] += 1
        if outcome == FAILED and next_at is not None:
            follow_ups.setdefault(next_at, []).append([claimed.id, claimed.attempt])
            broken[claimed.destination_id] = (next_at, answer.error or "failed")
    for run_at, batch in sorted(follow_ups.items()):
        digest = hashlib.sha256(json.dumps(batch).encode()).hexdigest()[:24]
        key = f"destinations:{run_at:%Y%m%dT%H%M%S%f}:{digest}"
        enqueue(db, JOB_KIND, {"deliveries": batch}, now=now, run_at=run_at, dedupe_key=key)
    return counts


def _claim(
    db: Database, delivery_id: int, made: int, now: datetime, broken: dict[int, tuple[datetime, str]]
) -> tuple[_Claimed | None, tuple[datetime, int] | None]:
    """Move a due delivery to `sending` for attempt `made + 1`. Answers it, or (when it already waits
    for a later attempt) the time and attempts its follow-up job needs, or neither (nothing to do)."""
    with db.write() as session:
        row = session.scalar(
            select(DestinationDelivery).where(DestinationDelivery.id == delivery_id).with_for_update()
        )
        if row is None:  # erased with its customer, or its destination deleted
            return None, None
        waiting = row.next_attempt_at is not None and row.next_attempt_at > now
        if row.status == FAILED and waiting and row.attempts in (made, made + 1):
            assert row.next_attempt_at is not None
            return None, (row.next_attempt_at, row.attempts)  # a re-run: make sure its follow-up exists
        own_retry = row.status == SENDING and row.attempts == made + 1  # this job's run was cut short
        due = row.status in (PENDING, FAILED) and row.attempts == made and not waiting
        if not (own_retry or due):
            return None, None
        destination = session.get(Destination, row.destination_id)
        if destination is None or not destination.enabled:
            return None, None  # held while disabled; enabling it resumes them (resume_pending)
        if destination.id in broken:
            next_at, error = broken[destination.id]
            row.status, row.next_attempt_at, row.updated_at = FAILED, next_at, now
            row.last_error = f"not tried: an earlier delivery to this destination failed ({error})"[:1000]
            return None, (next_at, row.attempts)
        row.status, row.attempts, row.updated_at = SENDING, made + 1, now
        return _Claimed(
            row.id,
            made + 1,
            destination.id,
            destination.url,
            destination.signing_secret,
            body_of(row.payload),
        ), None


def _record(
    db: Database, settings: Settings, claimed: _Claimed, answer: Answer, now: datetime
) -> tuple[str, datetime | None]:
    values: dict[str, Any] = {
        "last_status_code": answer.status_code,
        "last_error": answer.error,
        "updated_at": now,
    }
    next_at: datetime | None = None
    if answer.delivered:
        outcome = DELIVERED
        values.update(status=DELIVERED, delivered_at=now, next_attempt_at=None)
    elif claimed.attempt >= settings.destination_max_attempts:
        outcome = DEAD
        values.update(status=DEAD, next_attempt_at=None)
    else:
        outcome = FAILED
        next_at = now + retry_delay(claimed.attempt)
        values.update(status=FAILED, next_attempt_at=next_at)
    with db.write() as session:
        session.execute(
            update(DestinationDelivery)
            .where(DestinationDelivery.id == claimed.id, DestinationDelivery.attempts == claimed.attempt)
            .values(**values)
        )
    return outcome, next_at


def _requeue(db: Database, destination_id: int, statuses: tuple[str, ...], *, now: datetime) -> int:
    """Make the destination's deliveries in `statuses` due now, and queue jobs that send them."""
    with db.write() as session:
        if session.get(Destination, destination_id) is None:
            raise DestinationNotFound(
                f"destination: no destination {destination_id}", details={"field": "destination"}
            )
        rows = session.execute(
            select(DestinationDelivery.id, DestinationDelivery.attempts)
            .where(
                DestinationDelivery.destination_id == destination_id, DestinationDelivery.status.in_(statuses)
            )
            .order_by(DestinationDelivery.id)
        ).all()
        if not rows:
            return 0
        ids = [r.id for r in rows]
        for start in range(0, len(ids), 500):
            session.execute(
                update(DestinationDelivery)
                .where(DestinationDelivery.id.in_(ids[start : start + 500]))
                .values(status=PENDING, next_attempt_at=now, updated_at=now)
            )
    pairs = [[r.id, r.attempts] for r in rows]
    for start in range(0, len(pairs), 500):
        # No dedupe key: each retry by hand is a new request to try again.
        enqueue(db, JOB_KIND, {"deliveries": pairs[start : start + 500]}, now=now)
    return len(pairs)


def retry_dead_letters(db: Database, destination_id: int, *, now: datetime) -> int:
    """Try the destination's dead letters once more, now; answers how many. Each gets one attempt: a
    failure dead-letters it again (its attempts are past the limit), for another retry by hand."""
    return _requeue(db, destination_id, (DEAD,), now=now)


def resume_pending(db: Database, destination_id: int, *, now: datetime) -> int:
    """After a destination is enabled again: send what waited while it was disabled, now."""
    return _requeue(db, destination_id, (PENDING, FAILED), now=now)


TEST_EVENT = "Threadline Test Event"


def send_test_event(db: Database, destination_id: int, *, now: datetime) -> int:
    """Queue a test track event (no customer in it) to one destination, whatever its filters say;
    answers the delivery's id. It goes through the worker like any delivery, retries included."""
    with db.write() as session:
        if session.get(Destination, destination_id) is None:
            raise DestinationNotFound(
                f"destination: no destination {destination_id}", details={"field": "destination"}
            )
        stamp = now.isoformat(timespec="milliseconds") + "Z"
        payload = {
            "type": "track",
            "event": TEST_EVENT,
            "messageId": f"test-{destination_id}-{now:%Y%m%dT%H%M%S%f}",
            "properties": {"test": True},
            "context": {},
            "timestamp": stamp,
            "receivedAt": stamp,
        }
        row = {
            "destination_id": destination_id,
            "profile_id": None,
            "kind": "test",
            "name": TEST_EVENT,
            "payload": payload,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        return queue_deliveries(session.connection(), [row], now=now)[0]
