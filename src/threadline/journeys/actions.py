"""What a journey's action steps do to a customer, other than messages (runner.py sends those, since the
send and the step log share a transaction). Each goes through the one write path (or the sales tasks, or
the loyalty ledger), named after the enrollment and step, so doing it again after a crash is a duplicate
the write path drops (or, for points, one this module finds in the ledger and does not write again).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.destinations import DestinationNotFound, send_to_destination
from threadline.ingest import attachment_of, ingest, internal_source, record_customer_event
from threadline.loyalty import adjust
from threadline.profiles import change_tags
from threadline.storage import Database
from threadline.storage.models import DestinationDelivery, LoyaltyEntry, Profile

SOURCE = "Threadline journeys"
TASK_EVENT = "Follow-up Task Created"


def _message_id(enrollment_id: int, step_key: str) -> str:
    return f"journey-{enrollment_id}-{step_key}"


def _set_trait(
    db: Database, settings: Settings, profile_id: str, name: str, value: Any, mid: str, now: datetime
) -> str:
    attach = attachment_of(db, profile_id)
    if attach is None:
        return "gone"
    message = {
        "type": "identify",
        "messageId": mid,
        "timestamp": now.isoformat() + "Z",
        **attach,
        "traits": {**attach.get("context", {}).get("traits", {}), name: value},
    }
    result = ingest(db, internal_source(db, SOURCE, now=now), [message], settings=settings, received_at=now)
    return "refused" if result.rejected else "done"


def _create_task(
    db: Database,
    settings: Settings,
    journey: dict[str, Any],
    step: dict[str, Any],
    profile_id: str,
    mid: str,
    now: datetime,
) -> str:
    """A follow-up task for the customer's owner (threadline.sales), and the fact on the timeline."""
    from threadline.sales import create_task

    with db.read() as session:
        profile = session.get(Profile, profile_id)
        owner = None if profile is None else profile.owner_id
    task = create_task(
        db,
        Viewer.system(),
        title=str(step.get("title") or journey["name"]),
        description=step.get("description"),
        due_at=now + timedelta(days=float(step.get("due_days", 1))),
        assignee_id=owner,
        related_type="profile",
        related_id=profile_id,
        now=now,
    )
    properties = {"journey": journey["name"], "task_id": task.id, "owner_id": owner}
    record_customer_event(
        db,
        settings,
        profile_id,
        TASK_EVENT,
        properties=properties,
        message_id=mid,
        source=SOURCE,
        channel="other",
        at=now,
    )
    return "done"


def _add_points(
    db: Database,
    settings: Settings,
    journey: dict[str, Any],
    step: dict[str, Any],
    profile_id: str,
    mid: str,
    now: datetime,
) -> str:
    """Points through the loyalty ledger (an adjustment, expiring like earned points), with a reason that
    names the journey and ends with the step's marker: a re-run after a crash finds the line and stops."""
    marker = f"[{mid}]"
    with db.read() as session:
        written = session.scalar(
            select(LoyaltyEntry.id)
            .where(
                LoyaltyEntry.profile_id == profile_id,  # the ledger's index; the runner ends merged ones
                LoyaltyEntry.reason.endswith(marker, autoescape=True),
            )
            .limit(1)
        )
    if written is not None:
        return "done"
    why = str(step.get("reason") or "").strip()
    head = f"Journey {journey['name']}" + (f": {why}" if why else "")
    reason = f"{head[: 290 - len(marker)]} {marker}"  # loyalty_ledger.reason holds 300
    adjust(db, Viewer.system(), profile_id, int(step["points"]), reason, now=now, settings=settings)
    return "done"


def _webhook(
    db: Database, journey: dict[str, Any], step: dict[str, Any], profile_id: str, mid: str, now: datetime
) -> str:
    """A signed POST to a destination (threadline.destinations: its retries and dead letters), queued in
    one transaction with a check that this enrollment's step has not queued it before (a re-run after a
    crash); the payload's messageId lets the receiver drop a repeat of the delivery itself."""
    payload = {
        "type": "journey_step",
        "messageId": mid,
        "journey": journey["name"],
        "step": step["key"],
        "profile_id": profile_id,
        "at": now.isoformat() + "Z",
        "properties": dict(step.get("properties") or {}),
    }
    with db.write() as session:
        earlier = session.scalars(
            select(DestinationDelivery.payload).where(
                DestinationDelivery.profile_id == profile_id, DestinationDelivery.kind == "journey"
            )
        )
        if any(isinstance(p, dict) and p.get("messageId") == mid for p in earlier):
            return "queued"
        try:
            send_to_destination(
                session.connection(),
                int(step["destination"]),
                payload,
                profile_id=profile_id,
                kind="journey",
                name=journey["name"],
                now=now,
            )
        except DestinationNotFound:
            return "no such destination"
    return "queued"


def perform(
    db: Database,
    settings: Settings,
    *,
    journey: dict[str, Any],
    enrollment_id: int,
    profile_id: str,
    step: dict[str, Any],
    now: datetime,
) -> str:
    """Do one action step; answers its outcome for the step log."""
    kind, mid = step["type"], _message_id(enrollment_id, step["key"])
    if kind == "record_event":
        properties = {"journey": journey["name"], **dict(step.get("properties") or {})}
        done = record_customer_event(
            db,
            settings,
            profile_id,
            step["event"],
            properties=properties,
            message_id=mid,
            source=SOURCE,
            channel="other",
            at=now,
        )
        return "done" if done else "gone"
    if kind == "set_trait":
        return _set_trait(db, settings, profile_id, step["trait"], step.get("value"), mid, now)
    if kind in ("add_tag", "remove_tag"):
        adding = kind == "add_tag"
        tag = str(step["tag"])
        change_tags(
            db, Viewer.system(), [profile_id], add=[tag] if adding else [], remove=[] if adding else [tag]
        )
        return "done"  # already tagged (a re-run) is done too
    if kind == "create_task":
        return _create_task(db, settings, journey, step, profile_id, mid, now)
    if kind == "add_loyalty_points":
        return _add_points(db, settings, journey, step, profile_id, mid, now)
    if kind == "webhook":
        return _webhook(db, journey, step, profile_id, mid, now)
    raise ValueError(f"not an action: {kind}")
