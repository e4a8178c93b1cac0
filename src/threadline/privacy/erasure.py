"""Erasure that sticks, and the access export: a person's data, found through the holders, removed or
handed over.

An erasure runs in one transaction: it puts the person's identifiers on the suppression list, then asks
every holder (privacy/personal_data.py) to delete or anonymise its rows. What remains is the fact that it
happened: the request (without what identified the person), the audit entry (counts only) and the
suppression hashes. On SQLite the deleted text is also overwritten on disk (secure_delete) and the
trigram search index is rebuilt, so the bytes leave the file, not just the rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from threadline.config import Settings
from threadline.errors import Invalid, NotFound
from threadline.privacy.personal_data import HOLDERS, ErasurePolicy, Person, find_person
from threadline.privacy.suppression import suppress
from threadline.storage import PHONE_FTS, PROFILE_NAME_FTS, Database, put_setting
from threadline.storage.models import Profile, WorkspaceSetting

log = logging.getLogger(__name__)

POLICY_KEY = "privacy.erasure"
_HOPS = 5


@dataclass(frozen=True, slots=True)
class ErasureReport:
    profile_id: str
    profiles: int
    identifiers_suppressed: int
    rows: dict[str, int]  # holder table -> rows deleted or anonymised

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile_id": self.profile_id,
            "profiles": self.profiles,
            "identifiers_suppressed": self.identifiers_suppressed,
            "rows": self.rows,
        }


def live_profile_id(conn: Connection, profile_id: str) -> str:
    """Follow merges to the live profile; NotFound when the id is unknown (or already erased)."""
    current = profile_id
    for _ in range(_HOPS):
        row = conn.execute(select(Profile.merged_into).where(Profile.id == current)).first()
        if row is None or row[0] == current:
            raise NotFound(f"profile {profile_id} does not exist", details={"field": "profile_id"})
        if row[0] is None:
            return current
        current = row[0]
    raise NotFound(f"profile {profile_id} does not exist", details={"field": "profile_id"})


def erasure_policy(conn: Connection) -> ErasurePolicy:
    stored = conn.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == POLICY_KEY))
    if not stored:
        return ErasurePolicy()
    return ErasurePolicy(
        events=stored.get("events", "anonymise"),
        keep_properties=tuple(stored.get("keep_properties", ErasurePolicy().keep_properties)),
    )


def set_erasure_policy(
    db: Database, *, events: str, keep_properties: list[str], user_id: int | None, now: datetime
) -> ErasurePolicy:
    if events not in {"anonymise", "delete"}:
        raise Invalid("events: must be anonymise or delete", details={"field": "events"})
    keep = [k.strip() for k in keep_properties if k.strip()]
    if any(len(k) > 100 for k in keep):
        raise Invalid(
            "keep_properties: a property name is longer than 100 characters",
            details={"field": "keep_properties"},
        )
    with db.write() as session:
        value = {"events": events, "keep_properties": keep}
        put_setting(session.connection(), POLICY_KEY, value, user_id=user_id, now=now)
    return ErasurePolicy(events, tuple(keep))


def erase_person(
    db: Database, settings: Settings, profile_id: str, *, now: datetime, request_id: int | None = None
) -> ErasureReport:
    """Erase everything about the person behind `profile_id` (merged-away ids follow to the live one)."""
    sqlite = db.dialect == "sqlite"
    with db.write() as session:
        conn = session.connection()
        if sqlite:
            # Overwrite deleted content with zeros instead of leaving it in free pages.
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        live = live_profile_id(conn, profile_id)
        if not sqlite:
            # Stitching locks profile rows the same way: no message can add to the person meanwhile.
            conn.execute(select(Profile.id).where(Profile.id == live).with_for_update())
        person = find_person(conn, live)
        suppressed = suppress(conn, settings, person.identifiers, now=now, request_id=request_id)
        policy = erasure_policy(conn)
        rows = {holder.table: holder.erase(conn, person, policy) for holder in HOLDERS}
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete = OFF")
    if sqlite:
        _scrub_sqlite(db)
    log.info("erased profile %s: %s", live, rows)
    return ErasureReport(live, len(person.profile_ids), suppressed, rows)


def _scrub_sqlite(db: Database) -> None:
    """Merge the trigram indexes' segments (a deleted name otherwise lingers in an older segment until
    FTS5 merges it) and move the WAL into the database file. On the raw connection, which pysqlite
    keeps in autocommit: each statement is its own transaction, as the checkpoint needs."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA secure_delete = ON")
        for table in (PROFILE_NAME_FTS, PHONE_FTS):
            cursor.execute(f"INSERT INTO {table} ({table}) VALUES ('optimize')")
        cursor.execute("PRAGMA secure_delete = OFF")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


def export_person(db: Database, profile_id: str) -> dict[str, Any]:
    """Everything the holders know about the person, as JSON-ready sections (the right of access)."""
    with db.read() as session:
        conn = session.connection()
        person = find_person(conn, live_profile_id(conn, profile_id))
        sections = {holder.name: holder.export(conn, person) for holder in HOLDERS if holder.export}
    # The profile first, as a reader expects it.
    return {"profile_id": person.live_id, "profile": sections.pop("profile"), **sections}


def person_of(db: Database, profile_id: str) -> Person:
    with db.read() as session:
        conn = session.connection()
        return find_person(conn, live_profile_id(conn, profile_id))
