"""The live feed behind the Sources page's debugger: messages as they are stored or quarantined.

The writer thread (or any thread that calls `store`) publishes after its transaction commits; SSE
handlers on the asyncio loop consume. Each subscriber has its own bounded buffer: a browser that
falls behind loses its oldest messages (and is told how many), never slows ingestion down, and never
makes memory grow. With nobody watching, publishing is one dictionary check.

The feed is per process: with several server processes a browser sees the messages its own process
stored. That is what a debugger needs (a sample of live traffic), not a delivery guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from threadline.ingest.messages import Message
    from threadline.ingest.pipeline import IngestResult, Submission

log = logging.getLogger(__name__)

BUFFER = 200  # messages per subscriber; a debugger shows the latest ones, older ones are gone anyway
PAYLOAD_CHARS = 8_000  # a 32 KB message in full would make the page heavy; the quarantine keeps it whole


class Subscription:
    """One browser watching one source. Filled by publishing threads, drained on an asyncio loop."""

    def __init__(self, source_id: int, loop: asyncio.AbstractEventLoop, size: int = BUFFER) -> None:
        self.source_id = source_id
        self.closed = False
        self._loop = loop
        self._buffer: deque[bytes] = deque(maxlen=size)
        self._dropped = 0
        self._lock = threading.Lock()
        self._ready = asyncio.Event()  # only touched on the loop's thread
        self._wake_pending = False  # one wake-up in flight at a time, however fast messages come

    def put(self, message: bytes) -> None:
        """From any thread. When the buffer is full the oldest message goes (deque maxlen does it)."""
        with self._lock:
            if len(self._buffer) == self._buffer.maxlen:
                self._dropped += 1
            self._buffer.append(message)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._wake()

    def close(self) -> None:
        """From any thread: the consumer's `next` returns and it should stop."""
        self.closed = True
        self._wake()

    async def next(self, timeout: float) -> tuple[list[bytes], int]:
        """Wait up to `timeout` seconds; answer what arrived and how many were dropped since last time."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        self._ready.clear()
        with self._lock:
            messages, dropped = list(self._buffer), self._dropped
            self._buffer.clear()
            self._dropped = 0
            self._wake_pending = False
        return messages, dropped

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:
            self.closed = True  # the loop has stopped: nobody will read this subscription again


class LiveFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # source id -> subscriptions; replaced, never mutated, so publishers can read it without the lock
        self._by_source: dict[int, tuple[Subscription, ...]] = {}

    def subscribe(self, source_id: int, loop: asyncio.AbstractEventLoop, size: int = BUFFER) -> Subscription:
        subscription = Subscription(source_id, loop, size)
        with self._lock:
            self._by_source = {
                **self._by_source,
                source_id: (*self._by_source.get(source_id, ()), subscription),
            }
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.closed = True
        with self._lock:
            rest = tuple(s for s in self._by_source.get(subscription.source_id, ()) if s is not subscription)
            by_source = dict(self._by_source)
            if rest:
                by_source[subscription.source_id] = rest
            else:
                by_source.pop(subscription.source_id, None)
            self._by_source = by_source

    def subscribers(self, source_id: int | None = None) -> int:
        if source_id is None:
            return sum(len(s) for s in self._by_source.values())
        return len(self._by_source.get(source_id, ()))

    def publish(self, source_id: int, message: dict[str, Any]) -> None:
        watchers = self._by_source.get(source_id)
        if not watchers:
            return
        encoded = orjson.dumps(message, default=str)  # once, whatever the number of watchers
        for subscription in watchers:
            if not subscription.closed:
                subscription.put(encoded)

    def announce(self, submissions: Sequence[Submission], results: Sequence[IngestResult]) -> None:
        """Publish what one committed `store` call did. Called on the ingestion hot path: with no
        watcher it returns at once, and it never raises into the caller."""
        if not self._by_source:
            return
        try:
            for submission, result in zip(submissions, results, strict=True):
                if submission.source.id in self._by_source:
                    self._announce_one(submission, result)
        except Exception:  # a debugger must not fail an acknowledged write
            log.exception("live feed: could not publish a stored batch")

    def _announce_one(self, submission: Submission, result: IngestResult) -> None:
        source_id, received = submission.source.id, submission.received_at
        rejections = {r.index: r for r in result.rejected}
        for index, raw, error in submission.invalid:
            rejection = rejections.get(index)
            obj = raw if isinstance(raw, dict) else {}
            self.publish(
                source_id,
                {
                    "status": "rejected",
                    "type": _text(obj.get("type")),
                    "name": _text(obj.get("event") or obj.get("name")),
                    "messageId": _text(obj.get("messageId")),
                    "userId": _text(obj.get("userId")),
                    "anonymousId": _text(obj.get("anonymousId")),
                    "receivedAt": _iso(received),
                    "field": rejection.field if rejection else None,
                    "reason": rejection.reason if rejection else str(error),
                    "quarantineId": rejection.quarantine_id if rejection else None,
                    "payload": _clip(raw),
                },
            )
        for candidate in submission.valid:
            message = candidate.message
            if candidate.index in result.suppressed:
                # An erased person's message: the debugger shows that it came, not what it said.
                self.publish(
                    source_id,
                    {"status": "suppressed", "type": message.type, "receivedAt": _iso(received)},
                )
                continue
            # `store` fills profile_ids only for messages it wrote: the others were replays.
            stored = result.profile_ids[candidate.index] is not None
            self.publish(
                source_id,
                {
                    "status": "accepted" if stored else "duplicate",
                    "type": message.type,
                    "name": message.name,
                    "messageId": message.message_id,
                    "userId": message.user_id,
                    "anonymousId": message.anonymous_id,
                    "receivedAt": _iso(received),
                    "profileId": result.profile_ids[candidate.index],
                    "payload": _clip(_as_sent(message)),
                },
            )


def _as_sent(message: Message) -> dict[str, Any]:
    """The message in Segment Spec shape, as validated (timestamps normalised to UTC)."""
    body: dict[str, Any] = {"type": message.type, "messageId": message.message_id}
    if message.user_id is not None:
        body["userId"] = message.user_id
    if message.anonymous_id is not None:
        body["anonymousId"] = message.anonymous_id
    if message.name is not None:
        body["event" if message.type == "track" else "name"] = message.name
    if message.properties:
        body["properties"] = message.properties
    if message.traits is not None:
        body["traits"] = message.traits
    if message.previous_id is not None:
        body["previousId"] = message.previous_id
    if message.group_id is not None:
        body["groupId"] = message.group_id
    body["timestamp"] = _iso(message.timestamp)
    if message.sent_at is not None:
        body["sentAt"] = _iso(message.sent_at)
    if message.context:
        body["context"] = message.context
    return body


def _clip(raw: Any) -> str:
    try:
        text = orjson.dumps(raw, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        text = repr(raw)
    return text if len(text) <= PAYLOAD_CHARS else text[:PAYLOAD_CHARS] + "\n…"


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


live_feed = LiveFeed()
