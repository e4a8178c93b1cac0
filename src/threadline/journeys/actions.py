"""What a journey's action steps do to a customer, other than email (runner.py sends those, since the
send and the step log share a transaction). Each goes through the one write path (or the sales tasks),
named after the enrollment and step, so doing it again after a crash is a duplicate the write path drops.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.ingest import attachment_of, ingest, internal_source, record_customer_event
from threadline.profiles import change_tags
from threadline.storage import Database
from threadline.storage.models import Profile

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
    raise ValueError(f"not an action: {kind}")
