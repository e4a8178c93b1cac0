"""Every send, refusal and failure lands on the customer's timeline, through the one write path.

The events come from the internal source "Threadline messaging" (channel email), or "Threadline
messaging (sms)" and so on for the provider channels, as track events on the customer's strongest
identifier. Their messageId names the message and its outcome, so recording one
again (a job that ran twice) is a duplicate the write path drops.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from threadline.config import Settings
from threadline.ingest import record_customer_event
from threadline.storage import Database

SOURCE_NAME = "Threadline messaging"
# Outcome -> event name. A refusal is named for no channel: later channels refuse by the same rule.
EVENT_NAMES = {"sent": "Email Sent", "refused": "Message Refused", "failed": "Email Failed"}
# The provider channels' outcomes are not emails: named like service's chat replies ("Message Sent").
OTHER_EVENT_NAMES = {"sent": "Message Sent", "refused": "Message Refused", "failed": "Message Failed"}
# A message channel as the timeline's channels (threadline.config.CHANNELS), as service maps them.
TIMELINE_CHANNELS = {
    "email": "email",
    "sms": "sms",
    "whatsapp": "sms",
    "wechat": "social",
    "social": "social",
}


def event_name(outcome: str, channel: str) -> str:
    return (EVENT_NAMES if channel == "email" else OTHER_EVENT_NAMES)[outcome]


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
    properties: dict[str, Any] = {
        "outbound_message_id": message_id,
        "channel": channel,
        "purpose": purpose,
        "subject": subject,
        "origin": origin,
    }
    if reason:
        properties["reason"] = reason
    return record_customer_event(
        db,
        settings,
        profile_id,
        event_name(outcome, channel),
        properties=properties,
        message_id=f"outbound-{message_id}-{outcome}",
        # One internal source per channel: a source's channel is where its events count.
        source=SOURCE_NAME if channel == "email" else f"{SOURCE_NAME} ({channel})",
        channel=TIMELINE_CHANNELS.get(channel, "other"),
        at=now,
    )
