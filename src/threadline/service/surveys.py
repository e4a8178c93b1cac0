"""Surveys: CSAT (1-5) after a conversation is resolved, CES (1-7) with it when the workspace asks for
it, NPS (0-10) on a schedule; answered on a public page `/survey/{token}`.

The link's token is the whole credential (no login: the customer answers from their mailbox), so it is
random and only its SHA-256 is stored: a copy of the database cannot answer for anyone, and a forged
token finds nothing. Answering again changes the answer. Each first answer is a "Survey Answered" event
(properties survey, score, comment) on the customer's timeline, which the insight dashboards count; a
changed answer is a "Survey Answer Changed" event, so no dashboard counts one survey twice.

Surveys go out by email through messaging (`send_message`, purpose service, origin service), which
checks consent like any message. Conversations on other channels get none yet: their outbound senders
come with the channels (docs/service.md, "Surveys").
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.orm import aliased

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Invalid, NotFound
from threadline.messaging import send_message
from threadline.profiles import resolve_profile_id
from threadline.service.customer_events import SURVEY_CHANGED_EVENT, SURVEY_EVENT, record_service_event
from threadline.service.survey_texts import SCALES, survey_email
from threadline.service.weakest_link import queue_evaluation
from threadline.storage import Database
from threadline.storage.models import Conversation, Profile, SurveyResponse

log = logging.getLogger(__name__)

MAX_COMMENT = 2000
# The sweep sends a survey for conversations resolved this recently: a worker that was down an hour
# still sends them; one installed today does not survey last year's conversations.
SURVEY_WITHIN = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class SurveyView:
    id: int
    profile_id: str
    conversation_id: int | None
    kind: str
    channel: str
    sent_at: datetime
    answered_at: datetime | None
    score: int | None
    comment: str | None

    @property
    def scale(self) -> range:
        low, high = SCALES[self.kind]
        return range(low, high + 1)

    @classmethod
    def of(cls, row: SurveyResponse) -> SurveyView:
        return cls(
            row.id,
            row.profile_id,
            row.conversation_id,
            row.kind,
            row.channel,
            row.sent_at,
            row.answered_at,
            row.score,
            row.comment,
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def survey_url(settings: Settings, token: str) -> str:
    return f"{settings.public_url.rstrip('/')}/survey/{token}"


def _send(
    db: Database,
    settings: Settings,
    *,
    profile_id: str,
    kinds: tuple[str, ...],
    conversation_id: int | None,
    language: str | None,
    now: datetime,
) -> list[int]:
    """Store one survey row per kind and email the customer their links; rows are removed again when
    the customer has no email address (nothing could reach them). A consent refusal keeps them: the
    survey was asked for, and the delivery log says why it did not go."""
    tokens = {kind: secrets.token_urlsafe(32) for kind in kinds}
    with db.write() as session:
        rows = [
            SurveyResponse(
                profile_id=profile_id,
                conversation_id=conversation_id,
                kind=kind,
                channel="email",
                token_hash=token_hash(token),
                sent_at=now,
            )
            for kind, token in tokens.items()
        ]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
    subject, text, html = survey_email({k: survey_url(settings, t) for k, t in tokens.items()}, language)
    try:
        send_message(
            db,
            settings,
            Viewer.system(),
            profile_id,
            purpose="service",
            subject=subject,
            body_text=text,
            body_html=html,
            channel="email",
            origin="service",
            now=now,
        )
    except (Invalid, NotFound) as problem:
        log.info("survey not sent to a customer: %s", problem.message.split(":")[0])
        with db.write() as session:
            session.execute(delete(SurveyResponse).where(SurveyResponse.id.in_(ids)))
        return []
    return ids


def send_resolution_survey(
    db: Database, settings: Settings, conversation_id: int, *, now: datetime
) -> list[int]:
    """The CSAT survey (and CES when THREADLINE_SURVEY_CES is on) for a resolved conversation, once
    per resolution; answers the survey ids sent (none when it is not resolved, was surveyed already, or
    is on a channel surveys cannot use yet). The conversations module may call it when an agent
    resolves; the sweep (`send_due_surveys`) catches every one it did not."""
    with db.read() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.status not in ("resolved", "closed"):
            return []
        if conversation.channel != "email":
            return []
        resolved_at = conversation.resolved_at or conversation.closed_at or now
        surveyed = session.scalar(
            select(SurveyResponse.id).where(
                SurveyResponse.conversation_id == conversation_id,
                SurveyResponse.kind == "csat",
                SurveyResponse.sent_at >= resolved_at,
            )
        )
        if surveyed is not None:
            return []
        profile_id, language = conversation.profile_id, conversation.language
    kinds = ("csat", "ces") if settings.survey_ces else ("csat",)
    return _send(
        db,
        settings,
        profile_id=profile_id,
        kinds=kinds,
        conversation_id=conversation_id,
        language=language,
        now=now,
    )


def send_due_surveys(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """The sweep ("service.surveys"): a survey for each email conversation resolved within a day that
    has none since it was resolved."""
    surveyed = (
        exists()
        .where(
            SurveyResponse.conversation_id == Conversation.id,
            SurveyResponse.kind == "csat",
            SurveyResponse.sent_at >= Conversation.resolved_at,
        )
        .correlate(Conversation)
    )
    with db.read() as session:
        due = list(
            session.scalars(
                select(Conversation.id).where(
                    Conversation.status.in_(("resolved", "closed")),
                    Conversation.channel == "email",
                    Conversation.resolved_at >= now - SURVEY_WITHIN,
                    ~surveyed,
                )
            )
        )
    sent = sum(1 for conversation_id in due if send_resolution_survey(db, settings, conversation_id, now=now))
    return {"due": len(due), "sent": sent}


def send_nps_surveys(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """The NPS schedule ("service.nps"): customers who had a service conversation in the last
    THREADLINE_NPS_EVERY_DAYS days and were not asked in that time get the NPS question by email.

    Only customers in contact with the service desk: a survey under the "service" purpose follows a
    service contact; asking every active customer is a marketing message, for journeys and their
    consent."""
    days = settings.nps_every_days
    if days <= 0:
        return {"sent": 0}
    since = now - timedelta(days=days)
    asked = aliased(SurveyResponse)
    with db.read() as session:
        customers = list(
            session.scalars(
                select(Conversation.profile_id)
                .join(Profile, Profile.id == Conversation.profile_id)
                .where(
                    Conversation.created_at >= since,
                    Profile.merged_into.is_(None),
                    ~exists().where(
                        and_(
                            asked.profile_id == Conversation.profile_id,
                            asked.kind == "nps",
                            asked.sent_at >= since,
                        )
                    ),
                )
                .distinct()
            )
        )
    sent = 0
    for profile_id in sorted(customers):
        if _send(
            db, settings, profile_id=profile_id, kinds=("nps",), conversation_id=None, language=None, now=now
        ):
            sent += 1
    return {"customers": len(customers), "sent": sent}


def read_survey(db: Database, token: str) -> SurveyView:
    """The survey a link opens; NotFound for a token no survey has (forged, or erased with the person)."""
    with db.read() as session:
        row = session.scalar(select(SurveyResponse).where(SurveyResponse.token_hash == token_hash(token)))
        if row is None:
            raise NotFound("this survey link is not valid")
        return SurveyView.of(row)


def answer_survey(
    db: Database, settings: Settings, token: str, *, score: object, comment: str | None, now: datetime
) -> SurveyView:
    """Record (or change) the answer to the survey the link names; Invalid naming the field for a
    score off the scale or a comment too long; NotFound for a forged token."""
    survey = read_survey(db, token)
    low, high = SCALES[survey.kind]
    try:
        number = int(str(score).strip())
    except ValueError:
        raise Invalid(f"score: choose a score from {low} to {high}", details={"field": "score"}) from None
    if not low <= number <= high:
        raise Invalid(f"score: choose a score from {low} to {high}", details={"field": "score"})
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_COMMENT:
        raise Invalid(f"comment: up to {MAX_COMMENT} characters", details={"field": "comment"})
    with db.write() as session:
        row = session.get(SurveyResponse, survey.id)
        if row is None:  # erased between the read and now
            raise NotFound("this survey link is not valid")
        first = row.answered_at is None
        previous = row.score
        row.score, row.comment, row.answered_at = number, text, now
        session.flush()
        answered = SurveyView.of(row)
    properties: dict[str, object] = {"survey": survey.kind, "score": number, "survey_id": survey.id}
    if text:
        properties["comment"] = text
    if survey.conversation_id is not None:
        properties["conversation_id"] = survey.conversation_id
    if not first:
        properties["previous_score"] = previous
    record_service_event(
        db,
        settings,
        profile_id=survey.profile_id,
        name=SURVEY_EVENT if first else SURVEY_CHANGED_EVENT,
        properties=properties,
        message_id=f"survey-{survey.id}-answered"
        if first
        else f"survey-{survey.id}-changed-{now:%Y%m%dT%H%M%S%f}",
        channel=survey.channel,
        at=now,
        now=now,
    )
    queue_evaluation(db, survey.profile_id, now=now)
    return answered


def profile_surveys(
    db: Database, profile_id: str, *, viewer: Viewer, limit: int = 10
) -> tuple[str, list[SurveyView]]:
    """The live profile's ID and its latest answered surveys (also those answered under an ID since
    merged into it), newest first; ProfileNotFound outside the viewer's scope."""
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        ids = [live, *session.scalars(select(Profile.id).where(Profile.merged_into == live))]
        rows = session.scalars(
            select(SurveyResponse)
            .where(SurveyResponse.profile_id.in_(ids), SurveyResponse.answered_at.is_not(None))
            .order_by(SurveyResponse.answered_at.desc(), SurveyResponse.id.desc())
            .limit(limit)
        )
        return live, [SurveyView.of(row) for row in rows]
