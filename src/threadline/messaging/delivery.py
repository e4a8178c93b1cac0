"""Sending a queued message: the worker's job (kind `messaging.send`), at most once.

The job can run more than once (a retry, a worker that died; docs/worker.md). The row's status makes a
re-run safe:

1. One transaction checks consent again (it may have been withdrawn since the message was queued, or
   processing restricted), and moves the row from `queued` to `sending`, counting the attempt and
   fixing its Message-ID. A row in any other status is not sent again.
2. The relay conversation (SMTP for email, the provider webhook's POST for the other channels,
   providers.py) runs outside any transaction.
3. Another transaction records the answer: `sent`; `queued` again when the relay did not take it and
   may later (the job is retried with backoff); `failed` when it refused for good, or after the last
   attempt.

Step 1 also paces promotional messages: one due inside the customer's quiet hours (a retry that slipped
into the night, a time zone trait changed) is held again with a new job for the end of them
(quiet_hours.py), and one that would pass a frequency cap now is refused (frequency_caps.py). It
decides whether an email is tracked (tracking.py) and adds the open image and redirects if so.

A worker that dies during step 2 leaves the row `sending`: the relay may or may not have taken the
message. The re-run marks it `failed` ("may have gone out") instead of sending it again: a customer never
gets the same email twice, at the price of a rare message staff must check and send again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select, update

from threadline.clock import Clock
from threadline.config import Settings
from threadline.jobs import enqueue
from threadline.messaging.frequency_caps import cap_reached
from threadline.messaging.mail import (
    Deferred,
    Email,
    RelayError,
    build_email,
    hand_over,
    html_from_text,
    new_message_id,
)
from threadline.messaging.outbox import (
    FAILED,
    FINAL,
    JOB_KIND,
    QUEUED,
    REFUSED,
    SENDING,
    SENT,
    readable_traits,
    sending_disabled,
)
from threadline.messaging.providers import ProviderMessage, post_message
from threadline.messaging.quiet_hours import Hold, quiet_hold
from threadline.messaging.timeline import record_outcome
from threadline.messaging.tracking import may_track, tracking_key, with_tracking
from threadline.privacy import check_send, live_profile_id, unsubscribe_url
from threadline.storage import Database
from threadline.storage.models import OutboundMessage, Profile

INTERRUPTED = (
    "the sending was interrupted while the relay had the message: it may have gone out, so it is not "
    "sent again (check with the customer, or send it anew)"
)


HELD = "held"


class DeliveryDeferred(Exception):
    """Raised to the worker when the relay did not take the message and may later: the job is retried
    with backoff. Its text is the relay's answer (kept in the job's last_error, for admins)."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    profile_id: str
    channel: str
    purpose: str
    subject: str
    origin: str
    status: str
    reason: str | None


def _snapshot(row: OutboundMessage) -> _Outcome:
    return _Outcome(row.profile_id, row.channel, row.purpose, row.subject, row.origin, row.status, row.reason)


def _finish(
    db: Database, message_id: int, attempt: int, status: str, reason: str | None, now: datetime
) -> bool:
    """Record the relay's answer for this attempt. `sent` applies even if a takeover marked the row
    failed meanwhile (it did go out); going back to `queued` only from this attempt's `sending`."""
    where = [OutboundMessage.id == message_id, OutboundMessage.attempts == attempt]
    if status != SENT:
        where.append(OutboundMessage.status == SENDING)
    values = {"status": status, "reason": reason, "updated_at": now}
    if status == SENT:
        values["sent_at"] = now
    with db.write() as session:
        result = session.execute(update(OutboundMessage).where(*where).values(**values))
        return int(result.rowcount or 0) == 1  # type: ignore[attr-defined]


