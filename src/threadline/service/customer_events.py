"""What the service desk puts on a customer's timeline (SLA breaches, survey answers, recovery tasks),
through the one write path, so journeys, segments and reports read them like any other event.

Each event comes from an internal source per channel ("Service (email)", ...): a source's channel is
the channel its events count in (the profile's channels, the dashboards' channel filter), and a
survey answered by email belongs to email. The caller names the messageId, so recording an event
again (a job that ran twice) is a duplicate the write path drops. Like messaging's events
(messaging/timeline.py), an event attaches to the customer's user id, else anonymous id, else email.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from threadline.config import CHANNELS, Settings
from threadline.errors import NotFound
from threadline.ingest import ingest, internal_source
from threadline.privacy import live_profile_id
from threadline.storage import Database
from threadline.storage.models import Identity

log = logging.getLogger(__name__)

# Event names other capabilities read: the insight dashboards read "Survey Answered" with properties
# survey and score (threadline.analytics.surveys); journeys and reports read the breaches.
BREACH_EVENT = "SLA Breached"
SURVEY_EVENT = "Survey Answered"
SURVEY_CHANGED_EVENT = "Survey Answer Changed"
RECOVERY_TASK_EVENT = "Recovery Task Created"
# Conversation channels (threadline.service) as the timeline's channels (threadline.config.CHANNELS).
TIMELINE_CHANNELS = {"whatsapp": "sms", "wechat": "social", "phone": "call_center"}
_ATTACH_ORDER = ("user_id", "anonymous_id", "email")


def timeline_channel(channel: str | None) -> str:
    found = TIMELINE_CHANNELS.get(channel or "", channel or "other")
    return found if found in CHANNELS else "other"


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


def record_service_event(
    db: Database,
    settings: Settings,
    *,
    profile_id: str,
    name: str,
    properties: dict[str, Any],
    message_id: str,
    channel: str | None,
    at: datetime,
    now: datetime,
) -> bool:
    """A track event `name` at `at` on the customer's timeline; False when the customer has no
    identifier left to attach it to (erased) or the write path refused it (logged: a bug)."""
    attach = _attachment(db, profile_id)
    if attach is None:
        return False
    shown = timeline_channel(channel)
    source = internal_source(db, f"Service ({shown})", channel=shown, now=now)
    event = {
        "type": "track",
        "event": name,
        "messageId": message_id,
        "timestamp": at.isoformat() + "Z",
        "properties": properties,
        **attach,
    }
    result = ingest(db, source, [event], settings=settings, received_at=now)
    if result.rejected:
        log.warning("service event %s refused by the write path (%s)", name, result.rejected[0].field)
        return False
    return True
