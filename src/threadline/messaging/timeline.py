"""Every send, refusal and failure lands on the customer's timeline, through the one write path.

The events come from the internal source "Threadline messaging" (channel email), as track events on the
customer's strongest identifier. Their messageId names the message and its outcome, so recording one
again (a job that ran twice) is a duplicate the write path drops.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from threadline.config import Settings
from threadline.errors import NotFound
from threadline.ingest import ingest, internal_source
from threadline.privacy import live_profile_id
from threadline.storage import Database
from threadline.storage.models import Identity

log = logging.getLogger(__name__)

SOURCE_NAME = "Threadline messaging"
# Outcome -> event name. A refusal is named for no channel: later channels refuse by the same rule.
EVENT_NAMES = {"sent": "Email Sent", "refused": "Message Refused", "failed": "Email Failed"}
# Identifier kinds in the order they attach an event to the customer: ids before an email, which would
# also land as an observed trait.
_ATTACH_ORDER = ("user_id", "anonymous_id", "email")


def _attachment(db: Database, profile_id: str) -> dict[str, Any] | None:
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
    return None


def record_outcome(
    db: Database,
    settings: Settings,
    *,
    message_id: int,
    profile_id: str,
    outcome: str,
    channel: str,
    purpose: str,
    subject: str,
    origin: str,
    reason: str | None,
    now: datetime,
) -> bool:
    """Put the message's outcome (sent, refused, failed) on the customer's timeline; False when the
    customer has no identifier left to attach it to (erased meanwhile)."""
    attach = _attachment(db, profile_id)
    if attach is None:
        return False
    properties: dict[str, Any] = {
        "outbound_message_id": message_id,
        "channel": channel,
        "purpose": purpose,
        "subject": subject,
        "origin": origin,
    }
    if reason:
        properties["reason"] = reason
    event: dict[str, Any] = {
        "type": "track",
        "event": EVENT_NAMES[outcome],
        "messageId": f"outbound-{message_id}-{outcome}",
        "timestamp": now.isoformat() + "Z",
        "properties": properties,
        **attach,
    }
    source = internal_source(db, SOURCE_NAME, now=now, channel="email")
    result = ingest(db, source, [event], settings=settings, received_at=now)
    if result.rejected:  # a bug, not the customer's doing: the message itself stands
        log.warning("outbound message %d: timeline event refused (%s)", message_id, result.rejected[0].field)
        return False
    return True
