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


# Opens and clicks (tracking.py), named as analytics counts them (analytics/metrics.py EMAIL_OPENED,
# EMAIL_CLICKED) and as the churn model reads them (analytics/churn_features.py).
OPENED = "opened"
OPENED_EVENT = "Email Opened"
CLICKED_EVENT = "Email Link Clicked"


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


def record_engagement(
    db: Database,
    settings: Settings,
    *,
    message_id: int,
    profile_id: str,
    purpose: str,
    subject: str,
    origin: str,
    url: str | None,
    link_hash: str | None,
    now: datetime,
) -> bool:
    """ "Email Opened" (no `url`) or "Email Link Clicked" (`url`, as `link_url`) on the timeline; once
    per message, and once per message and link (`link_hash`, tracking.py): a second open or click of
    the same link is a duplicate messageId the write path drops."""
    properties: dict[str, Any] = {
        "outbound_message_id": message_id,
        "channel": "email",
        "purpose": purpose,
        "subject": subject,
        "origin": origin,
    }
    if url is None:
        name, key = OPENED_EVENT, f"outbound-{message_id}-opened"
    else:
        properties["link_url"] = url
        name, key = CLICKED_EVENT, f"outbound-{message_id}-clicked-{link_hash}"
    return record_customer_event(
        db,
        settings,
        profile_id,
        name,
        properties=properties,
        message_id=key,
        source=SOURCE_NAME,
        channel="email",
        at=now,
    )
