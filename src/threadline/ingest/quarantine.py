"""The quarantine: messages that failed validation, kept with the reason so nothing is silently lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from threadline.storage import Database
from threadline.storage.models import QuarantinedMessage, Source

MAX_PAYLOAD_CHARS = 600_000  # above the batch limit: what we accepted to read, we keep whole


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: int
    source: str | None
    received_at: datetime
    message_id: str | None
    type: str | None
    field: str | None
    reason: str
    payload: str


def quarantine(
    connection: Connection,
    *,
    source_id: int | None,
    received_at: datetime,
    payload: str,
    reason: str,
    field: str | None = None,
    message_id: str | None = None,
    type: str | None = None,
) -> int:
    """Keep one rejected message; the same message sent again (a retry, a re-import) is kept once."""
    message_id = message_id[:200] if isinstance(message_id, str) else None
    if source_id is not None and message_id is not None:
        earlier = connection.scalar(
            select(QuarantinedMessage.id).where(
                QuarantinedMessage.source_id == source_id,
                QuarantinedMessage.message_id == message_id,
                QuarantinedMessage.payload == payload[:MAX_PAYLOAD_CHARS],
            )
        )
        if earlier is not None:
            return int(earlier)
    result = connection.execute(
        insert(QuarantinedMessage).returning(QuarantinedMessage.id),
        {
            "source_id": source_id,
            "received_at": received_at,
            "payload": payload[:MAX_PAYLOAD_CHARS],
            "reason": reason,
            "field": field,
            "message_id": message_id,
            "type": type[:40] if isinstance(type, str) else None,
        },
    )
    return int(result.scalar_one())


def quarantine_raw(
    db: Database, *, source_id: int | None, received_at: datetime, payload: str, reason: str
) -> int:
    """Keep a request body that could not even be parsed (malformed JSON, bad gzip)."""
    with db.write() as session:
        return quarantine(
            session.connection(), source_id=source_id, received_at=received_at, payload=payload, reason=reason
        )


def list_quarantine(db: Database, *, limit: int = 50, source: str | None = None) -> list[QuarantineEntry]:
    query = (
        select(QuarantinedMessage, Source.name)
        .outerjoin(Source, Source.id == QuarantinedMessage.source_id)
        .order_by(QuarantinedMessage.id.desc())
        .limit(limit)
    )
    if source:
        query = query.where(Source.name == source)
    with db.read() as session:
        return [
            QuarantineEntry(q.id, name, q.received_at, q.message_id, q.type, q.field, q.reason, q.payload)
            for q, name in session.execute(query)
        ]
