"""A customer's message arriving on any channel: onto their timeline, then into a conversation.

`receive_inbound` is the one way in for every channel (the inbound SMTP server today; chat, SMS,
WhatsApp, WeChat and call-center webhooks later). It finds the customer through the one write path: a
track event ("Email Received", "Message Received") from an internal source of the channel, so identity
stitching resolves or creates the profile exactly as for any other event, and the message shows on the
customer's timeline. Then it threads the message into a conversation:

- email: by In-Reply-To / References naming a message of a conversation (in, or an agent's reply), else
  a new conversation;
- other channels: by `thread_key` (a chat session, a phone number), the latest conversation not closed.

A message to a pending or resolved conversation opens it again (resolved counts as reopened); a closed
one is final, so the message starts a new conversation.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from threadline.config import Settings
from threadline.errors import Invalid
from threadline.ingest import ingest, internal_source
from threadline.privacy import live_profile_id
from threadline.storage import Database
from threadline.storage.models import (
    Attachment,
    Conversation,
    ConversationMessage,
    Event,
    OutboundMessage,
    Profile,
)

# Conversation channels, and the channel their events show on the timeline (threadline.config.CHANNELS).
TIMELINE_CHANNELS = {
    "email": "email",
    "chat": "chat",
    "sms": "sms",
    "whatsapp": "social",
    "wechat": "social",
    "social": "social",
    "phone": "call_center",
}
SERVICE_CHANNELS = tuple(TIMELINE_CHANNELS)
OPEN, PENDING, RESOLVED, CLOSED = "open", "pending", "resolved", "closed"
STATUSES = (OPEN, PENDING, RESOLVED, CLOSED)
PRIORITIES = ("low", "normal", "high", "urgent")
IN, OUT, NOTE = "in", "out", "note"
RECEIVED_EVENTS = {"email": "Email Received"}  # other channels: "Message Received"
# Identifier kinds that a Segment message carries at its top level; every other kind goes in
# context.traits, where ingestion reads email, phone and the configured kinds.
_TOP_LEVEL = {"user_id": "userId", "anonymous_id": "anonymousId"}
MAX_SUBJECT = 300  # conversations.subject
MAX_HEADER = 300  # conversation_messages.message_id_header / in_reply_to


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    """A file that came with a message. `data` is empty when it was over the size limit: the file is
    then recorded by name and size only (`size` is what it was)."""

    filename: str
    content_type: str
    size: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Received:
    """Where an inbound message went."""

    conversation_id: int
    message_id: int
    profile_id: str
    new_conversation: bool
    reopened: bool
    duplicate: bool = False  # the same message (Message-ID) came before: nothing was added


def source_name(channel: str) -> str:
    """The internal source a channel's inbound messages are ingested from (revoked: no write key)."""
    return f"Threadline service ({TIMELINE_CHANNELS[channel]})"


def _check(channel: str, identifiers: Mapping[str, str], body_text: str) -> None:
    if channel not in TIMELINE_CHANNELS:
        raise Invalid(f"channel: must be one of {', '.join(SERVICE_CHANNELS)}", details={"field": "channel"})
    if not any(isinstance(v, str) and v.strip() for v in identifiers.values()):
        raise Invalid(
            "identifiers: an email, phone, anonymous id or other identifier is needed to find the customer",
            details={"field": "identifiers"},
        )
    if not isinstance(body_text, str):
        raise Invalid("body_text: must be a string", details={"field": "body_text"})


