"""Running due steps: the `journeys.run` job claims due enrollments in batches and moves each along.

Claiming: one short transaction selects due enrollments (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
workers take different ones without waiting; SQLite has one writer anyway) and moves their
`next_run_at` a LEASE ahead. A worker that dies holding them leaves them due again when the lease ends.

Exactly once (docs/journeys.md): a step's step-log row, unique per (enrollment, step), is written in the
same transaction as the enrollment's move to its next step. An email step writes both inside
`send_message`'s own transaction (`on_stored`), with the outbound message's id: the message, the log
and the move commit together or not at all, so a re-run after any crash either finds the step done or
finds nothing sent. Other actions go through the write path under a messageId naming the step, so a
re-run of an action whose step did not commit is a duplicate dropped there.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Invalid, NotFound
from threadline.journeys.actions import perform
from threadline.journeys.anniversaries import enrol_on_dates
from threadline.journeys.conditions import holds
from threadline.journeys.definitions import ACTIVE, END, MAX_STEPS, MESSAGES, duration_of
from threadline.journeys.enrolment import enrol_from_events, enrol_scheduled
from threadline.messaging import MessageView, send_message
from threadline.storage import Database
from threadline.storage.models import Event, Journey, JourneyEnrollment, JourneyStepLog, Profile

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
POLL = timedelta(minutes=15)  # how often a wait for an event looks again before its timeout
COMPLETED, EXITED, FAILED = "completed", "exited", "failed"


def run_journeys(db: Database, settings: Settings, *, now: datetime, batch_size: int = 100) -> dict[str, int]:
    """Enrol from new events, the day's schedules and date anniversaries, then run every due step; counts,
    no personal data. (Trait changes enrol as they are written: trait_changes.py.)"""
    enrolled = enrol_from_events(db, now=now) + enrol_scheduled(db, now=now)
    enrolled += enrol_on_dates(db, settings, now=now)
    steps = 0
    for _ in range(10_000):  # bounded: each round moves its enrollments past `now` or ends them
        claimed = claim_due(db, now=now, size=batch_size)
        if not claimed:
            break
        for enrollment_id in claimed:
            steps += advance(db, settings, enrollment_id, now=now)
    return {"enrolled": enrolled, "steps": steps}


def claim_due(db: Database, *, now: datetime, size: int) -> list[int]:
    with db.write() as session:
        query = (
            select(JourneyEnrollment.id)
            .join(Journey, Journey.id == JourneyEnrollment.journey_id)
            .where(
                JourneyEnrollment.status == ACTIVE,
                JourneyEnrollment.next_run_at <= now,
                Journey.status == ACTIVE,
            )
            .order_by(JourneyEnrollment.next_run_at, JourneyEnrollment.id)
            .limit(size)
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(of=JourneyEnrollment, skip_locked=True)
        ids = list(session.scalars(query))
        if ids:
            session.execute(
                update(JourneyEnrollment).where(JourneyEnrollment.id.in_(ids)).values(next_run_at=now + LEASE)
            )
        return ids


def _target(steps: list[dict[str, Any]], index: int, jump: Any) -> int:
    """The index a step moves to: its `next` (or the given jump), else the following step; past the
    last step (or END) ends the journey."""
    if jump == END:
        return len(steps)
    if isinstance(jump, str):
        return next(i for i, step in enumerate(steps) if step["key"] == jump)
    return index + 1


def record_step(
    session: Session,
    enrollment_id: int,
    steps: list[dict[str, Any]],
    index: int,
    *,
    outcome: str,
    target: int,
    now: datetime,
    message_id: int | None = None,
) -> None:
    """The step's log row and the enrollment's move, in the caller's transaction: once per step (the log's
    unique key refuses a second)."""
    step = steps[index]
    session.add(
        JourneyStepLog(
            enrollment_id=enrollment_id,
            step_key=step["key"],
            action=step["type"],
            outcome=outcome[:40],
            outbound_message_id=message_id,
            at=now,
        )
    )
    values: dict[str, Any] = {"step_index": target, "step_started_at": now, "updated_at": now}
    if target >= len(steps):
        values.update(status=COMPLETED, step_key=None, next_run_at=None)
    else:
        values.update(step_key=steps[target]["key"], next_run_at=now)
    session.flush()  # the unique step log first: a second worker's attempt fails here
    session.execute(update(JourneyEnrollment).where(JourneyEnrollment.id == enrollment_id).values(**values))


def _finish(db: Database, enrollment_id: int, status: str, outcome: str, now: datetime) -> None:
    with db.write() as session:
        session.execute(
            update(JourneyEnrollment)
            .where(JourneyEnrollment.id == enrollment_id, JourneyEnrollment.status == ACTIVE)
            .values(status=status, outcome=outcome, next_run_at=None, updated_at=now)
        )


def _last_event_at(
    session: Session, profile_id: str, name: str, after: datetime | None = None
) -> datetime | None:
    ids = [profile_id, *session.scalars(select(Profile.id).where(Profile.merged_into == profile_id))]
    query = select(func.max(Event.timestamp)).where(Event.profile_id.in_(ids), Event.name == name)
    if after is not None:
        query = query.where(Event.timestamp >= after)
    return session.scalar(query)


def _split(enrollment_id: int, step: dict[str, Any]) -> Any:
    """A path by weight, the same on every run for this enrollment (a re-run must not change its mind)."""
    paths = step["paths"]
    total = sum(max(int(p.get("weight", 1)), 0) for p in paths) or 1
    digest = hashlib.sha256(f"{enrollment_id}:{step['key']}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for path in paths:
        point -= max(int(path.get("weight", 1)), 0)
        if point < 0:
            return path.get("goto")
    return paths[-1].get("goto")


def advance(db: Database, settings: Settings, enrollment_id: int, *, now: datetime) -> int:
    """Run the enrollment's due steps until one waits or the journey ends; answers steps done."""
    done = 0
    for _ in range(MAX_STEPS + 1):
        with db.read() as session:
            enrollment = session.get(JourneyEnrollment, enrollment_id)
            if enrollment is None or enrollment.status != ACTIVE:
                return done
            journey = session.get(Journey, enrollment.journey_id)
            assert journey is not None
            if journey.status != ACTIVE:
                return done
            steps, index = list(journey.steps), enrollment.step_index
            profile_id, context = enrollment.profile_id, dict(enrollment.context or {})
            since = enrollment.step_started_at
            goal = (journey.exit_goal or {}).get("event")
            converted = goal is not None and _last_event_at(session, profile_id, goal, enrollment.entered_at)
            profile = session.get(Profile, profile_id)
            traits = dict(profile.traits or {}) if profile is not None else {}
            journey_info = {"id": journey.id, "name": journey.name, "purpose": journey.purpose}
        if converted:
            _finish(db, enrollment_id, EXITED, "converted", now)
            return done
        if profile is None or profile.merged_into is not None:
            _finish(db, enrollment_id, EXITED, "gone", now)  # erased, or merged into a customer of its own
            return done
        if index >= len(steps):
            _finish(db, enrollment_id, COMPLETED, "completed", now)
            return done
        step = steps[index]
        try:
            moved = _run_step(
                db,
                settings,
                journey_info,
                enrollment_id,
                profile_id,
                steps,
                index,
                since,
                context,
                traits,
                now,
            )
        except IntegrityError:
            return done  # another worker did this step meanwhile (its lease ran out under us)
        except (Invalid, NotFound) as error:
            # No address, a template this customer cannot fill: visible as a failed enrollment.
            log.info(
                "journey %s enrollment %s step %s failed: %s",
                journey_info["id"],
                enrollment_id,
                step["key"],
                type(error).__name__,
            )
            _finish(db, enrollment_id, FAILED, "error", now)
            return done
        if not moved:
            return done
        done += 1
    return done


