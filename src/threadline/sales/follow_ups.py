"""Follow-up records (跟进记录): a rep's phone call, visit or message with a customer, and when to get back.

Recording one is one transaction (the row, and the account's or lead's last/next follow-up times), then
an event on the customer's unified timeline through the one write path (`threadline.ingest.ingest`), from
an internal source per channel ("Sales (call_center)"): a source's channel is the channel its events
count in, as with service's sources. The next contact time is the owner's reminder (threadline.sales
schedule reads it); nothing else is stored for it.

Calls, emails and messages other capabilities put on the timeline (messaging's "Email Sent", service's
"Email Received" / "Message Received", "Call Logged") are shown as follow-ups by reading the timeline
(`follow_ups_from_timeline`), not copied: one fact, one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.ingest import record_customer_event
from threadline.sales.subjects import Subject, move_follow_up_times, subject_for
from threadline.storage import Database, put_setting
from threadline.storage.models import Event, FollowUp, Profile, WorkspaceSetting

METHODS_KEY = "sales.follow_up_methods"
DEFAULT_METHODS = ("phone", "email", "visit", "sms", "wechat", "chat", "meeting", "other")
# Method -> the timeline channel its event counts in (threadline.config.CHANNELS); a configured method
# not listed here counts as "other".
METHOD_CHANNELS = {
    "phone": "call_center",
    "email": "email",
    "visit": "store",
    "sms": "sms",
    "wechat": "social",
    "chat": "chat",
    "meeting": "other",
    "other": "other",
}
EVENT_NAME = "Follow-up Logged"
# Events other capabilities log that count as a follow-up, with the method they show as.
AUTOMATIC_EVENTS = {"Email Sent": "email", "Email Received": "email", "Call Logged": "phone"}
MESSAGE_EVENT = "Message Received"  # its method follows the channel it came on
_MESSAGE_METHODS = {
    "sms": "sms",
    "social": "wechat",
    "chat": "chat",
    "email": "email",
    "call_center": "phone",
}
MAX_CONTENT = 5000
MAX_OUTCOME = 200
TIMELINE_EXCERPT = 500  # the timeline shows the start of the notes; the follow-up keeps them whole


@dataclass(frozen=True, slots=True)
class FollowUpView:
    id: int | None  # None for one read from the timeline
    subject_type: str
    subject_id: str
    profile_id: str | None
    method: str
    content: str
    outcome: str | None
    next_contact_at: datetime | None
    owner_id: int | None
    created_at: datetime
    related: dict[str, Any] = field(default_factory=dict)
    automatic: bool = False  # read from another capability's event: shown, not editable
    event_name: str | None = None

    def as_json(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat() + "Z"

        return {
            "id": self.id,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "profile_id": self.profile_id,
            "method": self.method,
            "content": self.content,
            "outcome": self.outcome,
            "next_contact_at": iso(self.next_contact_at),
            "owner_id": self.owner_id,
            "created_at": iso(self.created_at),
            "related": self.related,
            "automatic": self.automatic,
            "event_name": self.event_name,
        }


def _view(row: FollowUp) -> FollowUpView:
    return FollowUpView(
        row.id,
        row.subject_type,
        row.subject_id,
        row.profile_id,
        row.method,
        row.content,
        row.outcome,
        row.next_contact_at,
        row.owner_id,
        row.created_at,
        dict(row.related or {}),
    )


def follow_up_methods(db: Database) -> tuple[str, ...]:
    """The workspace's methods (workspace setting "sales.follow_up_methods"), else the defaults."""
    with db.read() as session:
        stored = session.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == METHODS_KEY))
    if isinstance(stored, list) and stored and all(isinstance(m, str) and m for m in stored):
        return tuple(stored)
    return DEFAULT_METHODS


def set_follow_up_methods(
    db: Database, methods: list[str], *, by: int | None, now: datetime
) -> tuple[str, ...]:
    cleaned = [m.strip().lower() for m in methods if isinstance(m, str) and m.strip()]
    if not cleaned or any(len(m) > 20 for m in cleaned) or len(set(cleaned)) != len(cleaned):
        raise Invalid("methods: give distinct names of at most 20 characters", details={"field": "methods"})
    with db.write() as session:
        put_setting(session.connection(), METHODS_KEY, cleaned, user_id=by, now=now)
    return tuple(cleaned)


