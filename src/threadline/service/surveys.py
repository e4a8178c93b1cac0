"""Surveys: CSAT (1-5) after a conversation is resolved, CES (1-7) with it when the workspace asks for
it, NPS (0-10) on a schedule; answered on a public page `/survey/{token}`.

The link's token is the whole credential (no login: the customer answers from their mailbox), so it is
random and only its SHA-256 is stored: a copy of the database cannot answer for anyone, and a forged
token finds nothing. Answering again changes the answer. Each first answer is a "Survey Answered" event
(properties survey, score, comment) on the customer's timeline, which the insight dashboards count; a
changed answer is a "Survey Answer Changed" event, so no dashboard counts one survey twice.

Surveys go out on the conversation's channel through messaging (`send_message`, purpose service,
origin service), which checks consent like any message: an email with a link per score, or a short text
with a link per survey on SMS, WhatsApp, WeChat and social (a call's survey goes by SMS to the number).
A chat's survey is a line in the chat, as an agent's chat reply is (docs/service.md, "Surveys").
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.orm import aliased

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Invalid, NotFound
from threadline.messaging import send_message
from threadline.profiles import resolve_profile_id
from threadline.service.chat import CHAT, ChatLine, announce_chat_line
from threadline.service.conversations import OUT
from threadline.service.customer_events import SURVEY_CHANGED_EVENT, SURVEY_EVENT, record_service_event
from threadline.service.survey_texts import SCALES, survey_email, survey_text
from threadline.service.weakest_link import queue_evaluation
from threadline.storage import Database
from threadline.storage.models import Conversation, ConversationMessage, Profile, SurveyResponse

log = logging.getLogger(__name__)

MAX_COMMENT = 2000
# The sweep sends a survey for conversations resolved this recently: a worker that was down an hour
# still sends them; one installed today does not survey last year's conversations.
SURVEY_WITHIN = timedelta(days=1)
SURVEY_CHANNELS = {"phone": "sms"}  # conversation channel -> the survey's, where they differ


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


def survey_channel(conversation_channel: str) -> str:
    """The channel a conversation's survey goes out on: its own; a call is followed by a text message
    to the number (the usual post-call survey)."""
    return SURVEY_CHANNELS.get(conversation_channel, conversation_channel)


def _store(
    db: Database,
    *,
    profile_id: str,
    kinds: tuple[str, ...],
    conversation_id: int | None,
    channel: str,
    now: datetime,
) -> tuple[list[int], dict[str, str]]:
    """One survey row per kind; answers their ids and each kind's link token."""
    tokens = {kind: secrets.token_urlsafe(32) for kind in kinds}
    with db.write() as session:
        rows = [
            SurveyResponse(
                profile_id=profile_id,
                conversation_id=conversation_id,
                kind=kind,
                channel=channel,
                token_hash=token_hash(token),
                sent_at=now,
            )
            for kind, token in tokens.items()
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows], tokens


def _send(
    db: Database,
    settings: Settings,
    *,
    profile_id: str,
    kinds: tuple[str, ...],
    conversation_id: int | None,
    language: str | None,
    channel: str = "email",
    to_address: str | None = None,
    now: datetime,
) -> list[int]:
    """Store one survey row per kind and send the customer their links on `channel` (to `to_address`,
    the number or id they wrote from, when given); rows are removed again when nothing could reach
    them (no address for the channel). A consent refusal keeps them: the survey was asked for, and the
    delivery log says why it did not go."""
    ids, tokens = _store(
        db, profile_id=profile_id, kinds=kinds, conversation_id=conversation_id, channel=channel, now=now
    )
    links = {k: survey_url(settings, t) for k, t in tokens.items()}
    html: str | None = None
    if channel == "email":
        subject, text, html = survey_email(links, language)
    else:
        subject, text = survey_text(links, language)
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
            channel=channel,
            origin="service",
            to_address=to_address,
            now=now,
        )
    except (Invalid, NotFound) as problem:
        log.info("survey not sent to a customer: %s", problem.message.split(":")[0])
        with db.write() as session:
            session.execute(delete(SurveyResponse).where(SurveyResponse.id.in_(ids)))
        return []
    return ids


