"""Frequency caps: at most N promotional messages per customer per channel in any D days.

THREADLINE_FREQUENCY_CAPS holds rules such as `1/1d,3/7d`. Every purpose but service counts and is
capped (a recommendation email tires a customer as much as a campaign does); a service message is
neither. A message over a cap is refused, not delayed: a campaign that would be the fourth this week
is simply not sent, and the delivery log and the timeline say "frequency cap".

Checked twice, like consent: when asked (queued and held messages count, since they will go out), and
again at send time against what actually went out (sending, sent), which catches two sends asked for
at the same moment and messages that waited in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threadline.config import Settings
from threadline.messaging.quiet_hours import UNPACED_PURPOSES
from threadline.storage.models import OutboundMessage, Profile

REASON_PREFIX = "frequency cap"
_COUNTED_WHEN_ASKED = ("queued", "sending", "sent")
_COUNTED_WHEN_SENDING = ("sending", "sent")


@dataclass(frozen=True, slots=True)
class Cap:
    messages: int
    days: int

    @property
    def rule(self) -> str:
        return f"{self.messages}/{self.days}d"


def caps(settings: Settings) -> list[Cap]:
    """The configured rules; their form was checked when the settings loaded (config.py)."""
    rules = []
    for rule in settings.frequency_caps:
        messages, days = rule.removesuffix("d").split("/")
        rules.append(Cap(int(messages), int(days)))
    return rules


def cap_reached(
    session: Session,
    settings: Settings,
    live_profile_id: str,
    channel: str,
    purpose: str,
    now: datetime,
    *,
    sending_message_id: int | None = None,
) -> str | None:
    """The refusal's reason when one more `purpose` message on `channel` to the customer would pass a
    cap, else None. `sending_message_id`: the check at send time, counting only what went out, other
    than that message."""
    rules = caps(settings)
    if not rules or purpose in UNPACED_PURPOSES:
        return None
    merged = select(Profile.id).where(Profile.merged_into == live_profile_id)
    ids = [live_profile_id, *session.scalars(merged)]
    for cap in rules:
        since = now - timedelta(days=cap.days)
        query = select(func.count()).where(
            OutboundMessage.profile_id.in_(ids),
            OutboundMessage.channel == channel,
            OutboundMessage.purpose.not_in(UNPACED_PURPOSES),
        )
        if sending_message_id is None:
            query = query.where(
                OutboundMessage.status.in_(_COUNTED_WHEN_ASKED),
                func.coalesce(OutboundMessage.sent_at, OutboundMessage.created_at) > since,
            )
        else:
            query = query.where(
                OutboundMessage.id != sending_message_id,
                OutboundMessage.status.in_(_COUNTED_WHEN_SENDING),
                func.coalesce(OutboundMessage.sent_at, OutboundMessage.updated_at) > since,
            )
        already = session.scalar(query) or 0
        if already >= cap.messages:
            return (
                f"{REASON_PREFIX}: the customer already has {already} marketing, analytics or "
                f"personalisation {'message' if already == 1 else 'messages'} by {channel} in "
                f"{cap.days} {'day' if cap.days == 1 else 'days'} (cap {cap.rule})"
            )
    return None
