"""The audit log: who viewed, changed, exported or deleted which record, when and from where.

Append-only by construction: this module records and searches; nothing in Threadline updates or
deletes an entry. Details never hold personal data (an identifier searched for, a trait's value): only
IDs, counts and names of fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text

from threadline.storage import Database
from threadline.storage.models import AuditEntry, User


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it and from where; `user_id` None for the system (CLI, worker)."""

    user_id: int | None
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: datetime
    user_email: str | None
    action: str
    object_type: str
    object_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]


def record(
    db: Database,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str | None = None,
    *,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    with db.write() as session:
        if action == "view" and session.get_bind().dialect.name == "postgresql":
            # A read's audit entry rides on PostgreSQL's asynchronous commit: it is written within a
            # fraction of a second without holding the reader up for a disk flush. Exports, changes and
            # refusals still wait for theirs.
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        session.execute(
            insert(AuditEntry).values(
                at=at,
                user_id=actor.user_id,
                action=action,
                object_type=object_type,
                object_id=object_id,
                ip=actor.ip,
                user_agent=(actor.user_agent or "")[:300] or None,
                details=details or {},
            )
        )


def search_audit(
    db: Database,
    *,
    user_email: str | None = None,
    action: str | None = None,
    object_id: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    query = (
        select(AuditEntry, User.email)
        .outerjoin(User, User.id == AuditEntry.user_id)
        .order_by(AuditEntry.id.desc())
        .limit(min(max(limit, 1), 500))
    )
    if user_email:
        query = query.where(User.email == user_email.strip().lower())
    if action:
        query = query.where(AuditEntry.action == action)
    if object_id:
        query = query.where(AuditEntry.object_id == object_id)
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    with db.read() as session:
        return [
            AuditRecord(
                e.id, e.at, email, e.action, e.object_type, e.object_id, e.ip, e.user_agent, e.details
            )
            for e, email in session.execute(query)
        ]