def _text(value: Any, name: str, limit: int, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid(f"{name}: is required", details={"field": name})
        return None
    if not isinstance(value, str):
        raise Invalid(f"{name}: must be text", details={"field": name})
    if len(value) > limit:
        raise Invalid(f"{name}: at most {limit} characters", details={"field": name})
    return value.strip()


def _related(value: Any) -> dict[str, list[int]]:
    if not value:
        return {}
    if not isinstance(value, dict) or set(value) - {"contact_ids", "deal_ids"}:
        raise Invalid("related: an object with contact_ids and deal_ids", details={"field": "related"})
    out: dict[str, list[int]] = {}
    for key, ids in value.items():
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise Invalid(f"related.{key}: a list of ids", details={"field": f"related.{key}"})
        out[key] = sorted(set(ids))
    return out


def _check_related(session: Session, viewer: Viewer, related: dict[str, list[int]]) -> None:
    for key, kind in (("contact_ids", "contact"), ("deal_ids", "deal")):
        for related_id in related.get(key, []):
            try:
                subject_for(session, viewer, kind, str(related_id))
            except NotFound:
                raise Invalid(
                    f"related.{key}: no {kind} {related_id}", details={"field": f"related.{key}"}
                ) from None


def _may_write(viewer: Viewer) -> None:
    if not viewer.can("edit"):
        raise Forbidden("your role may not record follow-ups")


def record_follow_up(
    db: Database,
    settings: Settings,
    viewer: Viewer,
    *,
    subject_type: str,
    subject_id: str,
    method: str,
    content: str,
    outcome: str | None = None,
    next_contact_at: datetime | None = None,
    related: dict[str, Any] | None = None,
    now: datetime,
) -> FollowUpView:
    """Record a follow-up on a record the viewer may change; it lands on the customer's timeline."""
    _may_write(viewer)
    methods = follow_up_methods(db)
    if method not in methods:
        raise Invalid(f"method: must be one of {', '.join(methods)}", details={"field": "method"})
    text = _text(content, "content", MAX_CONTENT, required=True) or ""
    result = _text(outcome, "outcome", MAX_OUTCOME, required=False)
    if next_contact_at is not None and next_contact_at < now:
        raise Invalid("next_contact_at: must be in the future", details={"field": "next_contact_at"})
    links = _related(related)
    with db.write() as session:
        subject = subject_for(session, viewer, subject_type, subject_id, write=True)
        _check_related(session, viewer, links)
        row = FollowUp(
            subject_type=subject.type,
            subject_id=subject.id,
            profile_id=subject.profile_id,
            method=method,
            content=text,
            outcome=result,
            next_contact_at=next_contact_at,
            # The reminder is the record owner's to keep; a colleague's note on it reminds the owner.
            owner_id=viewer.user_id if subject.owner_id is None else subject.owner_id,
            created_at=now,
            related=links,
        )
        session.add(row)
        session.flush()
        move_follow_up_times(session, subject, last=now, next_at=next_contact_at)
        view = _view(row)
    if view.profile_id:
        _put_on_timeline(db, settings, view, subject, now=now)
    return view


def _put_on_timeline(
    db: Database, settings: Settings, view: FollowUpView, subject: Subject, *, now: datetime
) -> bool:
    assert view.profile_id is not None
    properties: dict[str, Any] = {
        "follow_up_id": view.id,
        "method": view.method,
        "subject_type": subject.type,
        "subject_id": subject.id,
        "content": view.content[:TIMELINE_EXCERPT],
    }
    if view.outcome:
        properties["outcome"] = view.outcome
    if view.next_contact_at:
        properties["next_contact_at"] = view.next_contact_at.isoformat() + "Z"
    return record_sales_event(
        db,
        settings,
        profile_id=view.profile_id,
        name=EVENT_NAME,
        properties=properties,
        # Recording the same follow-up again (a retried job) is a duplicate the write path drops.
        message_id=f"follow-up-{view.id}",
        channel=METHOD_CHANNELS.get(view.method, "other"),
        now=now,
    )


def record_sales_event(
    db: Database,
    settings: Settings,
    *,
    profile_id: str,
    name: str,
    properties: dict[str, Any],
    message_id: str,
    channel: str,
    now: datetime,
) -> bool:
    """A track event on the customer's timeline through the write path, from the source "Sales
    (<channel>)" (a source's channel is fixed, so one per channel); False when the customer has no
    identifier left to attach it to (erased meanwhile) or the write path refused it."""
    return record_customer_event(
        db,
        settings,
        profile_id,
        name,
        properties=properties,
        message_id=message_id,
        source=f"Sales ({channel})",
        channel=channel,
        at=now,
    )


def _own_row(session: Session, viewer: Viewer, follow_up_id: int, *, write: bool) -> FollowUp:
    row = session.get(FollowUp, follow_up_id)
    if row is None:
        raise NotFound(f"follow-up {follow_up_id} does not exist")
    subject_for(session, viewer, row.subject_type, row.subject_id, write=write)
    return row


def follow_up_in_scope(session: Session, viewer: Viewer, follow_up_id: int, *, write: bool) -> FollowUp:
    """The follow-up row if its subject is in the viewer's (write) scope; NotFound otherwise."""
    return _own_row(session, viewer, follow_up_id, write=write)


def get_follow_up(db: Database, viewer: Viewer, follow_up_id: int) -> FollowUpView:
    with db.read() as session:
        return _view(_own_row(session, viewer, follow_up_id, write=False))


def update_follow_up(
    db: Database, viewer: Viewer, follow_up_id: int, changes: dict[str, Any], *, now: datetime
) -> FollowUpView:
    """Correct a follow-up's notes, outcome, method or next contact time. The timeline keeps the event as
    it was logged (events are append-only); the list and the reminders show the correction."""
    _may_write(viewer)
    unknown = set(changes) - {"method", "content", "outcome", "next_contact_at", "related"}
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"{name}: cannot be changed", details={"field": name})
    values: dict[str, Any] = {}
    if "method" in changes:
        methods = follow_up_methods(db)
        if changes["method"] not in methods:
            raise Invalid(f"method: must be one of {', '.join(methods)}", details={"field": "method"})
        values["method"] = changes["method"]
    if "content" in changes:
        values["content"] = _text(changes["content"], "content", MAX_CONTENT, required=True)
    if "outcome" in changes:
        values["outcome"] = _text(changes["outcome"], "outcome", MAX_OUTCOME, required=False)
    if "next_contact_at" in changes:
        values["next_contact_at"] = changes["next_contact_at"]
    if "related" in changes:
        values["related"] = _related(changes["related"])
    with db.write() as session:
        row = _own_row(session, viewer, follow_up_id, write=True)
        if "related" in values:
            _check_related(session, viewer, values["related"])
        for key, value in values.items():
            setattr(row, key, value)
        session.flush()
        if "next_contact_at" in values:
            subject = subject_for(session, viewer, row.subject_type, row.subject_id, write=True)
            newest = session.scalar(
                select(FollowUp.id)
                .where(FollowUp.subject_type == row.subject_type, FollowUp.subject_id == row.subject_id)
                .order_by(FollowUp.created_at.desc(), FollowUp.id.desc())
                .limit(1)
            )
            if newest == row.id:  # only the latest follow-up says when the next contact is
                move_follow_up_times(session, subject, last=row.created_at, next_at=row.next_contact_at)
        return _view(row)


