"""The weakest link: a customer with two bad experiences within 90 days is at risk, and their owner
gets a recovery task.

Bad experiences (thresholds in workspace setting "service.weakest_link"): a CSAT answer of 2 or less,
an NPS detractor (0-6), an SLA breach (one per conversation: a late first answer and a late resolution
of the same request are one bad experience), and a message scored negative by the sentiment job
(event_sentiments; survey comments left out, their score already counts).

The flag is a `profile_scores` row named "at_risk" (value: the number of experiences; details: the
experiences and `recovery_tasks`), so segments and lists read it like any score. It goes when the
experiences age out of the window. Tasks do not exist yet (issue 4): a recovery task is a "Recovery
Task Created" event on the timeline naming the owner, listed in the flag's details; the tasks of
issue 4 will take it over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Invalid, NotFound
from threadline.jobs import enqueue
from threadline.privacy import live_profile_id
from threadline.profiles import resolve_profile_id
from threadline.service.customer_events import (
    BREACH_EVENT,
    RECOVERY_TASK_EVENT,
    SURVEY_EVENT,
    record_service_event,
)
from threadline.storage import Database, put_setting
from threadline.storage.models import (
    Event,
    EventSentiment,
    Profile,
    ProfileScore,
    SurveyResponse,
    WorkspaceSetting,
)

SETTING_KEY = "service.weakest_link"
AT_RISK = "at_risk"
MODEL = "weakest_link v1"
JOB_KIND = "service.weakest-link"
DEFAULTS: dict[str, Any] = {
    "window_days": 90,
    "experiences": 2,
    "csat_max": 2,
    "nps_max": 6,
    "sla_breach": True,
    # A message counts when the sentiment job labelled it negative with a score at or below this (-1..0).
    "sentiment_max": 0.0,
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    window_days: int
    experiences: int
    csat_max: int
    nps_max: int
    sla_breach: bool
    sentiment_max: float

    def public(self) -> dict[str, Any]:
        return {
            "window_days": self.window_days,
            "experiences": self.experiences,
            "csat_max": self.csat_max,
            "nps_max": self.nps_max,
            "sla_breach": self.sla_breach,
            "sentiment_max": self.sentiment_max,
        }


def _number(values: dict[str, Any], key: str, low: float, high: float, kind: type) -> Any:
    try:
        number = kind(values[key])
    except (TypeError, ValueError):
        raise Invalid(f"{key}: must be a number from {low:g} to {high:g}", details={"field": key}) from None
    if not low <= number <= high:
        raise Invalid(f"{key}: must be from {low:g} to {high:g}", details={"field": key})
    return number


def checked_thresholds(values: dict[str, Any]) -> Thresholds:
    merged = {**DEFAULTS, **{k: v for k, v in values.items() if k in DEFAULTS}}
    return Thresholds(
        window_days=_number(merged, "window_days", 1, 3650, int),
        experiences=_number(merged, "experiences", 1, 100, int),
        csat_max=_number(merged, "csat_max", 0, 5, int),
        nps_max=_number(merged, "nps_max", -1, 10, int),
        sla_breach=bool(merged["sla_breach"]),
        sentiment_max=_number(merged, "sentiment_max", -1, 0, float),
    )


def get_thresholds(db: Database) -> Thresholds:
    with db.read() as session:
        row = session.get(WorkspaceSetting, SETTING_KEY)
        return checked_thresholds(dict(row.value) if row is not None and isinstance(row.value, dict) else {})


def set_thresholds(db: Database, values: dict[str, Any], *, user_id: int | None, now: datetime) -> Thresholds:
    thresholds = checked_thresholds(values)
    with db.write() as session:
        put_setting(session.connection(), SETTING_KEY, thresholds.public(), user_id=user_id, now=now)
    return thresholds


def queue_evaluation(db: Database, profile_id: str, *, now: datetime) -> None:
    """Evaluate one customer soon (after a survey answer or a breach), in the worker."""
    enqueue(
        db,
        JOB_KIND,
        {"profile_id": profile_id},
        now=now,
        dedupe_key=f"{JOB_KIND}:{profile_id}:{now:%Y-%m-%dT%H:%M:%S}",
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


def bad_experiences(session: Any, live: str, thresholds: Thresholds, now: datetime) -> list[dict[str, Any]]:
    """The customer's bad experiences within the window, oldest first."""
    since = now - timedelta(days=thresholds.window_days)
    ids = [live, *session.scalars(select(Profile.id).where(Profile.merged_into == live))]
    found: list[dict[str, Any]] = []
    surveys = session.scalars(
        select(SurveyResponse).where(
            SurveyResponse.profile_id.in_(ids),
            SurveyResponse.answered_at >= since,
            SurveyResponse.answered_at <= now,
            or_(
                and_(SurveyResponse.kind == "csat", SurveyResponse.score <= thresholds.csat_max),
                and_(SurveyResponse.kind == "nps", SurveyResponse.score <= thresholds.nps_max),
            ),
        )
    )
    for survey in surveys:
        found.append(
            {
                "kind": "csat" if survey.kind == "csat" else "nps_detractor",
                "at": _iso(survey.answered_at),
                "score": survey.score,
                "survey_id": survey.id,
                "conversation_id": survey.conversation_id,
            }
        )
    if thresholds.sla_breach:
        breached: dict[Any, dict[str, Any]] = {}
        events = session.scalars(
            select(Event)
            .where(
                Event.profile_id == live,
                Event.name == BREACH_EVENT,
                Event.timestamp >= since,
                Event.timestamp <= now,
            )
            .order_by(Event.timestamp)
        )
        for event in events:
            conversation = (event.properties or {}).get("conversation_id")
            breached.setdefault(
                conversation,
                {
                    "kind": "sla_breach",
                    "at": _iso(event.timestamp),
                    "conversation_id": conversation,
                    "event_id": event.id,
                },
            )
        found += breached.values()
    negative = session.execute(
        select(Event.id, Event.timestamp, EventSentiment.score)
        .join(EventSentiment, EventSentiment.event_id == Event.id)
        .where(
            Event.profile_id == live,
            Event.timestamp >= since,
            Event.timestamp <= now,
            or_(Event.name.is_(None), Event.name != SURVEY_EVENT),
            EventSentiment.label == "negative",
            EventSentiment.score <= thresholds.sentiment_max,
        )
    )
    for event_id, timestamp, score in negative:
        found.append(
            {
                "kind": "negative_message",
                "at": _iso(timestamp),
                "event_id": event_id,
                "score": round(score, 3),
            }
        )
    return sorted(found, key=lambda e: (e["at"], e["kind"]))