def deliver_message(db: Database, settings: Settings, message_id: int, *, clock: Clock) -> str:
    """Send one queued message if consent and the frequency caps still allow it and the customer's
    quiet hours do not hold it; answers what became of it (sent, refused, failed, queued, disabled,
    held (a new job waits for the end of the quiet hours), or missing when erased with its customer)."""
    now = clock()
    email: Email | ProviderMessage | None = None
    attempt = 0
    hold: Hold | None = None
    with db.write() as session:
        row = session.scalar(
            select(OutboundMessage).where(OutboundMessage.id == message_id).with_for_update()
        )
        if row is None:
            return "missing"
        if row.status == SENDING:
            row.status, row.reason, row.updated_at = FAILED, INTERRUPTED, now
        elif row.status == QUEUED and (disabled := sending_disabled(settings, row.channel)):
            row.reason, row.updated_at = disabled, now
            return "disabled"
        elif row.status == QUEUED and row.send_after is not None and now < row.send_after:
            hold = Hold(row.send_after, row.reason or "held")  # run early (by hand): due again then
        elif row.status == QUEUED:
            conn = session.connection()
            live = live_profile_id(conn, row.profile_id)
            decision = check_send(session, row.profile_id, row.channel, row.purpose)
            capped = cap_reached(
                session, settings, live, row.channel, row.purpose, now, sending_message_id=row.id
            )
            profile = session.get(Profile, live)
            traits = readable_traits(settings, profile.traits or {}) if profile is not None else {}
            if not decision.allowed:
                row.status, row.reason, row.updated_at = REFUSED, decision.explanation, now
            elif capped:
                row.status, row.reason, row.updated_at = REFUSED, capped, now
            elif hold := quiet_hold(settings, row.purpose, traits, now):
                row.send_after, row.reason, row.updated_at = hold.until, hold.reason, now
            elif row.channel != "email":
                # The same guard as email's: `sending` before the POST, so a re-run never posts twice.
                row.message_id_header = row.message_id_header or f"threadline-{row.id}"
                row.status, row.reason, row.updated_at = SENDING, None, now
                row.attempts += 1
                attempt = row.attempts
                assert row.to_address is not None
                email = ProviderMessage(
                    row.channel, row.to_address, row.body_text, row.message_id_header, row.purpose
                )
            else:
                link = unsubscribe_url(conn, settings, settings.public_url, live, row.channel, row.purpose)
                row.message_id_header = row.message_id_header or new_message_id(settings)
                row.status, row.reason, row.updated_at = SENDING, None, now
                row.attempts += 1
                attempt = row.attempts
                assert row.to_address is not None
                body_html = row.body_html
                row.tracked = may_track(session, settings, live)
                if row.tracked:
                    body_html = with_tracking(
                        body_html or html_from_text(row.body_text),
                        settings,
                        tracking_key(conn, settings),
                        row.id,
                    )
                email = Email(
                    row.to_address,
                    row.subject,
                    row.body_text,
                    body_html,
                    row.purpose,
                    row.message_id_header,
                    link,
                    dict(row.headers or {}),
                )
        outcome = _snapshot(row)
    if hold is not None:
        # A job of its own for the end of the quiet hours; the key, unique per time, lets this one
        # be queued although the message's first job (same message, earlier key) exists.
        enqueue(
            db,
            JOB_KIND,
            {"message_id": message_id},
            now=now,
            run_at=hold.until,
            dedupe_key=f"{JOB_KIND}:{message_id}:{hold.until.isoformat()}",
            max_attempts=settings.job_max_attempts,
        )
        return HELD
    if email is not None:
        outcome = _send(db, settings, message_id, attempt, email, outcome, now)
    if outcome.status in FINAL:
        # Again on a re-run: the event's messageId makes a second one a duplicate the write path drops.
        record_outcome(
            db,
            settings,
            message_id=message_id,
            profile_id=outcome.profile_id,
            outcome=outcome.status,
            channel=outcome.channel,
            purpose=outcome.purpose,
            subject=outcome.subject,
            origin=outcome.origin,
            reason=outcome.reason,
            now=now,
        )
    if outcome.status == QUEUED:
        raise DeliveryDeferred(outcome.reason or "the relay deferred the message")
    return outcome.status


def _send(
    db: Database,
    settings: Settings,
    message_id: int,
    attempt: int,
    email: Email | ProviderMessage,
    outcome: _Outcome,
    now: datetime,
) -> _Outcome:
    reason: str | None
    try:
        if isinstance(email, ProviderMessage):
            post_message(settings, email)
        else:
            hand_over(settings, build_email(settings, email, now=now))
    except Deferred as error:
        last = attempt >= settings.job_max_attempts
        status = FAILED if last else QUEUED
        reason = f"{error}; gave up after {attempt} attempts" if last else f"{error}; will try again"
    except RelayError as error:  # Rejected, Uncertain: not tried again
        status, reason = FAILED, str(error)
    else:
        status, reason = SENT, None
    if not _finish(db, message_id, attempt, status, reason, now):
        return replace(outcome, status="superseded", reason=None)  # erased, or taken over meanwhile
    return replace(outcome, status=status, reason=reason)