def delete_follow_up(db: Database, viewer: Viewer, follow_up_id: int) -> FollowUpView:
    """Remove a follow-up recorded by mistake (its timeline event stays: events are append-only)."""
    _may_write(viewer)
    with db.write() as session:
        row = _own_row(session, viewer, follow_up_id, write=True)
        view = _view(row)
        session.execute(delete(FollowUp).where(FollowUp.id == follow_up_id))
        return view


def follow_ups_from_timeline(
    db: Database, profile_id: str, *, subject_type: str, subject_id: str, limit: int = 50
) -> list[FollowUpView]:
    """Calls, emails and messages other capabilities logged on the customer's timeline, as read-only
    follow-ups. Events move to the survivor when profiles merge, so the live profile has them all."""
    names = [*AUTOMATIC_EVENTS, MESSAGE_EVENT]
    with db.read() as session:
        live = session.scalar(select(Profile.merged_into).where(Profile.id == profile_id)) or profile_id
        rows = session.execute(
            select(Event.name, Event.channel, Event.timestamp, Event.properties)
            .where(Event.profile_id == live, Event.name.in_(names))
            .order_by(Event.timestamp.desc(), Event.id.desc())
            .limit(limit)
        ).all()
    found = []
    for name, channel, at, properties in rows:
        props = properties or {}
        method = AUTOMATIC_EVENTS.get(name) or _MESSAGE_METHODS.get(channel, "other")
        summary = props.get("subject") or props.get("text") or props.get("body") or props.get("notes") or name
        found.append(
            FollowUpView(
                None,
                subject_type,
                subject_id,
                live,
                method,
                str(summary)[:TIMELINE_EXCERPT],
                props.get("outcome") or props.get("status"),
                None,
                None,
                at,
                automatic=True,
                event_name=name,
            )
        )
    return found


def list_follow_ups(
    db: Database,
    viewer: Viewer,
    *,
    subject_type: str,
    subject_id: str,
    include_automatic: bool = True,
    limit: int = 50,
) -> list[FollowUpView]:
    """The record's follow-ups, newest first, merged with the ones read from the customer's timeline."""
    with db.read() as session:
        subject = subject_for(session, viewer, subject_type, subject_id)
        rows = session.scalars(
            select(FollowUp)
            .where(FollowUp.subject_type == subject.type, FollowUp.subject_id == subject.id)
            .order_by(FollowUp.created_at.desc(), FollowUp.id.desc())
            .limit(limit)
        ).all()
        recorded = [_view(row) for row in rows]
    if include_automatic and subject.profile_id:
        recorded += follow_ups_from_timeline(
            db, subject.profile_id, subject_type=subject.type, subject_id=subject.id, limit=limit
        )
    recorded.sort(key=lambda f: (f.created_at, f.id or 0), reverse=True)
    return recorded[:limit]


def reassign_reminders(session: Session, *, subject: Subject, owner_id: int | None) -> int:
    """Pending reminders follow the record to its new owner (a pool claim or an assignment)."""
    return (
        session.execute(
            update(FollowUp)
            .where(
                FollowUp.subject_type == subject.type,
                FollowUp.subject_id == subject.id,
                FollowUp.next_contact_at.is_not(None),
            )
            .values(owner_id=owner_id)
        ).rowcount  # type: ignore[attr-defined]
        or 0
    )
