"""An agent answers a conversation (on its channel, through threadline.messaging) or writes an internal
note for colleagues.

A reply is a service message: `threadline.messaging.send_message` with purpose "service" runs the one
consent check (a customer who refused service messages, or whose processing is restricted, is not
written to), keeps it in the delivery log and puts "Email Sent" on the timeline. Whether the agent may
answer is decided here (scope.py: the conversation's rule, which covers an assignee who does not own
the customer), so messaging is asked as the system, with the agent as `created_by`.

Email replies carry In-Reply-To (the customer's latest message) and References (the thread's root and
its latest messages), so the customer's mail client shows one thread and their answer comes back to
this conversation.

An SMS, WhatsApp, WeChat or social reply goes through messaging on the conversation's channel, to
the provider webhook (docs/messaging.md, "Other channels"), addressed to the number or id the customer
wrote from (the conversation's thread key), which need not be the one their profile shows.

A chat reply is not a message through messaging: it answers the visitor in the chat they opened, so it
is stored here and pushed to the widget's stream (chat.py), with "Message Sent" on the timeline.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.messaging import CHANNELS as SENDABLE
from threadline.messaging import REFUSED, send_message
from threadline.service.chat import CHAT, ChatLine, announce_chat_line
from threadline.service.conversations import IN, NOTE, OUT
from threadline.service.scope import handled_conversation
from threadline.storage import Database
from threadline.storage.models import Conversation, ConversationMessage, OutboundMessage

MAX_BODY = 100_000
REFERENCES_KEPT = 10  # RFC 5322 lets a long thread's References drop middle ids; the root stays


def _body(value: str, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"{field}: is required", details={"field": field})
    if len(value) > MAX_BODY:
        raise Invalid(f"{field}: longer than {MAX_BODY} characters", details={"field": field})
    return value


def _reply_subject(subject: str | None) -> str:
    subject = (subject or "").strip()
    if not subject:
        return "Re: your message"
    return subject if subject.lower().startswith(("re:", "回复:", "回复：")) else f"Re: {subject}"


def _thread_headers(session: Session, conversation: Conversation) -> dict[str, str]:
    """In-Reply-To the customer's latest message; References: the root, then the latest ids."""
    ids: list[str] = []
    last_inbound: str | None = None
    for direction, own, sent in session.execute(
        select(
            ConversationMessage.direction,
            ConversationMessage.message_id_header,
            OutboundMessage.message_id_header,
        )
        .outerjoin(OutboundMessage, OutboundMessage.id == ConversationMessage.outbound_message_id)
        .where(ConversationMessage.conversation_id == conversation.id, ConversationMessage.direction != NOTE)
        .order_by(ConversationMessage.created_at, ConversationMessage.id)
    ).all():
        header = own or sent
        if header and header not in ids:
            ids.append(header)
        if direction == IN and own:
            last_inbound = own
    if last_inbound is None:
        return {}
    root = (
        conversation.thread_key
        if conversation.thread_key and conversation.thread_key.startswith("<")
        else None
    )
    chain = [i for i in ids if i != root][-(REFERENCES_KEPT - 1) :]
    references = ([root] if root else []) + chain
    return {"In-Reply-To": last_inbound, "References": " ".join(references)}


def reply(
    db: Database,
    settings: Settings,
    viewer: Viewer,
    conversation_id: int,
    *,
    body_text: str,
    author_user_id: int | None,
    now: datetime,
    purpose: str = "service",
) -> int:
    """Send the customer an answer on the conversation's channel; answers the new message's id. A
    reply is a service message; one that promotes (an offer in the answer) is sent with purpose
    "marketing" and then needs the customer's marketing consent on the channel, like any campaign. The
    first reply that is not refused sets `first_response_at`; replying to an unassigned conversation
    assigns it to the agent, so a colleague does not answer it too."""
    body_text = _body(body_text, "body_text")
    with db.read() as session:
        conversation = handled_conversation(session, viewer, conversation_id)
        channel, profile_id = conversation.channel, conversation.profile_id
        thread_key = conversation.thread_key
        if purpose not in ("service", "marketing"):
            raise Invalid("purpose: must be service or marketing", details={"field": "purpose"})
        if purpose != "service" and channel == CHAT:
            raise Invalid(
                "purpose: a marketing reply goes out by email or SMS, not in the chat",
                details={"field": "purpose"},
            )
        if channel not in SENDABLE and channel != CHAT:
            raise Invalid(
                f"channel: replies on {channel} are not available yet", details={"field": "channel"}
            )
        headers = _thread_headers(session, conversation) if channel == "email" else {}
        subject = _reply_subject(conversation.subject)
    # The agent's words go out as written: a reply may quote the customer's own "{{". A chat reply
    # answers the visitor in the session they opened and is pushed to its widget (chat.py), so it
    # needs no relay and no consent to contact: it goes out without messaging.
    sent = (
        None
        if channel == CHAT
        else send_message(
            db,
            settings,
            Viewer.system(),
            profile_id,
            purpose=purpose,
            subject=subject,
            body_text=body_text,
            channel=channel,
            origin="service",
            created_by=author_user_id,
            headers=headers,
            templated=False,
            to_address=None if channel == "email" else thread_key,
            now=now,
        )
    )
    with db.write() as session:
        conversation = handled_conversation(session, viewer, conversation_id)
        entry = ConversationMessage(
            conversation_id=conversation.id,
            direction=OUT,
            author_user_id=author_user_id,
            sender=None,
            body_text=body_text,
            in_reply_to=headers.get("In-Reply-To"),
            outbound_message_id=sent.id if sent else None,
            created_at=now,
        )
        session.add(entry)
        if (sent is None or sent.status != REFUSED) and conversation.first_response_at is None:
            conversation.first_response_at = now
        if conversation.assignee_id is None and author_user_id is not None:
            conversation.assignee_id = author_user_id
        conversation.last_message_at = max(conversation.last_message_at, now)
        conversation.updated_at = now
        session.flush()
        entry_id, profile_id = entry.id, conversation.profile_id
    if channel == CHAT and thread_key:
        announce_chat_line(
            db,
            settings,
            profile_id=profile_id,
            conversation_id=conversation_id,
            session_id=thread_key,
            line=ChatLine(entry_id, OUT, body_text, now),
        )
    return entry_id


def add_note(
    db: Database,
    viewer: Viewer,
    conversation_id: int,
    *,
    body_text: str,
    author_user_id: int | None,
    now: datetime,
) -> int:
    """An internal note: seen by colleagues on the conversation, never sent, not on the timeline."""
    body_text = _body(body_text, "body_text")
    with db.write() as session:
        conversation = handled_conversation(session, viewer, conversation_id)
        entry = ConversationMessage(
            conversation_id=conversation.id,
            direction=NOTE,
            author_user_id=author_user_id,
            body_text=body_text,
            created_at=now,
        )
        session.add(entry)
        conversation.updated_at = now
        session.flush()
        return entry.id
