"""What Threadline itself does to a customer (an email sent, a segment entered, points earned, a
follow-up logged) lands on their timeline through the one write path, as a track event from an internal
source, on the customer's strongest identifier. A caller names the event's messageId after what it
records, so recording it twice (a job that ran again) is a duplicate the write path drops.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from threadline.config import Settings
from threadline.errors import NotFound
from threadline.ingest.pipeline import ingest
from threadline.ingest.sources import internal_source
from threadline.privacy import live_profile_id
from threadline.storage import Database
from threadline.storage.models import Identity

log = logging.getLogger(__name__)

# Identifier kinds in the order they attach an event to the customer: ids before an email or a phone,
# which would also land as observed traits (a customer known only by phone, from a call, has only that).
_ATTACH_ORDER = ("user_id", "anonymous_id", "email", "phone")


def attachment_of(db: Database, profile_id: str) -> dict[str, Any] | None:
    """The message fields that stitch an event to the customer, or None when none is left (erased)."""
    with db.read() as session:
        try:
            live = live_profile_id(session.connection(), profile_id)
        except NotFound:  # erased meanwhile
            return None
        found = dict(
            session.execute(
                select(Identity.kind, Identity.value)
                .where(Identity.profile_id == live, Identity.kind.in_(_ATTACH_ORDER))
                .order_by(Identity.first_seen.desc(), Identity.id.desc())
            ).all()
        )
    if "user_id" in found:
        return {"userId": found["user_id"]}
    if "anonymous_id" in found:
        return {"anonymousId": found["anonymous_id"]}
    if "email" in found:
        return {"context": {"traits": {"email": found["email"]}}}
    if "phone" in found:
        return {"context": {"traits": {"phone": found["phone"]}}}
    return None


def record_customer_event(
    db: Database,
    settings: Settings,
    profile_id: str,
    event: str,
    *,
    properties: dict[str, Any],
    message_id: str,
    source: str,
    channel: str,
    at: datetime,
    received_at: datetime | None = None,
) -> bool:
    """Put `event` on the customer's timeline at `at` (received `received_at`, default `at`); False when
    the customer has no identifier left to attach it to (erased meanwhile) or the write path refused it
    (logged: a bug, not the customer's doing)."""
    attach = attachment_of(db, profile_id)
    if attach is None:
        return False
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "messageId": message_id[:100],
        "timestamp": at.isoformat() + "Z",
        "properties": properties,
        **attach,
    }
    received = received_at or at
    info = internal_source(db, source, now=received, channel=channel)
    result = ingest(db, info, [message], settings=settings, received_at=received)
    if result.rejected:
        log.warning("%s: timeline event %r refused (%s)", source, event, result.rejected[0].field)
        return False
    return True
