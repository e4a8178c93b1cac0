"""Retention: how long each class of data is kept, and the run that removes what is older.

A policy is a workspace choice (workspace_settings, key `privacy.retention`): per data class a maximum
age in days, or None to keep forever. A run removes exactly the rows of a class whose age column is
before `now - days` (a row at the cutoff stays), in chunks of `CHUNK` rows, each chunk its own
transaction: a first run over years of events never holds one huge transaction, and SQLite's writer lock
is let go between chunks so messages keep arriving. A dry run counts the same rows and removes nothing.

A capability whose data should expire adds one `DataClass` to `DATA_CLASSES` (docs/privacy.md). The
audit log is no data class: it is append-only (storage/append_only.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, case, cast, delete, func, literal, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import ColumnElement

from threadline.accounts import SESSION_IDLE_LIMIT
from threadline.errors import Invalid
from threadline.jobs import JobInfo, enqueue
from threadline.privacy.audit import Actor, record
from threadline.storage import Database, put_setting
from threadline.storage.models import (
    Event,
    MatchCandidate,
    QuarantinedMessage,
    SignInFailure,
    UserSession,
    WorkspaceSetting,
)

RETENTION_POLICY_KEY = "privacy.retention"
RETENTION_JOB = "privacy.retention"  # the job kind (threadline.jobs.kinds) that runs apply_retention
CHUNK = 5_000
MAX_DAYS = 36_500  # a hundred years: more is "forever", and keeps `now - days` a valid date
SYSTEM = Actor(None)
# (data class, rows removed so far, rows the run expects to remove)
Progress = Callable[[str, int, int], None]
# A rejected pair's row is what stops the resolver suggesting it again (resolution/decisions.py), so it
# stays and only its evidence goes; merged and obsolete pairs can go whole. Same strings as there.
_REJECTED, _DECIDED = "rejected", ("merged", "obsolete", "rejected")


@dataclass(frozen=True, slots=True)
class DataClass:
    """Rows that expire together: `age` is the column their age counts from; `eligible(now)` narrows the
    table to rows that may expire at all (an open session never does); `expire` removes a chunk by key
    and answers how many rows it removed (default: delete them)."""

    name: str
    label: str
    key: InstrumentedAttribute[Any]
    age: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None]
    default_days: int | None
    eligible: Callable[[datetime], ColumnElement[bool]] | None = None
    expire: Callable[[Session, list[Any]], int] | None = None


def _ended_sessions(now: datetime) -> ColumnElement[bool]:
    return or_(UserSession.revoked_at.is_not(None), UserSession.last_seen_at < now - SESSION_IDLE_LIMIT)


def _unlocked_failures(now: datetime) -> ColumnElement[bool]:
    return or_(SignInFailure.locked_until.is_(None), SignInFailure.locked_until <= now)


def _decided_pairs(now: datetime) -> ColumnElement[bool]:
    evidence_left = cast(MatchCandidate.evidence, String) != "{}"
    return MatchCandidate.status.in_(_DECIDED) & ((MatchCandidate.status != _REJECTED) | evidence_left)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


def _expire_pairs(session: Session, ids: list[Any]) -> int:
    chosen = MatchCandidate.id.in_(ids)
    deleted = session.execute(delete(MatchCandidate).where(chosen, MatchCandidate.status != _REJECTED))
    emptied = session.execute(
        update(MatchCandidate).where(chosen, MatchCandidate.status == _REJECTED).values(evidence={})
    )
    return _rowcount(deleted) + _rowcount(emptied)


# In the order reports list them. Conversations, messages and follow-ups add theirs here when they exist.
DATA_CLASSES: tuple[DataClass, ...] = (
    # Kept unless the business decides: events are the customers' history and what segments count.
    DataClass("events", "Raw events", Event.id, Event.timestamp, None),
    # Messages refused at the door: worth a look for a month, then only a liability.
    DataClass(
        "quarantine", "Quarantined messages", QuarantinedMessage.id, QuarantinedMessage.received_at, 30
    ),
    # Ended sign-in sessions hold staff IPs and browsers; 90 days covers a security investigation.
    DataClass(
        "sessions", "Ended sign-in sessions", UserSession.id, UserSession.last_seen_at, 90, _ended_sessions
    ),
    # Counters for unknown emails (already keyed hashes); sign-ins prune them too, but only while they fail.
    DataClass(
        "sign_in_failures",
        "Failed sign-ins of unknown emails",
        SignInFailure.key,
        SignInFailure.updated_at,
        30,
        _unlocked_failures,
    ),
    # A decided pair's evidence quotes both customers' names, emails and phones; a year covers questions
    # about a merge, and the merge itself keeps its own record (table merges).
    DataClass(
        "match_candidates",
        "Decided duplicate pairs",
        MatchCandidate.id,
        MatchCandidate.decided_at,
        365,
        _decided_pairs,
        _expire_pairs,
    ),
)


def data_class(name: str) -> DataClass:
    for candidate in DATA_CLASSES:
        if candidate.name == name:
            return candidate
    names = ", ".join(c.name for c in DATA_CLASSES)
    raise Invalid(f"{name}: not a data class; choose from {names}", details={"field": name})


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days kept per data class (None: forever), every class named; who changed it last and when."""

    days: Mapping[str, int | None]
    updated_at: datetime | None = None
    updated_by: int | None = None


def default_policy() -> dict[str, int | None]:
    return {c.name: c.default_days for c in DATA_CLASSES}


