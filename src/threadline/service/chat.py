"""The web chat channel: a visitor's chat session, their messages, and the agents' replies pushed live.

A session is opened by the widget (static/chat-widget.js) with a web source's write key. The server
answers a random session id and the session's secret: an HMAC of the source and the session id under
the app's secret key, so nothing is stored until the visitor writes, and one visitor cannot read or
write another's session without its secret. The session id is the chat conversation's `thread_key`.

Messages come in through `receive_inbound` (channel "chat"), identified by the tracker's anonymous id
and, when the visitor gave it, their email: so a customer who wrote by email and then chats with the
same address is one person with both conversations.

`chat_streams` pushes agents' replies to the widgets' event streams at once when the reply is stored by
the process serving the stream (in memory, like the Sources debugger's feed). With several server
processes a reply may be stored by another one, so each open stream also reads `chat_lines_after` its
last line every THREADLINE_CHAT_POLL_SECONDS: one indexed query per open chat, no broker to run. The
widget drops lines it already shows (by id), so a line found both ways is shown once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from threadline.config import Settings
from threadline.errors import Invalid
from threadline.service.conversations import IN, OUT, Received, receive_inbound
from threadline.service.customer_events import record_service_event
from threadline.storage import Database
from threadline.storage.models import Conversation, ConversationMessage

CHAT = "chat"
MAX_TEXT = 5_000  # a chat line; longer belongs in an email with attachments
MAX_ID = 100
STREAM_BUFFER = 100  # replies waiting for one widget; a widget that far behind reloads the history


@dataclass(frozen=True, slots=True)
class ChatSession:
    session_id: str
    secret: str


@dataclass(frozen=True, slots=True)
class ChatLine:
    """One line of the chat as the widget shows it: the visitor's (in) or an agent's (out)."""

    id: int
    direction: str
    text: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "text": self.text,
            "at": self.at.isoformat() + "Z",
        }


def session_secret(key: str, source_id: int, session_id: str) -> str:
    message = f"chat:{source_id}:{session_id}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def open_chat_session(key: str, source_id: int) -> ChatSession:
    session_id = secrets.token_urlsafe(18)
    return ChatSession(session_id, session_secret(key, source_id, session_id))


def check_chat_session(key: str, source_id: int, session_id: object, secret: object) -> str:
    """The session id when `secret` is its secret for this source; Invalid naming the field otherwise
    (the interface answers 403: a wrong secret is someone else's session)."""
    if not isinstance(session_id, str) or not session_id or len(session_id) > MAX_ID:
        raise Invalid("session_id: is required", details={"field": "session_id"})
    if not isinstance(secret, str) or not hmac.compare_digest(
        secret.encode(), session_secret(key, source_id, session_id).encode()
    ):
        raise Invalid("secret: does not open this session", details={"field": "secret"})
    return session_id


def _optional_text(value: object, field: str, limit: int) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"{field}: must be a string of up to {limit} characters", details={"field": field})
    return value.strip() or None


def receive_chat(
    db: Database,
    settings: Settings,
    *,
    session_id: str,
    anonymous_id: object,
    email: object,
    name: object,
    text: object,
    client_message_id: object,
    at: datetime,
) -> Received | None:
    """A visitor's chat message into their chat conversation (None: an erased person's, dropped).
    `client_message_id` is the widget's id for the line, so a retried post is stored once."""
    if not isinstance(text, str) or not text.strip():
        raise Invalid("text: is required", details={"field": "text"})
    if len(text) > MAX_TEXT:
        raise Invalid(f"text: longer than {MAX_TEXT} characters", details={"field": "text"})
    anonymous = _optional_text(anonymous_id, "anonymous_id", MAX_ID)
    address = _optional_text(email, "email", 320)
    shown = _optional_text(name, "name", 200)
    client_id = _optional_text(client_message_id, "client_message_id", MAX_ID)
    identifiers = {k: v for k, v in (("anonymous_id", anonymous), ("email", address)) if v}
    if not identifiers:
        raise Invalid("anonymous_id: is required", details={"field": "anonymous_id"})
    return receive_inbound(
        db,
        settings,
        channel=CHAT,
        identifiers=identifiers,
        thread_key=session_id,
        sender=shown or address,
        body_text=text.strip(),
        message_id_header=f"chat-{session_id}-{client_id}" if client_id else None,
        at=at,
    )


