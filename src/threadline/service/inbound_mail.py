"""The inbound SMTP server (aiosmtpd): customers' emails become conversations.

`threadline serve` runs it beside HTTP when THREADLINE_SMTP_INBOUND_PORT is set; `threadline smtp`
runs it alone. It usually sits behind the MX relay that receives the domain's mail. What it answers:

- RCPT to an address THREADLINE_INBOUND_ADDRESSES does not list: 550 (it is no open mailbox);
- DATA: 250 once the message is stored, as a conversation message or, when it cannot be read as one
  (no sender, broken MIME structure, an identifier ingestion refuses), in the quarantine with the
  reason, from the source "Threadline service (email)": nothing the sender was told we took is lost;
- 451 when the database failed, so the sending server tries again later (its duplicate is dropped by
  Message-ID).

Receiving is not sending: replies leave through threadline.messaging like every other email.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiosmtpd.controller import Controller

from threadline.clock import Clock, utcnow
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.ingest import internal_source, quarantine_raw
from threadline.service.conversations import TIMELINE_CHANNELS, Received, receive_inbound, source_name
from threadline.service.mail_parsing import MalformedEmail, parse_email
from threadline.storage import Database

log = logging.getLogger(__name__)

MIN_MESSAGE_BYTES = 50_000_000  # a whole message, all parts base64-encoded (a third larger)


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What became of one email: a conversation message, the quarantine, or dropped (an erased
    person's address)."""

    received: Received | None = None
    quarantine_id: int | None = None
    reason: str | None = None


def accepts(addresses: list[str], recipient: str) -> bool:
    """Whether a recipient is one of ours: an address listed, or one at a listed @domain."""
    wanted = recipient.strip().strip("<>").lower()
    domain = "@" + wanted.rpartition("@")[2]
    listed = {a.strip().lower() for a in addresses if a.strip()}
    return wanted in listed or domain in listed


def _readable(raw: bytes) -> str:
    """The raw message as quarantine text: itself when it is UTF-8 (7-bit mail is), else base64 so
    that no byte of a GBK or binary message is lost to a decoder."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode("ascii")


def take_email(
    db: Database, settings: Settings, raw: bytes, *, envelope_sender: str | None, now: datetime
) -> InboundOutcome:
    """Store one inbound email as a conversation message, or quarantine it with the reason."""
    try:
        parsed = parse_email(
            raw, max_attachment_bytes=settings.max_attachment_bytes, envelope_sender=envelope_sender
        )
        received = receive_inbound(
            db,
            settings,
            channel="email",
            identifiers={"email": parsed.sender},
            sender=parsed.sender,
            subject=parsed.subject,
            body_text=parsed.body_text,
            body_html=parsed.body_html,
            attachments=parsed.attachments,
            message_id_header=parsed.message_id,
            in_reply_to=parsed.in_reply_to,
            references=parsed.references,
            at=now,
        )
    except MalformedEmail as error:
        reason = str(error)
    except Invalid as error:
        reason = error.message
    else:
        return InboundOutcome(received=received)
    source = internal_source(db, source_name("email"), now=now, channel=TIMELINE_CHANNELS["email"])
    kept = quarantine_raw(db, source_id=source.id, received_at=now, payload=_readable(raw), reason=reason)
    return InboundOutcome(quarantine_id=kept, reason=reason)


class InboundMailHandler:
    """aiosmtpd's handler: checks recipients, stores messages in a thread (the database is blocking)."""

    def __init__(self, db: Database, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not accepts(self.settings.inbound_addresses, address):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode("utf-8")
        try:
            outcome = await asyncio.to_thread(
                take_email, self.db, self.settings, raw, envelope_sender=envelope.mail_from, now=self.clock()
            )
        except Exception:
            log.exception("inbound email: could not be stored; the sender is asked to try again")
            return "451 4.3.0 the message could not be stored, try again later"
        if outcome.received is not None:
            r = outcome.received
            log.info(
                "inbound email: conversation %d, message %d%s",
                r.conversation_id,
                r.message_id,
                " (duplicate)" if r.duplicate else "",
            )
        elif outcome.quarantine_id is not None:
            log.warning("inbound email: quarantined as %d", outcome.quarantine_id)
        return "250 OK"


class InboundMailServer:
    """The SMTP server in a thread of its own (aiosmtpd's Controller runs an event loop there), so it
    runs beside uvicorn in `threadline serve`, alone in `threadline smtp`, and in tests."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.host = host or settings.smtp_inbound_host
        self.port = port if port is not None else settings.smtp_inbound_port
        limit = max(MIN_MESSAGE_BYTES, settings.max_attachment_bytes * 2)
        self._controller = Controller(
            InboundMailHandler(db, settings, clock=clock),
            hostname=self.host,
            port=self.port,
            data_size_limit=limit,
        )
        if not settings.inbound_addresses:
            log.warning(
                "THREADLINE_INBOUND_ADDRESSES is empty: the inbound SMTP server refuses every recipient"
            )

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> InboundMailServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
