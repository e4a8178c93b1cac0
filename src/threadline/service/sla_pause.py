"""The resolution clock pauses while a conversation is pending: time spent waiting on the customer is
not the desk's time.

Only the resolution clock pauses. The first-response clock keeps running: a conversation set pending
before anyone answered is not waiting on the customer (asking them for something is a reply, which
stops that clock anyway), and pausing it would let "pending" hide an unanswered customer.

Going pending stamps `sla_paused_at`. Leaving pending (the customer writes back, an agent opens,
resolves or closes it) moves `resolution_due` later by the business minutes of the pause, counted in
the policy's calendar (a pause over a night or a weekend moves it by the hours the desk was open), and
adds them to `sla_paused_minutes`. So the stored due time is always the one the clock runs against,
and every reader of it (the minute job, the inbox's SLA column, the breach event's `due`) stays
right; while paused, the minute job neither warns nor breaches (sla.clock_states). A pause that began
at or after the due time moves nothing: the clock had already run out.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from threadline.errors import Invalid
from threadline.service.business_hours import (
    BusinessCalendar,
    add_business_minutes,
    business_minutes_between,
    parse_calendar,
)
from threadline.service.conversations import PENDING
from threadline.storage import Database
from threadline.storage.models import Conversation, SlaPolicy

# A policy removed since (or a calendar saved before its check existed) counts every minute, as the
# service metrics do.
ALWAYS_OPEN = parse_calendar({})


def _calendar(session: Session, policy_id: int | None) -> BusinessCalendar:
    if policy_id is None:
        return ALWAYS_OPEN
    calendar = session.scalar(select(SlaPolicy.calendar).where(SlaPolicy.id == policy_id))
    if calendar is None:
        return ALWAYS_OPEN
    try:
        return parse_calendar(calendar)
    except Invalid:
        return ALWAYS_OPEN


def pause_clock(conversation: Conversation, now: datetime) -> None:
    """The conversation went pending at `now`: its resolution clock stops until it leaves pending."""
    if conversation.sla_paused_at is None:
        conversation.sla_paused_at = now


def resume_clock(session: Session, conversation: Conversation, now: datetime) -> int:
    """The conversation left pending at `now`: its resolution due time moves by the business minutes
    it was paused; answers those minutes (0 when it was not paused, or paused after the due time)."""
    began = conversation.sla_paused_at
    if began is None:
        return 0
    conversation.sla_paused_at = None
    due = conversation.resolution_due
    if due is None or began >= due:
        return 0
    calendar = _calendar(session, conversation.sla_policy_id)
    # Whole minutes, as targets are: a pause's stray seconds do not move a due time.
    paused = int(business_minutes_between(began, now, calendar))
    if paused <= 0:
        return 0
    conversation.resolution_due = add_business_minutes(due, paused, calendar)
    conversation.sla_paused_minutes = (conversation.sla_paused_minutes or 0) + paused
    return paused


def status_changed(
    session: Session, conversation: Conversation, before: str, after: str, now: datetime
) -> None:
    """Keep the pause right when the status moves from `before` to `after` (call it before or after
    setting `status`, in the transaction that changes it)."""
    if after == PENDING and before != PENDING:
        pause_clock(conversation, now)
    elif before == PENDING and after != PENDING:
        resume_clock(session, conversation, now)


def keep_pauses(db: Database) -> int:
    """For the minute job: a pending conversation whose pause was not stamped (set pending before
    pauses existed, or by a path that did not call `status_changed`) pauses from its last change, and
    one that left pending without resuming resumes at its last change. Answers how many it fixed."""
    fixed = 0
    with db.write() as session:
        rows = session.scalars(
            select(Conversation)
            .where(
                or_(
                    and_(Conversation.status == PENDING, Conversation.sla_paused_at.is_(None)),
                    and_(Conversation.status != PENDING, Conversation.sla_paused_at.is_not(None)),
                )
            )
            .with_for_update()
        )
        for row in rows:
            if row.status == PENDING:
                pause_clock(row, row.updated_at)
            else:
                resume_clock(session, row, row.updated_at)
            fixed += 1
    return fixed