def chat_history(db: Database, session_id: str) -> list[ChatLine]:
    """The session's lines, oldest first: the visitor's and the agents' replies, never internal notes."""
    return _lines(db, session_id)


def chat_lines_after(db: Database, session_id: str, after_id: int) -> list[ChatLine]:
    """The session's lines stored after line `after_id` (ids grow), oldest first: what a stream served by
    one process has not seen when another process stored it."""
    return _lines(db, session_id, after_id)


def _lines(db: Database, session_id: str, after_id: int | None = None) -> list[ChatLine]:
    query = (
        select(
            ConversationMessage.id,
            ConversationMessage.direction,
            ConversationMessage.body_text,
            ConversationMessage.created_at,
        )
        .join(Conversation, Conversation.id == ConversationMessage.conversation_id)
        .where(
            Conversation.channel == CHAT,
            Conversation.thread_key == session_id,
            ConversationMessage.direction.in_((IN, OUT)),
        )
        .order_by(ConversationMessage.created_at, ConversationMessage.id)
    )
    if after_id is not None:
        query = query.where(ConversationMessage.id > after_id)
    with db.read() as session:
        rows = session.execute(query).all()
    return [ChatLine(i, d, t or "", at) for i, d, t, at in rows]


class ChatStream:
    """One widget's event stream: filled from any thread (a reply stored in a worker thread), read on
    the asyncio loop that serves the stream."""

    def __init__(self, session_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.session_id = session_id
        self._loop = loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(STREAM_BUFFER)

    def put(self, line: dict[str, Any]) -> None:
        def _put() -> None:
            if not self.queue.full():  # a widget that far behind reloads the history on reconnect
                self.queue.put_nowait(line)

        # RuntimeError: the loop has stopped, nobody reads this stream any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_put)


class ChatStreams:
    """Chat session id -> the widgets listening to it, in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, list[ChatStream]] = {}

    def subscribe(self, session_id: str, loop: asyncio.AbstractEventLoop) -> ChatStream:
        stream = ChatStream(session_id, loop)
        with self._lock:
            self._streams.setdefault(session_id, []).append(stream)
        return stream

    def unsubscribe(self, stream: ChatStream) -> None:
        with self._lock:
            rest = [s for s in self._streams.get(stream.session_id, []) if s is not stream]
            if rest:
                self._streams[stream.session_id] = rest
            else:
                self._streams.pop(stream.session_id, None)

    def listeners(self, session_id: str) -> int:
        return len(self._streams.get(session_id, ()))

    def publish(self, session_id: str, line: ChatLine) -> None:
        with self._lock:
            streams = list(self._streams.get(session_id, ()))
        for stream in streams:
            stream.put(line.as_dict())


chat_streams = ChatStreams()


def announce_chat_line(
    db: Database,
    settings: Settings,
    *,
    profile_id: str,
    conversation_id: int,
    session_id: str,
    line: ChatLine,
) -> None:
    """A stored outgoing line (an agent's reply, a survey) pushed to the session's widgets in this
    process, and "Message Sent" (channel chat) on the customer's timeline; widgets served by other
    processes find the line by polling."""
    chat_streams.publish(session_id, line)
    record_service_event(
        db,
        settings,
        profile_id=profile_id,
        name="Message Sent",
        properties={"channel": CHAT, "conversation_id": conversation_id},
        message_id=f"service-out-{line.id}",
        channel=CHAT,
        at=line.at,
        now=line.at,
    )
