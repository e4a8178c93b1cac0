"""The suppression list: erased identifiers, kept only as keyed hashes, so the person stays erased.

After an erasure, a message that carries any of the person's old identifiers (email, phone, userId,
anonymousId, a custom kind) is dropped by ingestion before it can stitch: it is not stored, not
quarantined (the quarantine would keep the very data that was erased) and does not re-create the person.
The hash is an HMAC under the privacy key (privacy/keys.py), so the list cannot be read back and a copy
of the database alone cannot test guessed emails against it when THREADLINE_PRIVACY_KEY is set.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from threadline.config import Settings
from threadline.privacy.keys import keyed_digest, privacy_key
from threadline.storage.models import Suppression

_CHUNK = 500


def digest_of(key: bytes, kind: str, value: str) -> str:
    """The suppression hash of a normalised identifier (the form stored in `identities`)."""
    return keyed_digest(key, f"{kind}:{value}")


def suppress(
    conn: Connection,
    settings: Settings,
    identifiers: Iterable[tuple[str, str]],
    *,
    now: datetime,
    request_id: int | None = None,
) -> int:
    """Add (kind, value) pairs to the list; returns how many were new."""
    key = privacy_key(conn, settings)
    rows = {
        digest_of(key, kind, value): {"kind": kind, "created_at": now, "request_id": request_id}
        for kind, value in identifiers
    }
    if not rows:
        return 0
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    # Counted before inserting: a driver's rowcount for a many-row statement is not to be trusted.
    known = set(_present(conn, list(rows)))
    items = [{"digest": digest, **row} for digest, row in rows.items() if digest not in known]
    for start in range(0, len(items), _CHUNK):
        conn.execute(
            insert(Suppression).on_conflict_do_nothing(index_elements=["digest"]),
            items[start : start + _CHUNK],
        )
    return len(items)


def _present(conn: Connection, digests: list[str]) -> Iterable[str]:
    for start in range(0, len(digests), _CHUNK):
        chunk = digests[start : start + _CHUNK]
        yield from conn.scalars(select(Suppression.digest).where(Suppression.digest.in_(chunk)))


def suppressed_among(
    conn: Connection, settings: Settings, identifiers: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (kind, value) pairs are suppressed. One indexed read per 500 identifiers;
    ingestion calls it once per batch."""
    key = privacy_key(conn, settings)
    by_digest = {digest_of(key, kind, value): (kind, value) for kind, value in identifiers}
    return {by_digest[d] for d in _present(conn, list(by_digest))}


def is_suppressed(conn: Connection, settings: Settings, kind: str, value: str) -> bool:
    return bool(suppressed_among(conn, settings, [(kind, value)]))
