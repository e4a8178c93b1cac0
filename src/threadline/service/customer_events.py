"""What the service desk puts on a customer's timeline (SLA breaches, survey answers, recovery tasks),
through the one write path, so journeys, segments and reports read them like any other event.

Each event comes from an internal source per channel ("Service (email)", ...): a source's channel is
the channel its events count in (the profile's channels, the dashboards' channel filter), and a
survey answered by email belongs to email. The caller names the messageId, so recording an event
again (a job that ran twice) is a duplicate the write path drops. Like messaging's events
(threadline.ingest.record_customer_event), an event attaches to the customer's user id, else
anonymous id, else email.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from threadline.config import CHANNELS, Settings
from threadline.ingest import record_customer_event
from threadline.storage import Database

log = logging.getLogger(__name__)

# Event names other capabilities read: the insight dashboards read "Survey Answered" with properties
# survey and score (threadline.analytics.surveys); journeys and reports read the breaches.
BREACH_EVENT = "SLA Breached"
SURVEY_EVENT = "Survey Answered"
SURVEY_CHANGED_EVENT = "Survey Answer Changed"
RECOVERY_TASK_EVENT = "Recovery Task Created"
# Conversation channels (threadline.service) as the timeline's channels (threadline.config.CHANNELS).
TIMELINE_CHANNELS = {"whatsapp": "sms", "wechat": "social", "phone": "call_center"}


def timeline_channel(channel: str | None) -> str:
    found = TIMELINE_CHANNELS.get(channel or "", channel or "other")
    return found if found in CHANNELS else "other"


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
    shown = timeline_channel(channel)
    return record_customer_event(
        db,
        settings,
        profile_id,
        name,
        properties=properties,
        message_id=message_id,
        source=f"Service ({shown})",
        channel=shown,
        at=at,
        received_at=now,
    )