def header_id(value: str | None) -> str | None:
    """A Message-ID as stored and compared: trimmed, in angle brackets."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if not text.startswith("<"):
        text = f"<{text.strip('<>')}>"
    return text[:MAX_HEADER]


def inbound_event_message_id(channel: str, message_id_header: str) -> str:
    """The messageId of the timeline event of a customer's inbound message with this (normalised)
    Message-ID: how sentiment scoring finds the event of a message whose text stays in the conversation."""
    digest = hashlib.sha256(f"{channel}:{message_id_header}".encode()).hexdigest()[:40]
    return f"service-in-{digest}"


def _event(
    channel: str,
    identifiers: Mapping[str, str],
    subject: str | None,
    attachments: int,
    message_id_header: str | None,
    at: datetime,
) -> dict[str, Any]:
    # The event's messageId comes from the channel's own message id, so a relay delivering the same
    # email twice is a duplicate the write path drops.
    event: dict[str, Any] = {
        "type": "track",
        "event": RECEIVED_EVENTS.get(channel, "Message Received"),
        "messageId": inbound_event_message_id(channel, message_id_header or uuid.uuid4().hex),
        "timestamp": at.isoformat() + "Z",
        "properties": {"channel": channel, "subject": subject or "", "attachments": attachments},
    }
    traits: dict[str, str] = {}
    for kind, value in identifiers.items():
        if not isinstance(value, str) or not value.strip():
            continue
        if kind in _TOP_LEVEL:
            event[_TOP_LEVEL[kind]] = value.strip()
        else:
            traits[kind] = value.strip()
    if traits:
        event["context"] = {"traits": traits}
    return event


def _family(session: Session, live: str) -> list[str]:
    """The live profile and those merged into it: conversations keep the id they were opened under."""
    return [live, *session.scalars(select(Profile.id).where(Profile.merged_into == live))]


def _earlier_copy(
    session: Session, channel: str, message_id_header: str | None
) -> ConversationMessage | None:
    if message_id_header is None:
        return None
    return session.scalar(
        select(ConversationMessage)
        .join(Conversation, Conversation.id == ConversationMessage.conversation_id)
        .where(
            ConversationMessage.message_id_header == message_id_header,
            ConversationMessage.direction == IN,
            Conversation.channel == channel,
        )
        .limit(1)
    )


def _email_thread(session: Session, family: list[str], ids: list[str]) -> Conversation | None:
    """The customer's email conversation holding a message the new one answers: one of theirs, or an
    agent's reply (whose Message-ID the delivery job fixed in outbound_messages)."""
    if not ids:
        return None
    inbound = select(ConversationMessage.conversation_id).where(
        ConversationMessage.message_id_header.in_(ids)
    )
    outbound = (
        select(ConversationMessage.conversation_id)
        .join(OutboundMessage, OutboundMessage.id == ConversationMessage.outbound_message_id)
        .where(OutboundMessage.message_id_header.in_(ids))
    )
    return session.scalar(
        select(Conversation)
        .where(
            or_(Conversation.id.in_(inbound), Conversation.id.in_(outbound)),
            Conversation.channel == "email",
            Conversation.profile_id.in_(family),
        )
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(1)
        .with_for_update()
    )


def _keyed_thread(session: Session, family: list[str], channel: str, thread_key: str) -> Conversation | None:
    return session.scalar(
        select(Conversation)
        .where(
            Conversation.channel == channel,
            Conversation.thread_key == thread_key,
            Conversation.profile_id.in_(family),
        )
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(1)
        .with_for_update()
    )


def _profile_of_event(db: Database, source_id: int, event_message_id: str) -> str | None:
    """The customer an already-stored event went to (a redelivered message whose conversation entry
    was not written, e.g. a crash in between)."""
    with db.read() as session:
        found = session.scalar(
            select(Event.profile_id).where(Event.source_id == source_id, Event.message_id == event_message_id)
        )
        return None if found is None else live_profile_id(session.connection(), found)