def evaluate_customer(db: Database, settings: Settings, profile_id: str, *, now: datetime) -> bool:
    """Flag (or unflag) one customer; a newly flagged one gets a recovery task for their owner.
    Answers whether the customer is at risk. Safe to run again: the task's id comes from the
    experiences that raised the flag, so recording it twice is a duplicate the write path drops."""
    thresholds = get_thresholds(db)
    with db.read() as session:
        try:
            live = live_profile_id(session.connection(), profile_id)
        except NotFound:
            live = None
        if live is None:
            experiences: list[dict[str, Any]] = []
            owner_id = None
            flag = None
        else:
            experiences = bad_experiences(session, live, thresholds, now)
            owner_id = session.scalar(select(Profile.owner_id).where(Profile.id == live))
            row = session.get(ProfileScore, (live, AT_RISK))
            flag = dict(row.details or {}) if row is not None else None
    if live != profile_id:  # a merged-away or erased customer keeps no flag of its own
        with db.write() as session:
            session.execute(
                delete(ProfileScore).where(
                    ProfileScore.profile_id == profile_id, ProfileScore.name == AT_RISK
                )
            )
    if live is None:
        return False
    at_risk = len(experiences) >= thresholds.experiences
    if not at_risk:
        if flag is not None:
            with db.write() as session:
                session.execute(
                    delete(ProfileScore).where(ProfileScore.profile_id == live, ProfileScore.name == AT_RISK)
                )
        return False
    tasks = list((flag or {}).get("recovery_tasks", []))
    if flag is None:
        first = experiences[-thresholds.experiences]
        task_id = f"recovery-{live}-{first['kind']}-{first['at']}"[:100]
        task: dict[str, Any] = {
            "id": task_id,
            "owner_id": owner_id,
            "created_at": _iso(now),
            "status": "open",
        }
        record_service_event(
            db,
            settings,
            profile_id=live,
            name=RECOVERY_TASK_EVENT,
            properties={"owner_id": owner_id, "experiences": len(experiences), "task_id": task_id},
            message_id=task_id,
            channel=None,
            at=now,
            now=now,
        )
        tasks.append(task)
    details = {"experiences": experiences, "window_days": thresholds.window_days, "recovery_tasks": tasks}
    with db.write() as session:
        row = session.get(ProfileScore, (live, AT_RISK))
        if row is None:
            session.add(
                ProfileScore(
                    profile_id=live,
                    name=AT_RISK,
                    value=float(len(experiences)),
                    details=details,
                    computed_at=now,
                    model=MODEL,
                )
            )
        else:
            row.value, row.details, row.computed_at, row.model = float(len(experiences)), details, now, MODEL
    return True


