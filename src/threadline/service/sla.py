"""SLA clocks: due times when a conversation opens, and the minute job that warns and records breaches.

A conversation has two clocks, counted in its policy's business hours from when it opened: first
response (stopped by the first agent reply, `first_response_at`) and resolution (stopped by resolving
or closing it). `sla_state` goes ok -> warning (a running clock is within the policy's
`warn_before_minutes` of its due time) -> breached (a clock passed its due time, or stopped after it).
Breached stays breached: it is the conversation's record, even once answered. A warning clears when
the clock that caused it stops in time. While the conversation is pending the resolution clock is
paused, and leaving pending moves its due time by the pause (sla_pause.py).

Each breach is a track event "SLA Breached" on the customer's timeline (customer_events.py) at the due
time, with the conversation and the target, so journeys and reports can use it; its messageId
(`sla-{conversation}-{target}`) makes the minute job's repeats no-ops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from threadline.config import Settings
from threadline.service.business_hours import add_business_minutes
from threadline.service.customer_events import BREACH_EVENT, record_service_event
from threadline.service.sla_pause import keep_pauses
from threadline.service.sla_policies import PolicyView, view_of
from threadline.service.weakest_link import queue_evaluation
from threadline.storage import Database
from threadline.storage.models import Conversation, Event, Profile, SlaPolicy

log = logging.getLogger(__name__)

FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
OK, WARNING, BREACHED = "ok", "warning", "breached"
RUNNING = ("open", "pending")
STOPPED = ("resolved", "closed")
TIER_TRAIT = "tier"  # the customer trait policies match on ("gold", "vip", ...)
# Until the conversations module calls apply_policy itself, the minute job gives policies to
# conversations opened this recently; older ones were opened before any policy and keep none, so a
# policy added today does not breach last month's conversations at once.
APPLY_WITHIN = timedelta(days=1)
# Stopped clocks are looked at this long after the conversation last changed: a reply after the due
# time, seen by the next run, is still recorded as a breach.
RECHECK_WITHIN = timedelta(days=1)


def _policies(session: Session) -> list[PolicyView]:
    rows = session.scalars(
        select(SlaPolicy).where(SlaPolicy.active.is_(True)).order_by(SlaPolicy.position, SlaPolicy.id)
    )
    return [view_of(row) for row in rows]


def matching_policy(
    policies: list[PolicyView], *, priority: str | None, tier: str | None, channel: str | None
) -> PolicyView | None:
    """The first policy (by position) that matches; None when none does."""
    return next((p for p in policies if p.matches(priority=priority, tier=tier, channel=channel)), None)


def apply_policy(
    session: Session, conversation: Conversation, *, policies: list[PolicyView] | None = None
) -> PolicyView | None:
    """Give an opening conversation its SLA: the first matching active policy and its two due times,
    counted from `created_at`. For the conversations module to call in the transaction that opens the
    conversation; the minute job does it for conversations that have none yet."""
    if policies is None:
        policies = _policies(session)
    profile = session.get(Profile, conversation.profile_id)
    tier = (profile.traits or {}).get(TIER_TRAIT) if profile is not None else None
    policy = matching_policy(
        policies,
        priority=conversation.priority,
        tier=None if tier is None else str(tier),
        channel=conversation.channel,
    )
    if policy is None:
        return None
    calendar = policy.business_calendar()
    conversation.sla_policy_id = policy.id
    conversation.first_response_due = add_business_minutes(
        conversation.created_at, policy.first_response_minutes, calendar
    )
    conversation.resolution_due = add_business_minutes(
        conversation.created_at, policy.resolution_minutes, calendar
    )
    conversation.sla_state = OK
    return policy


@dataclass(frozen=True, slots=True)
class Breach:
    conversation_id: int
    profile_id: str
    target: str
    due: datetime
    channel: str
    priority: str
    policy: str | None

    @property
    def message_id(self) -> str:
        return f"sla-{self.conversation_id}-{self.target}"


def clock_states(conversation: Conversation, warn_before: timedelta, now: datetime) -> dict[str, str]:
    """Each clock's state at `now`: ok, warning or breached (a clock without a due time is left out)."""
    resolution_stop = None
    if conversation.status in STOPPED:
        resolution_stop = conversation.resolved_at or conversation.closed_at or now
    elif conversation.sla_paused_at is not None:
        # Pending: the clock stands where it paused (sla_pause.py); it breached only if it had run
        # out before that, and it does not warn while it waits.
        resolution_stop = conversation.sla_paused_at
    clocks = [
        (FIRST_RESPONSE, conversation.first_response_due, conversation.first_response_at),
        (RESOLUTION, conversation.resolution_due, resolution_stop),
    ]
    states = {}
    for target, due, stopped in clocks:
        if due is None:
            continue
        if stopped is not None:
            states[target] = BREACHED if stopped > due else OK
        elif now >= due:
            states[target] = BREACHED
        else:
            states[target] = WARNING if now >= due - warn_before else OK
    return states


