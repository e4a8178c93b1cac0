"""Data subject requests: access, rectification, erasure, restriction of processing, objection.

A request is received (from the person, by any channel), verified (the team checks the requester is the
person: it must be, before anything is handed over or removed), carried out and completed, or rejected
with a reason. Each step lands in the request's log. Due dates follow the regulation the request comes
under: 30 days for GDPR (art. 12(3)), 45 days for CCPA/CPRA (§1798.130), 30 days for PIPL (the national
standard GB/T 35273-2020 §8.7 asks for an answer within 30 days). The worker reminds of requests due
within a week (`remind_due`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Conflict, Invalid, NotFound
from threadline.identity import InvalidIdentifier, normalise
from threadline.privacy.consent import PURPOSES, record_consent, statement
from threadline.privacy.erasure import erase_person, export_person, live_profile_id
from threadline.storage import Database
from threadline.storage.models import (
    Identity,
    PrivacyRequest,
    PrivacyRequestEntry,
    ProcessingRestriction,
)

KINDS = ("access", "rectification", "erasure", "restriction", "objection")
REGULATIONS = {"gdpr": 30, "ccpa": 45, "pipl": 30}
VERIFICATIONS = ("signed_in", "email_confirmation", "known_contact", "id_document", "other")
RECEIVED, VERIFIED, COMPLETED, REJECTED = "received", "verified", "completed", "rejected"
OPEN = (RECEIVED, VERIFIED)
REMIND_DAYS = 7


@dataclass(frozen=True, slots=True)
class RequestView:
    id: int
    kind: str
    regulation: str
    status: str
    profile_id: str | None
    requester: str | None
    subject: str | None
    details: dict[str, Any]
    received_at: datetime
    due_at: datetime
    verified_at: datetime | None
    verification: str | None
    completed_at: datetime | None
    outcome: dict[str, Any]
    log: list[dict[str, Any]]

    def overdue(self, now: datetime) -> bool:
        return self.status in OPEN and self.due_at < now

    def due_soon(self, now: datetime) -> bool:
        return self.status in OPEN and now <= self.due_at < now + timedelta(days=REMIND_DAYS)

    def as_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat() + "Z"

        return {
            "id": self.id,
            "kind": self.kind,
            "regulation": self.regulation,
            "status": self.status,
            "profile_id": self.profile_id,
            "requester": self.requester,
            "subject": self.subject,
            "details": self.details,
            "received_at": iso(self.received_at),
            "due_at": iso(self.due_at),
            "verified_at": iso(self.verified_at),
            "verification": self.verification,
            "completed_at": iso(self.completed_at),
            "outcome": self.outcome,
            "log": [{**e, "at": iso(e["at"])} for e in self.log],
        }


def _choice(value: str, field: str, allowed: Any) -> str:
    cleaned = (value or "").strip().lower()
    if cleaned not in allowed:
        raise Invalid(f"{field}: must be one of {', '.join(allowed)}", details={"field": field})
    return cleaned


def _log(
    conn: Connection, request_id: int, action: str, user_id: int | None, at: datetime, note: str | None
) -> None:
    conn.execute(
        insert(PrivacyRequestEntry).values(
            request_id=request_id, at=at, user_id=user_id, action=action, note=(note or None) and note[:2000]
        )
    )


def find_subject(conn: Connection, subject: str, *, region: str) -> str | None:
    """The live profile an email, phone number or user id given by the requester belongs to."""
    text = subject.strip()
    kinds = ["email"] if "@" in text else ["phone", "user_id"]
    for kind in kinds:
        try:
            value = normalise(kind, text, region=region, field="subject").value
        except InvalidIdentifier:
            continue
        found = conn.scalar(select(Identity.profile_id).where(Identity.kind == kind, Identity.value == value))
        if found:
            return live_profile_id(conn, found)
    return None


def create_request(
    db: Database,
    settings: Settings,
    *,
    kind: str,
    regulation: str = "gdpr",
    requester: str | None = None,
    subject: str | None = None,
    profile_id: str | None = None,
    details: dict[str, Any] | None = None,
    received_at: datetime,
    user_id: int | None,
    note: str | None = None,
) -> int:
    kind = _choice(kind, "kind", KINDS)
    regulation = _choice(regulation, "regulation", tuple(REGULATIONS))
    details = dict(details or {})
    if kind == "rectification" and not isinstance(details.get("traits"), dict):
        raise Invalid(
            "details.traits: a rectification names the traits to correct and their right values",
            details={"field": "details.traits"},
        )
    if kind == "objection":
        purposes = details.setdefault("purposes", ["marketing"])
        if not isinstance(purposes, list) or not purposes:
            raise Invalid(
                "details.purposes: a list of purposes objected to", details={"field": "details.purposes"}
            )
    if not (requester or subject or profile_id):
        raise Invalid(
            "subject: say whom the request is about (email, phone or profile)", details={"field": "subject"}
        )
    with db.write() as session:
        conn = session.connection()
        if profile_id:
            profile_id = live_profile_id(conn, profile_id)
        elif subject or requester:
            profile_id = find_subject(conn, str(subject or requester), region=settings.default_region)
        request_id = int(
            conn.execute(
                insert(PrivacyRequest)
                .values(
                    kind=kind,
                    regulation=regulation,
                    status=RECEIVED,
                    profile_id=profile_id,
                    requester=(requester or "").strip()[:320] or None,
                    subject=(subject or "").strip()[:320] or None,
                    details=details,
                    received_at=received_at,
                    due_at=received_at + timedelta(days=REGULATIONS[regulation]),
                    created_by=user_id,
                    outcome={},
                )
                .returning(PrivacyRequest.id)
            ).scalar_one()
        )
        _log(conn, request_id, "received", user_id, received_at, note)
        if profile_id is None:
            _log(conn, request_id, "subject_not_found", user_id, received_at, None)
    return request_id


def get_request(db: Database, request_id: int) -> RequestView:
    with db.read() as session:
        row = session.get(PrivacyRequest, request_id)
        if row is None:
            raise NotFound(f"privacy request {request_id} does not exist")
        log = [
            {"at": e.at, "action": e.action, "user_id": e.user_id, "note": e.note}
            for e in session.scalars(
                select(PrivacyRequestEntry)
                .where(PrivacyRequestEntry.request_id == request_id)
                .order_by(PrivacyRequestEntry.id)
            )
        ]
        return _view(row, log)


def _view(row: PrivacyRequest, log: list[dict[str, Any]]) -> RequestView:
    return RequestView(
        row.id,
        row.kind,
        row.regulation,
        row.status,
        row.profile_id,
        row.requester,
        row.subject,
        row.details or {},
        row.received_at,
        row.due_at,
        row.verified_at,
        row.verification,
        row.completed_at,
        row.outcome or {},
        log,
    )


def list_requests(
    db: Database, *, status: str | None = None, kind: str | None = None, limit: int = 200
) -> list[RequestView]:
    query = (
        select(PrivacyRequest)
        .order_by(PrivacyRequest.due_at, PrivacyRequest.id)
        .limit(min(max(limit, 1), 500))
    )
    if status == "open":
        query = query.where(PrivacyRequest.status.in_(OPEN))
    elif status:
        query = query.where(PrivacyRequest.status == _choice(status, "status", (*OPEN, COMPLETED, REJECTED)))
    if kind:
        query = query.where(PrivacyRequest.kind == _choice(kind, "kind", KINDS))
    with db.read() as session:
        return [_view(row, []) for row in session.scalars(query)]


def _open_row(session: Session, request_id: int) -> PrivacyRequest:
    row = session.get(PrivacyRequest, request_id, with_for_update=True)
    if row is None:
        raise NotFound(f"privacy request {request_id} does not exist")
    if row.status not in OPEN:
        raise Conflict(f"privacy request {request_id} is already {row.status}", details={"field": "status"})
    return row


def verify_request(
    db: Database, request_id: int, *, method: str, note: str | None, user_id: int | None, now: datetime
) -> None:
    method = _choice(method, "verification", VERIFICATIONS)
    with db.write() as session:
        row = _open_row(session, request_id)
        row.status, row.verified_at, row.verified_by, row.verification = VERIFIED, now, user_id, method
        _log(session.connection(), request_id, "verified", user_id, now, note)


def reject_request(db: Database, request_id: int, *, reason: str, user_id: int | None, now: datetime) -> None:
    if not reason.strip():
        raise Invalid("reason: say why the request is rejected", details={"field": "reason"})
    with db.write() as session:
        row = _open_row(session, request_id)
        row.status, row.completed_at, row.completed_by = REJECTED, now, user_id
        _log(session.connection(), request_id, "rejected", user_id, now, reason)


def set_subject(
    db: Database, request_id: int, profile_id: str, *, user_id: int | None, now: datetime
) -> None:
    with db.write() as session:
        row = _open_row(session, request_id)
        row.profile_id = live_profile_id(session.connection(), profile_id)
        _log(session.connection(), request_id, "subject_set", user_id, now, None)


def access_export(db: Database, request_id: int, *, user_id: int | None, now: datetime) -> dict[str, Any]:
    """The person's data for a verified access request (any kind may ask for it: an erasure's requester
    may want a copy first); logged each time it is handed out."""
    view = get_request(db, request_id)
    _require_verified(view)
    export = export_person(db, str(view.profile_id))
    with db.write() as session:
        _log(session.connection(), request_id, "exported", user_id, now, None)
    return export


def _require_verified(view: RequestView) -> None:
    if view.status != VERIFIED:
        raise Conflict(
            f"privacy request {view.id} is {view.status}: verify the requester first",
            details={"field": "status"},
        )
    if view.profile_id is None:
        raise Conflict(
            f"privacy request {view.id} has no customer: set whom it is about",
            details={"field": "profile_id"},
        )


def carry_out(
    db: Database, settings: Settings, request_id: int, *, user_id: int | None, now: datetime
) -> dict[str, Any]:
    """Do what a verified request asks and complete it; returns the outcome (counts, no personal data)."""
    view = get_request(db, request_id)
    _require_verified(view)
    profile_id = str(view.profile_id)
    if view.kind == "erasure":
        outcome: dict[str, Any] = erase_person(
            db, settings, profile_id, now=now, request_id=request_id
        ).as_dict()
        outcome.pop("profile_id")
    elif view.kind == "access":
        outcome = {
            "sections": {k: _size(v) for k, v in export_person(db, profile_id).items() if k != "profile_id"}
        }
    elif view.kind == "restriction":
        outcome = _restrict(db, profile_id, request_id, user_id, now)
    elif view.kind == "objection":
        outcome = _object(
            db, profile_id, view.details.get("purposes", ["marketing"]), request_id, user_id, now
        )
    else:
        outcome = _rectify(db, settings, profile_id, view.details.get("traits", {}), request_id, now)
    with db.write() as session:
        row = _open_row(session, request_id)
        row.status, row.completed_at, row.completed_by, row.outcome = COMPLETED, now, user_id, outcome
        _log(session.connection(), request_id, "completed", user_id, now, None)
    return outcome


def _size(section: Any) -> int:
    return len(section) if isinstance(section, list) else 1


def _restrict(
    db: Database, profile_id: str, request_id: int, user_id: int | None, now: datetime
) -> dict[str, Any]:
    with db.write() as session:
        if session.get(ProcessingRestriction, profile_id) is None:
            session.add(
                ProcessingRestriction(profile_id=profile_id, since=now, request_id=request_id, set_by=user_id)
            )
    return {"restricted": True}


def lift_restriction(db: Database, profile_id: str, *, user_id: int | None, now: datetime) -> bool:
    with db.write() as session:
        conn = session.connection()
        live = live_profile_id(conn, profile_id)
        rows = list(
            session.scalars(select(ProcessingRestriction).where(ProcessingRestriction.profile_id == live))
        )
        for row in rows:
            if row.request_id is not None:
                _log(conn, row.request_id, "restriction_lifted", user_id, now, None)
            session.delete(row)
    return bool(rows)


def _object(
    db: Database, profile_id: str, purposes: list[str], request_id: int, user_id: int | None, now: datetime
) -> dict[str, Any]:
    """An objection withdraws consent for the purposes objected to, on every channel, in the ledger."""
    chosen = [p for p in purposes if p in PURPOSES]
    if not chosen:
        raise Invalid(
            f"details.purposes: must name some of {', '.join(PURPOSES)}",
            details={"field": "details.purposes"},
        )
    record_consent(
        db,
        Viewer.system(),
        profile_id,
        [statement(purpose, "all", "withdrawn") for purpose in chosen],
        source="privacy_request",
        now=now,
        actor_user_id=user_id,
        evidence={"privacy_request": request_id},
    )
    return {"withdrawn": chosen}


def _rectify(
    db: Database, settings: Settings, profile_id: str, traits: dict[str, Any], request_id: int, now: datetime
) -> dict[str, Any]:
    """Corrected traits go in through the one write path, as an identify message from the internal
    "Privacy requests" source on the person's strongest identifier: the trait history shows the
    correction, and the newest value wins under the default golden-record rule."""
    from threadline.ingest import ingest, internal_source  # ingest imports privacy: import at use

    with db.read() as session:
        idents = session.execute(
            select(Identity.kind, Identity.value).where(Identity.profile_id == profile_id)
        ).all()
    by_kind = {kind: value for kind, value in idents}
    message: dict[str, Any] = {
        "type": "identify",
        "messageId": f"privacy-request-{request_id}",
        "traits": traits,
    }
    if "user_id" in by_kind:
        message["userId"] = by_kind["user_id"]
    elif "email" in by_kind:
        message["traits"] = {**traits, "email": traits.get("email", by_kind["email"])}
    elif "anonymous_id" in by_kind:
        message["anonymousId"] = by_kind["anonymous_id"]
    else:
        raise Conflict(
            "the customer has no identifier to attach a correction to", details={"field": "profile_id"}
        )
    source = internal_source(db, "Privacy requests", now=now)
    message["timestamp"] = now.isoformat() + "Z"
    result = ingest(db, source, [message], settings=settings, received_at=now)
    if result.rejected:
        first = result.rejected[0]
        raise Invalid(
            f"details.traits: {first.field or ''} {first.reason}".strip(), details={"field": "details.traits"}
        )
    return {"corrected": sorted(traits)}


def remind_due(db: Database, *, now: datetime) -> list[int]:
    """Open requests due within a week (or overdue) not reminded today: log a reminder, return their ids
    for the caller to notify. Run daily by the worker."""
    soon = now + timedelta(days=REMIND_DAYS)
    with db.write() as session:
        conn = session.connection()
        ids = list(
            conn.scalars(
                select(PrivacyRequest.id).where(
                    PrivacyRequest.status.in_(OPEN),
                    PrivacyRequest.due_at < soon,
                    func.coalesce(PrivacyRequest.reminded_at, datetime(1970, 1, 1))
                    < now - timedelta(hours=20),
                )
            )
        )
        if ids:
            conn.execute(update(PrivacyRequest).where(PrivacyRequest.id.in_(ids)).values(reminded_at=now))
            for request_id in ids:
                _log(conn, request_id, "reminder", None, now, None)
    return ids


def request_counts(db: Database, *, now: datetime) -> dict[str, int]:
    with db.read() as session:
        open_due = (
            session.execute(select(PrivacyRequest.due_at).where(PrivacyRequest.status.in_(OPEN)))
            .scalars()
            .all()
        )
    return {
        "open": len(open_due),
        "overdue": sum(1 for d in open_due if d < now),
        "due_soon": sum(1 for d in open_due if now <= d < now + timedelta(days=REMIND_DAYS)),
    }