def check_days(name: str, value: Any) -> int | None:
    data_class(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise Invalid(
            f"{name}: must be a whole number of days from 1 to {MAX_DAYS}, or null to keep forever",
            details={"field": name},
        )
    return value


def get_retention_policy(db: Database) -> RetentionPolicy:
    with db.read() as session:
        stored = session.get(WorkspaceSetting, RETENTION_POLICY_KEY)
    days = default_policy()
    if stored is None:
        return RetentionPolicy(days)
    if isinstance(stored.value, dict):
        # A class no longer known (or a value no longer valid) falls back to the default.
        for name, value in stored.value.items():
            if name in days and (value is None or (isinstance(value, int) and 1 <= value <= MAX_DAYS)):
                days[name] = value
    return RetentionPolicy(days, stored.updated_at, stored.updated_by)


def set_retention_policy(
    db: Database, changes: Mapping[str, Any], *, user_id: int | None, now: datetime
) -> RetentionPolicy:
    """Change the days of the classes named in `changes`; the others keep theirs. Checked as a whole
    first: one bad value saves nothing."""
    if not isinstance(changes, Mapping):
        raise Invalid("policy: must map data classes to days", details={"field": "policy"})
    checked = {str(name): check_days(str(name), value) for name, value in changes.items()}
    days = {**get_retention_policy(db).days, **checked}
    with db.write() as session:
        put_setting(session.connection(), RETENTION_POLICY_KEY, days, user_id=user_id, now=now)
    return RetentionPolicy(days, now, user_id)


@dataclass(frozen=True, slots=True)
class RetentionLine:
    """One data class in a report: its policy and cutoff, the rows older than it (to go, or gone), and
    the oldest row's date before the run (None: no rows)."""

    data_class: str
    label: str
    days: int | None
    cutoff: datetime | None
    rows: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class RetentionReport:
    at: datetime
    applied: bool  # False: a dry run, `rows` would go; True: `rows` went
    lines: tuple[RetentionLine, ...]

    def counts(self) -> dict[str, int]:
        return {line.data_class: line.rows for line in self.lines}


def _where(kind: DataClass, now: datetime) -> list[ColumnElement[bool]]:
    return [kind.eligible(now)] if kind.eligible else []


def _survey(db: Database, kind: DataClass, days: int | None, now: datetime) -> RetentionLine:
    cutoff = now - timedelta(days=days) if days is not None else None
    # One pass over the table for both numbers (the events table has no index on its timestamp).
    older = func.count(case((kind.age < cutoff, 1))) if cutoff is not None else literal(0)
    query = select(older, func.min(kind.age)).select_from(kind.key.class_).where(*_where(kind, now))
    with db.read() as session:
        rows, oldest = session.execute(query).one()
    return RetentionLine(kind.name, kind.label, days, cutoff, int(rows or 0), oldest)


def retention_report(
    db: Database, *, now: datetime, policy: RetentionPolicy | None = None
) -> RetentionReport:
    """The dry run: what a run now would remove, per data class. Removes nothing."""
    days = (policy or get_retention_policy(db)).days
    return RetentionReport(now, False, tuple(_survey(db, c, days.get(c.name), now) for c in DATA_CLASSES))


def _expire_chunk(
    db: Database, kind: DataClass, cutoff: datetime, now: datetime, chunk: int
) -> tuple[int, bool]:
    """Remove up to `chunk` of the oldest-keyed expired rows in one transaction: (removed, more left)."""
    with db.write() as session:
        ids = list(
            session.scalars(
                select(kind.key).where(kind.age < cutoff, *_where(kind, now)).order_by(kind.key).limit(chunk)
            )
        )
        if not ids:
            return 0, False
        if kind.expire is not None:
            removed = kind.expire(session, ids)
        else:
            removed = _rowcount(session.execute(delete(kind.key.class_).where(kind.key.in_(ids))))
    return removed, len(ids) == chunk


def apply_retention(
    db: Database,
    *,
    now: datetime,
    actor: Actor = SYSTEM,
    via: str = "worker",
    requested_by: int | None = None,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> RetentionReport:
    """Remove what the policy says has expired and audit the run (counts only). Safe to run again: a
    second run finds nothing older than the cutoff. Profiles stay, with their lifetime counters."""
    policy = get_retention_policy(db)
    planned = retention_report(db, now=now, policy=policy)
    lines = []
    for kind, plan in zip(DATA_CLASSES, planned.lines, strict=True):
        removed = 0
        if plan.cutoff is not None and plan.rows:
            more = True
            while more:
                done, more = _expire_chunk(db, kind, plan.cutoff, now, chunk)
                removed += done
                if progress:
                    progress(kind.name, removed, max(plan.rows, removed))
        lines.append(RetentionLine(kind.name, kind.label, plan.days, plan.cutoff, removed, plan.oldest))
    report = RetentionReport(now, True, tuple(lines))
    details: dict[str, Any] = {"via": via, "removed": report.counts(), "policy": dict(policy.days)}
    if requested_by is not None:
        details["requested_by"] = requested_by
    record(db, actor, "retention", "workspace", None, at=now, details=details)
    return report


def queue_retention_run(
    db: Database, *, requested_by: int | None, via: str, now: datetime, max_attempts: int = 5
) -> JobInfo | None:
    """Ask a worker to run retention now. Asked again within the same minute, nothing more is queued
    (None): one run removes everything there is to remove."""
    return enqueue(
        db,
        RETENTION_JOB,
        {"via": via, "requested_by": requested_by},
        now=now,
        dedupe_key=f"{RETENTION_JOB}:asked:{now:%Y-%m-%dT%H:%M}",
        max_attempts=max_attempts,
    )