def receive_inbound(
    db: Database,
    settings: Settings,
    *,
    channel: str,
    identifiers: Mapping[str, str],
    thread_key: str | None = None,
    sender: str | None = None,
    subject: str | None = None,
    body_text: str,
    body_html: str | None = None,
    attachments: Sequence[InboundAttachment] = (),
    message_id_header: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    at: datetime,
) -> Received | None:
    """Take a customer's message from any channel; None when it came from an erased person (dropped,
    like every message carrying a suppressed identifier). Invalid names the field when the message
    cannot be taken (the timeline event's rejection is also in the quarantine)."""
    _check(channel, identifiers, body_text)
    message_id_header = header_id(message_id_header)
    in_reply_to = header_id(in_reply_to)
    subject = " ".join((subject or "").split())[:MAX_SUBJECT] or None
    with db.read() as session:
        earlier = _earlier_copy(session, channel, message_id_header)
        if earlier is not None:
            conversation = session.get(Conversation, earlier.conversation_id)
            assert conversation is not None
            return Received(
                conversation.id, earlier.id, conversation.profile_id, False, False, duplicate=True
            )

    event = _event(channel, identifiers, subject, len(attachments), message_id_header, at)
    source = internal_source(db, source_name(channel), now=at, channel=TIMELINE_CHANNELS[channel])
    result = ingest(db, source, [event], settings=settings, received_at=at)
    if result.suppressed:
        return None
    if result.rejected:
        first = result.rejected[0]
        field = f"identifiers.{first.field.rsplit('.', 1)[-1]}" if first.field else "identifiers"
        raise Invalid(f"{field}: {first.reason}", details={"field": field})
    profile_id = result.profile_ids[0] or _profile_of_event(db, source.id, event["messageId"])
    if profile_id is None:  # erased between the two reads
        return None

    wanted = [i for i in (in_reply_to, *(header_id(r) for r in references)) if i]
    with db.write() as session:
        family = _family(session, profile_id)
        if channel == "email":
            conversation = _email_thread(session, family, wanted)
            # The thread's root: what References starts with, else what this answers, else itself.
            root = header_id(references[0]) if references else (in_reply_to or message_id_header)
            key = (thread_key or "").strip()[:MAX_HEADER] or root
        else:
            key = (thread_key or "").strip()[:MAX_HEADER] or None
            conversation = _keyed_thread(session, family, channel, key) if key else None
        new = conversation is None or conversation.status == CLOSED
        reopened = False
        if conversation is None or new:
            conversation = Conversation(
                profile_id=profile_id,
                channel=channel,
                subject=subject,
                status=OPEN,
                priority="normal",
                tags=[],
                thread_key=key,
                created_at=at,
                updated_at=at,
                last_message_at=at,
                reopened=0,
                sla_state="ok",
            )
            session.add(conversation)
            session.flush()
            # Its SLA due times, then its team and agent by the routing rules, in the transaction
            # that opens it (sla.py and routing.py import this module's constants, hence the imports
            # here).
            from threadline.service.routing import route
            from threadline.service.sla import apply_policy

            apply_policy(session, conversation)
            route(session, conversation, body_text)
        else:
            if conversation.status == RESOLVED:
                conversation.reopened += 1
                conversation.resolved_at = None
                reopened = True
            if conversation.status == PENDING:
                # The customer answered: the resolution clock runs again (sla_pause.py).
                from threadline.service.sla_pause import resume_clock

                resume_clock(session, conversation, at)
            conversation.status = OPEN
            conversation.last_message_at = max(conversation.last_message_at, at)
            conversation.updated_at = at
        entry = ConversationMessage(
            conversation_id=conversation.id,
            direction=IN,
            sender=(sender or "")[:320] or None,
            body_text=body_text,
            body_html=body_html,
            message_id_header=message_id_header,
            in_reply_to=in_reply_to,
            created_at=at,
        )
        session.add(entry)
        session.flush()
        for item in attachments:
            session.add(
                Attachment(
                    message_id=entry.id,
                    filename=(item.filename or "attachment")[:300],
                    content_type=(item.content_type or "application/octet-stream")[:150],
                    size=item.size,
                    data=item.data,
                )
            )
        return Received(conversation.id, entry.id, conversation.profile_id, new, reopened)