def conversation_state(current: str, states: dict[str, str]) -> str:
    if current == BREACHED or BREACHED in states.values():
        return BREACHED
    return WARNING if WARNING in states.values() else OK


def apply_missing_policies(db: Database, *, now: datetime) -> int:
    """Policies for recently opened conversations that have none; answers how many got one."""
    applied = 0
    with db.write() as session:
        policies = _policies(session)
        if not policies:
            return 0
        rows = session.scalars(
            select(Conversation).where(
                Conversation.sla_policy_id.is_(None),
                Conversation.status.in_(RUNNING),
                Conversation.created_at >= now - APPLY_WITHIN,
            )
        )
        for row in rows:
            if apply_policy(session, row, policies=policies) is not None:
                applied += 1
    return applied


def _recorded(db: Database, message_ids: list[str]) -> set[str]:
    if not message_ids:
        return set()
    with db.read() as session:
        return set(session.scalars(select(Event.message_id).where(Event.message_id.in_(message_ids))))


def check_slas(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """The minute job ("service.sla"): policies for new conversations, states moved on, breaches on
    the timeline. Safe to run again: states are recomputed and each breach event is recorded once."""
    applied = apply_missing_policies(db, now=now)
    keep_pauses(db)
    with db.read() as session:
        rows = session.execute(
            select(Conversation, SlaPolicy.warn_before_minutes, SlaPolicy.name)
            .outerjoin(SlaPolicy, SlaPolicy.id == Conversation.sla_policy_id)
            .where(
                or_(Conversation.first_response_due.is_not(None), Conversation.resolution_due.is_not(None)),
                or_(Conversation.status.in_(RUNNING), Conversation.updated_at >= now - RECHECK_WITHIN),
            )
        ).all()
        session.expunge_all()
    changes: dict[int, tuple[str, str]] = {}
    breaches: list[Breach] = []
    for conversation, warn_minutes, policy_name in rows:
        states = clock_states(conversation, timedelta(minutes=warn_minutes or 0), now)
        state = conversation_state(conversation.sla_state, states)
        if state != conversation.sla_state:
            changes[conversation.id] = (conversation.sla_state, state)
        for target, clock in states.items():
            if clock == BREACHED:
                due = (
                    conversation.first_response_due
                    if target == FIRST_RESPONSE
                    else conversation.resolution_due
                )
                assert due is not None
                breaches.append(
                    Breach(
                        conversation.id,
                        conversation.profile_id,
                        target,
                        due,
                        conversation.channel,
                        conversation.priority,
                        policy_name,
                    )
                )
    if changes:
        with db.write() as session:
            for conversation_id, (before, after) in changes.items():
                # Only from the state read: a concurrent run that moved it already wins.
                session.execute(
                    update(Conversation)
                    .where(Conversation.id == conversation_id, Conversation.sla_state == before)
                    .values(sla_state=after)
                )
    recorded = _recorded(db, [b.message_id for b in breaches])
    new = [b for b in breaches if b.message_id not in recorded]
    for breach in new:
        record_breach(db, settings, breach, now=now)
    if new:
        for profile_id in {b.profile_id for b in new}:
            queue_evaluation(db, profile_id, now=now)
    return {
        "applied": applied,
        "warning": sum(1 for _, after in changes.values() if after == WARNING),
        "breached": sum(1 for _, after in changes.values() if after == BREACHED),
        "breach_events": len(new),
    }


def record_breach(db: Database, settings: Settings, breach: Breach, *, now: datetime) -> bool:
    properties: dict[str, Any] = {
        "conversation_id": breach.conversation_id,
        "target": breach.target,
        "due": breach.due.isoformat() + "Z",
        "channel": breach.channel,
        "priority": breach.priority,
    }
    if breach.policy:
        properties["policy"] = breach.policy
    return record_service_event(
        db,
        settings,
        profile_id=breach.profile_id,
        name=BREACH_EVENT,
        properties=properties,
        message_id=breach.message_id,
        channel=breach.channel,
        at=breach.due,
        now=now,
    )