def evaluate_all(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """The daily job: every customer with a bad signal in the window, and every flagged one (so flags
    whose experiences aged out go)."""
    thresholds = get_thresholds(db)
    since = now - timedelta(days=thresholds.window_days)
    with db.read() as session:
        candidates = set(session.scalars(select(ProfileScore.profile_id).where(ProfileScore.name == AT_RISK)))
        candidates |= set(
            session.scalars(
                select(SurveyResponse.profile_id).where(
                    SurveyResponse.answered_at >= since,
                    or_(
                        and_(SurveyResponse.kind == "csat", SurveyResponse.score <= thresholds.csat_max),
                        and_(SurveyResponse.kind == "nps", SurveyResponse.score <= thresholds.nps_max),
                    ),
                )
            )
        )
        candidates |= set(
            session.scalars(
                select(Event.profile_id).where(Event.name == BREACH_EVENT, Event.timestamp >= since)
            )
        )
        candidates |= set(
            session.scalars(
                select(Event.profile_id)
                .join(EventSentiment, EventSentiment.event_id == Event.id)
                .where(Event.timestamp >= since, EventSentiment.label == "negative")
            )
        )
    flagged = sum(
        1 for profile_id in sorted(candidates) if evaluate_customer(db, settings, profile_id, now=now)
    )
    return {"customers": len(candidates), "at_risk": flagged}


@dataclass(frozen=True, slots=True)
class RiskFlag:
    profile_id: str
    experiences: list[dict[str, Any]]
    recovery_tasks: list[dict[str, Any]]
    computed_at: datetime


def at_risk_flag(db: Database, profile_id: str, *, viewer: Viewer) -> tuple[str, RiskFlag | None]:
    """The live profile's ID and its at-risk flag (None when not at risk); ProfileNotFound outside the
    viewer's scope."""
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        row = session.get(ProfileScore, (live, AT_RISK))
        if row is None:
            return live, None
        details = row.details or {}
        return live, RiskFlag(
            live,
            list(details.get("experiences", [])),
            list(details.get("recovery_tasks", [])),
            row.computed_at,
        )


def at_risk_among(db: Database, profile_ids: list[str]) -> set[str]:
    """Which of these customers are at risk, in one query (the customer list's badges). The caller
    lists only customers its viewer may see."""
    if not profile_ids:
        return set()
    with db.read() as session:
        return set(
            session.scalars(
                select(ProfileScore.profile_id).where(
                    ProfileScore.name == AT_RISK, ProfileScore.profile_id.in_(profile_ids)
                )
            )
        )
