"""What the program puts on the customer's timeline, through the one write path: "Points Earned" for each
earning event and "Loyalty Tier Changed" (properties from, to) for journeys and segments to react to.

The events come from the internal source "Loyalty" (channel other), attached like every internal event
(threadline.ingest.attachment_of) to the customer's user id, else anonymous id, else email. Their
messageIds name what they record, so writing one again (a job that ran twice) is a duplicate the write
path drops. The earning job skips this source's events, so the program's own events never earn points.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from threadline.config import Settings
from threadline.ingest import SourceInfo, attachment_of, ingest, internal_source
from threadline.loyalty.program import POINTS_EARNED, TIER_CHANGED
from threadline.loyalty.standing import TierChange
from threadline.storage import Database

log = logging.getLogger(__name__)

SOURCE_NAME = "Loyalty"


def loyalty_source(db: Database, *, now: datetime) -> SourceInfo:
    return internal_source(db, SOURCE_NAME, channel="other", now=now)


@dataclass(frozen=True, slots=True)
class Earned:
    profile_id: str
    event_id: int
    event_name: str
    channel: str
    points: int
    at: datetime


def announce(
    db: Database,
    settings: Settings,
    *,
    earned: Sequence[Earned] = (),
    changes: Sequence[TierChange] = (),
    now: datetime,
) -> int:
    """Write the timeline events for points earned and tiers changed; answers how many were written."""
    events: list[dict[str, Any]] = []
    for entry in earned:
        attach = attachment_of(db, entry.profile_id)
        if attach is not None:
            properties = {"points": entry.points, "event": entry.event_name, "event_id": entry.event_id}
            events.append(
                _track(POINTS_EARNED, f"loyalty-earn-{entry.event_id}", entry.at, properties, attach)
            )
    for change in changes:
        attach = attachment_of(db, change.profile_id)
        if attach is not None:
            direction = "up" if change.upgrade else "down"
            properties = {"from": change.old, "to": change.new, "direction": direction}
            message_id = f"loyalty-tier-{change.profile_id}-{now:%Y%m%dT%H%M%S%f}"
            events.append(_track(TIER_CHANGED, message_id, now, properties, attach))
    if not events:
        return 0
    result = ingest(db, loyalty_source(db, now=now), events, settings=settings, received_at=now)
    for rejection in result.rejected:  # a bug, not the customer's doing: the ledger stands
        log.warning("loyalty timeline event refused by the write path (%s)", rejection.field)
    return len(events) - len(result.rejected)


def _track(
    name: str, message_id: str, at: datetime, properties: dict[str, Any], attach: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "track",
        "event": name,
        "messageId": message_id,
        "timestamp": at.isoformat() + "Z",
        "properties": properties,
        **attach,
    }