def _post_in_chat(
    db: Database,
    settings: Settings,
    *,
    profile_id: str,
    kinds: tuple[str, ...],
    conversation_id: int,
    session_id: str,
    language: str | None,
    now: datetime,
) -> list[int]:
    """The survey as a line in the chat the visitor opened, like an agent's chat reply (no relay, no
    consent to contact: it answers them where they wrote); marked automated, so the metrics do not
    count it as a reply."""
    ids, tokens = _store(
        db, profile_id=profile_id, kinds=kinds, conversation_id=conversation_id, channel=CHAT, now=now
    )
    _, text = survey_text({k: survey_url(settings, t) for k, t in tokens.items()}, language)
    with db.write() as session:
        entry = ConversationMessage(
            conversation_id=conversation_id, direction=OUT, body_text=text, automated=True, created_at=now
        )
        session.add(entry)
        session.flush()
        line = ChatLine(entry.id, OUT, text, now)
    announce_chat_line(
        db, settings, profile_id=profile_id, conversation_id=conversation_id, session_id=session_id, line=line
    )
    return ids


def send_resolution_survey(
    db: Database, settings: Settings, conversation_id: int, *, now: datetime
) -> list[int]:
    """The CSAT survey (and CES when THREADLINE_SURVEY_CES is on) for a resolved conversation, once
    per resolution, on the conversation's channel (a chat's as a line in the chat; a call's by SMS);
    answers the survey ids sent (none when it is not resolved, was surveyed already, or is a chat
    without a session). The conversations module may call it when an agent resolves; the sweep
    (`send_due_surveys`) catches every one it did not."""
    with db.read() as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.status not in ("resolved", "closed"):
            return []
        if conversation.channel == CHAT and not conversation.thread_key:
            return []  # no chat session to post it in
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
        channel, thread_key = conversation.channel, conversation.thread_key
    kinds = ("csat", "ces") if settings.survey_ces else ("csat",)
    if channel == CHAT:
        assert thread_key is not None
        return _post_in_chat(
            db,
            settings,
            profile_id=profile_id,
            kinds=kinds,
            conversation_id=conversation_id,
            session_id=thread_key,
            language=language,
            now=now,
        )
    return _send(
        db,
        settings,
        profile_id=profile_id,
        kinds=kinds,
        conversation_id=conversation_id,
        language=language,
        channel=survey_channel(channel),
        # The number or id the customer wrote from, which need not be the one their profile shows.
        to_address=None if channel == "email" else thread_key,
        now=now,
    )


def send_due_surveys(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """The sweep ("service.surveys"): a survey for each conversation resolved within a day that has
    none since it was resolved, on the conversation's channel."""
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
                    # A chat without a session has nowhere to post the survey.
                    or_(Conversation.channel != CHAT, Conversation.thread_key.is_not(None)),
                    Conversation.resolved_at >= now - SURVEY_WITHIN,
                    ~surveyed,
                )
            )
        )
    sent = sum(1 for conversation_id in due if send_resolution_survey(db, settings, conversation_id, now=now))
    return {"due": len(due), "sent": sent}


def send_nps_surveys(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """The NPS schedule ("service.nps"): customers who had a service conversation in the last
    THREADLINE_NPS_EVERY_DAYS days and were not asked in that time get the NPS question on the channel
    of their latest conversation (by email after a chat).

    Only customers in contact with the service desk: a survey under the "service" purpose follows a
    service contact; asking every active customer is a marketing message, for journeys and their
    consent."""
    days = settings.nps_every_days
    if days <= 0:
        return {"sent": 0}
    since = now - timedelta(days=days)
    asked = aliased(SurveyResponse)
    with db.read() as session:
        contacts = session.execute(
            select(Conversation.profile_id, Conversation.channel, Conversation.thread_key)
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
            .order_by(Conversation.last_message_at, Conversation.id)
        ).all()
    # Each customer is asked where they last wrote to the desk; a chat session is over by now, so
    # after a chat the question goes by email.
    latest = {profile_id: (channel, key) for profile_id, channel, key in contacts}
    customers = sorted(latest)
    sent = 0
    for profile_id in customers:
        channel, key = latest[profile_id]
        on_email = channel in ("email", CHAT)
        if _send(
            db,
            settings,
            profile_id=profile_id,
            kinds=("nps",),
            conversation_id=None,
            language=None,
            channel="email" if on_email else survey_channel(channel),
            to_address=None if on_email else key,
            now=now,
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
