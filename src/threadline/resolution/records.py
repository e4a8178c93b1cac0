"""Profiles as the flat records the matching model compares, read in pages from either database.

Splink runs in DuckDB, in memory: its PostgreSQL backend needs a DuckDB extension that is downloaded at
run time, which a production host may not allow. So live profiles are read out page by page (keyset on
the id, one short read transaction each, so ingestion is never held up) into an Arrow table.
Traits are read in both spellings people send: Segment's (`firstName`, `address.postalCode`) and
snake case (`first_name`, `address.postal_code`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
from sqlalchemy import func, select

from threadline.resolution.model import RECORD_COLUMNS
from threadline.storage import Database
from threadline.storage.models import Profile

PAGE = 20_000
Progress = Callable[[int, int], None]  # (done, total)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def _first(traits: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        found = _text(traits.get(key))
        if found:
            return found
    return None


def record_of(profile_id: str, traits: dict[str, Any], display_name: str | None) -> dict[str, str | None]:
    """One profile as a record with RECORD_COLUMNS."""
    raw_address = traits.get("address")
    address: dict[str, Any] = raw_address if isinstance(raw_address, dict) else {}
    birth = _first(traits, "birthday", "birth_date", "birthDate", "dob")
    return {
        "unique_id": profile_id,
        "first_name": _first(traits, "firstName", "first_name"),
        "last_name": _first(traits, "lastName", "last_name"),
        "full_name": _first(traits, "name") or _text(display_name),
        "birth_date": birth[:10] if birth else None,
        "email": (_first(traits, "email") or "").lower() or None,
        "phone": _first(traits, "phone"),
        "street": _first(address, "street", "line1") or _first(traits, "street"),
        "postcode": _first(address, "postalCode", "postal_code", "postcode", "zip")
        or _first(traits, "postalCode", "postal_code", "postcode"),
        "city": _first(address, "city") or _first(traits, "city"),
    }


def read_profile_records(db: Database, *, progress: Progress | None = None) -> pa.Table:
    """Every live profile as a record, in an Arrow table with RECORD_COLUMNS as strings."""
    with db.read() as session:
        total = int(session.scalar(select(func.count()).where(Profile.merged_into.is_(None))) or 0)
    columns: dict[str, list[str | None]] = {name: [] for name in RECORD_COLUMNS}
    last_id, done = "", 0
    while True:
        with db.read() as session:
            rows = session.execute(
                select(Profile.id, Profile.traits, Profile.display_name)
                .where(Profile.merged_into.is_(None), Profile.id > last_id)
                .order_by(Profile.id)
                .limit(PAGE)
            ).all()
        if not rows:
            break
        for profile_id, traits, display_name in rows:
            record = record_of(profile_id, traits or {}, display_name)
            for name in RECORD_COLUMNS:
                columns[name].append(record[name])
        last_id, done = rows[-1][0], done + len(rows)
        if progress is not None:
            progress(done, max(total, done))
    return pa.table({name: pa.array(values, type=pa.string()) for name, values in columns.items()})
