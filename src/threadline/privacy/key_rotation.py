"""`threadline privacy rotate-keys`: bring every stored value of an encrypted trait to the newest key.

Put a new key first in THREADLINE_ENCRYPTION_KEYS (keeping the old ones after it), restart the servers
(new values are sealed with the new key from then on), run this, then remove the old keys. It walks
every table that holds trait values (profiles' traits and the golden record's counts, trait history,
events, the quarantine) in primary-key order, one short transaction per batch, and rewrites only
values sealed with an older key, or still in clear for a trait added to the list after its data arrived.
Running it again finds nothing to do (idempotent); stopped halfway, a rerun picks up what is left
(resumable): each batch committed is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import OperationalError

from threadline.config import Settings
from threadline.privacy.encryption import TraitCipher, decryption_cipher
from threadline.storage import Database
from threadline.storage.models import Event, Profile, QuarantinedMessage, TraitChange

BATCH = 500
ATTEMPTS = 5
# (name, table): the order `rotate_keys` walks and reports them in.
TABLES: tuple[tuple[str, Any], ...] = (
    ("profiles", Profile),
    ("trait_history", TraitChange),
    ("events", Event),
    ("quarantine", QuarantinedMessage),
)
Progress = Callable[[str, int], None]  # (table, rows just checked)


@dataclass(slots=True)
class RotationReport:
    checked: dict[str, int] = field(default_factory=dict)
    rewritten: dict[str, int] = field(default_factory=dict)


def rows_to_check(db: Database) -> dict[str, int]:
    """How many rows each table has, for a progress bar."""
    with db.read() as session:
        return {
            name: int(session.scalar(select(func.count()).select_from(table)) or 0) for name, table in TABLES
        }


def rotate_keys(
    db: Database, settings: Settings, *, batch_size: int = BATCH, progress: Progress | None = None
) -> RotationReport:
    cipher = decryption_cipher(settings)
    if cipher is None:
        raise ValueError("THREADLINE_ENCRYPTION_KEYS is empty: there is no key to rotate to")
    report = RotationReport()
    for name, table in TABLES:
        checked = rewritten = 0
        for count, changed in _batches(db, table, cipher, batch_size):
            checked, rewritten = checked + count, rewritten + changed
            if progress is not None:
                progress(name, count)
        report.checked[name], report.rewritten[name] = checked, rewritten
    return report


def _batches(db: Database, table: Any, cipher: TraitCipher, size: int) -> Iterator[tuple[int, int]]:
    after: Any = None
    while True:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with db.write() as session:
                    ids, changed = _rotate_batch(session.connection(), table, cipher, after, size)
                break
            except OperationalError:
                # A deadlock with an ingestion batch touching the same profiles: this batch rolled back
                # whole, and ingestion retries its own; try ours again.
                if attempt == ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)
        if not ids:
            return
        after = ids[-1]
        yield len(ids), changed


def _rotate_batch(
    conn: Connection, table: Any, cipher: TraitCipher, after: Any, size: int
) -> tuple[list[Any], int]:
    columns = _COLUMNS[table]
    query = select(table.id, *[getattr(table, c) for c in columns]).order_by(table.id).limit(size)
    if after is not None:
        query = query.where(table.id > after)
    # Row locks (PostgreSQL): ingestion must not write a profile between our read and our write.
    rows = conn.execute(query.with_for_update()).all()
    changed = 0
    for row in rows:
        values = dict(zip(columns, row[1:], strict=True))
        fresh = _RESEAL[table](values, cipher)
        if fresh:
            conn.execute(update(table).where(table.id == row[0]).values(**fresh))
            changed += 1
    return [row[0] for row in rows], changed


def _reseal_traits(values: dict[str, Any] | None, cipher: TraitCipher) -> dict[str, Any] | None:
    """A traits or properties object under the newest key, or None if it already is."""
    if not values:
        return None
    fresh = {key: cipher.reseal(key, value) for key, value in values.items()}
    return fresh if fresh != values else None


def _reseal_meta(meta: dict[str, Any] | None, cipher: TraitCipher) -> dict[str, Any] | None:
    """trait_meta (profiles/golden.py): each key's `seen` list holds the values it counted."""
    if not meta:
        return None
    fresh = {}
    for key, entry in meta.items():
        if isinstance(entry, list) and len(entry) > 3 and isinstance(entry[3], list):
            seen = [[cipher.reseal(key, item[0]), *item[1:]] for item in entry[3]]
            entry = [*entry[:3], seen]
        fresh[key] = entry
    return fresh if fresh != meta else None


def _profile(values: dict[str, Any], cipher: TraitCipher) -> dict[str, Any]:
    fresh = {}
    if (traits := _reseal_traits(values["traits"], cipher)) is not None:
        fresh["traits"] = traits
    if (meta := _reseal_meta(values["trait_meta"], cipher)) is not None:
        fresh["trait_meta"] = meta
    return fresh


def _history(values: dict[str, Any], cipher: TraitCipher) -> dict[str, Any]:
    value = cipher.reseal(values["key"], values["value"])
    return {"value": value} if value != values["value"] else {}


def _event(values: dict[str, Any], cipher: TraitCipher) -> dict[str, Any]:
    fresh: dict[str, Any] = {}
    for column in ("properties", "traits"):
        if (sealed := _reseal_traits(values[column], cipher)) is not None:
            fresh[column] = sealed
    context = values["context"] or {}
    traits = context.get("traits")
    if isinstance(traits, dict) and (sealed := _reseal_traits(traits, cipher)) is not None:
        fresh["context"] = {**context, "traits": sealed}
    return fresh


def _quarantined(values: dict[str, Any], cipher: TraitCipher) -> dict[str, Any]:
    payload = values["payload"]
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}  # not JSON: it never reached the point of having traits
    if not isinstance(raw, dict):
        return {}
    fresh = dict(raw)
    for part in ("traits", "properties"):
        if isinstance(raw.get(part), dict) and (sealed := _reseal_traits(raw[part], cipher)) is not None:
            fresh[part] = sealed
    context = raw.get("context")
    if isinstance(context, dict) and isinstance(context.get("traits"), dict):
        sealed = _reseal_traits(context["traits"], cipher)
        if sealed is not None:
            fresh["context"] = {**context, "traits": sealed}
    return {"payload": orjson.dumps(fresh).decode()} if fresh != raw else {}


_COLUMNS: dict[Any, tuple[str, ...]] = {
    Profile: ("traits", "trait_meta"),
    TraitChange: ("key", "value"),
    Event: ("properties", "traits", "context"),
    QuarantinedMessage: ("payload",),
}
_RESEAL: dict[Any, Callable[[dict[str, Any], TraitCipher], dict[str, Any]]] = {
    Profile: _profile,
    TraitChange: _history,
    Event: _event,
    QuarantinedMessage: _quarantined,
}