def _run_step(
    db: Database,
    settings: Settings,
    journey: dict[str, Any],
    enrollment_id: int,
    profile_id: str,
    steps: list[dict[str, Any]],
    index: int,
    since: datetime,
    context: dict[str, Any],
    traits: dict[str, Any],
    now: datetime,
) -> bool:
    """Do step `index`; False when it waits (its next run is set)."""
    step, kind = steps[index], steps[index]["type"]

    def wait_until(moment: datetime) -> bool:
        with db.write() as session:
            session.execute(
                update(JourneyEnrollment)
                .where(JourneyEnrollment.id == enrollment_id)
                .values(next_run_at=moment)
            )
        return False

    def move(outcome: str, jump: Any = None) -> bool:
        with db.write() as session:
            target = _target(steps, index, jump if jump is not None else step.get("next"))
            record_step(session, enrollment_id, steps, index, outcome=outcome, target=target, now=now)
        return True

    if kind == "wait":
        until = since + duration_of(step, "step")
        return move("waited") if now >= until else wait_until(until)
    if kind == "wait_for_event":
        with db.read() as session:
            seen = _last_event_at(session, profile_id, step["event"], since)
        deadline = since + duration_of(step, "step", "timeout_")
        if seen is not None:
            return move("event")
        if now >= deadline:
            return move("timed_out", step.get("on_timeout", END))
        return wait_until(min(deadline, now + POLL))
    if kind == "branch":
        with db.read() as session:
            yes = holds(
                step["condition"],
                traits=traits,
                context=context,
                last_event_at=lambda name: _last_event_at(session, profile_id, name),
                now=now,
            )
        return move("yes") if yes else move("no", step.get("else", END))
    if kind == "split":
        goto = _split(enrollment_id, step)
        return move(f"path:{goto}", goto)
    if kind in MESSAGES:  # email, SMS, WhatsApp, WeChat, social: the same transaction as the step log
        target = _target(steps, index, step.get("next"))

        def stored(session: Session, message: MessageView) -> None:
            record_step(
                session,
                enrollment_id,
                steps,
                index,
                outcome=message.status,
                target=target,
                now=now,
                message_id=message.id,
            )

        send_message(
            db,
            settings,
            Viewer.system(),
            profile_id,
            purpose=journey["purpose"],
            subject=str(step.get("subject") or ""),
            body_text=step["body_text"],
            body_html=step.get("body_html"),
            channel=step.get("channel", "email"),
            origin="journey",
            variables={"event": context.get("event", {}), "journey": {"name": journey["name"]}},
            on_stored=stored,
            now=now,
        )
        return True
    outcome = perform(
        db, settings, journey=journey, enrollment_id=enrollment_id, profile_id=profile_id, step=step, now=now
    )
    return move(outcome)
