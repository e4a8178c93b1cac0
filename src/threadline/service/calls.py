"""Phone calls: records from a call-center system (`POST /webhooks/{source}/calls`, signed like every
webhook, webhooks.py) and calls an agent logs by hand (REST and the 360 page).

A call is matched to the customer by the phone number, normalised as identity does (E.164), through
`receive_inbound` (channel "phone", threaded by the number): the call is a message of the customer's
phone conversation, whichever side dialled, since the conversation is the desk's record of contacts
with them. The timeline also gets **"Call Logged"** (direction, duration, disposition, recording URL,
agent) through the one write path, which call reports and journeys read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from threadline.config import Settings
from threadline.errors import Invalid
from threadline.ingest import ingest, internal_source
from threadline.service.conversations import Received, receive_inbound
from threadline.service.webhooks import customer_identifier, message_time, url_attachments
from threadline.storage import Database
from threadline.storage.models import Conversation

CALL_EVENT = "Call Logged"
CALL_SOURCE = "Service (call_center)"  # customer_events.py names its sources so
DIRECTIONS = ("inbound", "outbound")
DISPOSITIONS = ("answered", "missed", "voicemail", "busy", "failed")
MAX_NOTES = 5_000


@dataclass(frozen=True, slots=True)
class CallRecord:
    direction: str
    number: str  # E.164
    duration_seconds: int
    disposition: str
    recording_url: str | None
    agent: str | None
    call_id: str
    notes: str | None
    at: datetime


def _text(payload: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > limit:
        raise Invalid(f"{name}: must be a string of up to {limit} characters", details={"field": name})
    return str(value).strip() or None


def parse_call_record(settings: Settings, payload: Mapping[str, Any], *, now: datetime) -> CallRecord:
    """A call record from a payload; Invalid names the field."""
    direction = payload.get("direction")
    if direction not in DIRECTIONS:
        raise Invalid(f"direction: must be one of {', '.join(DIRECTIONS)}", details={"field": "direction"})
    disposition = payload.get("disposition")
    if disposition not in DISPOSITIONS:
        raise Invalid(
            f"disposition: must be one of {', '.join(DISPOSITIONS)}", details={"field": "disposition"}
        )
    duration = payload.get("duration_seconds", 0)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 0 <= duration <= 86_400:
        raise Invalid(
            "duration_seconds: must be a whole number of seconds up to a day",
            details={"field": "duration_seconds"},
        )
    number = customer_identifier(settings, "phone", _text(payload, "number", 50) or "", "number")
    recording = _text(payload, "recording_url", 2_000)
    if recording is not None and not recording.startswith(("https://", "http://")):
        raise Invalid("recording_url: must be an http(s) URL", details={"field": "recording_url"})
    at = message_time(payload, "started_at", now)
    # A system without call ids still gets one record per call: the number and the start identify it.
    call_id = (
        _text(payload, "call_id", 200) or hashlib.sha256(f"{number}:{at.isoformat()}".encode()).hexdigest()
    )
    return CallRecord(
        direction=str(direction),
        number=number,
        duration_seconds=duration,
        disposition=str(disposition),
        recording_url=recording,
        agent=_text(payload, "agent", 320),
        call_id=call_id[:200],
        notes=_text(payload, "notes", MAX_NOTES),
        at=at,
    )


def _summary(call: CallRecord) -> str:
    minutes, seconds = divmod(call.duration_seconds, 60)
    line = f"{call.direction.capitalize()} call, {minutes}:{seconds:02d}, {call.disposition}"
    if call.agent:
        line += f", agent {call.agent}"
    return line + (f"\n\n{call.notes}" if call.notes else "")


def log_call(
    db: Database, settings: Settings, call: CallRecord, *, now: datetime, logged_by: int | None = None
) -> Received | None:
    """The call into the customer's phone conversation and onto their timeline; None when the number
    is an erased person's (dropped). A call an agent logs (`logged_by`) assigns them an unassigned
    conversation, so they can see what they logged even for a customer they do not own."""
    attachments = url_attachments(
        [{"url": call.recording_url, "filename": "recording"}] if call.recording_url else None
    )
    received = receive_inbound(
        db,
        settings,
        channel="phone",
        identifiers={"phone": call.number},
        thread_key=call.number,
        sender=call.number,
        subject=f"Call {call.number}",
        body_text=_summary(call),
        attachments=attachments,
        message_id_header=f"call-{call.call_id}",
        at=call.at,
    )
    if received is None or received.duplicate:
        return received
    if logged_by is not None:
        with db.write() as session:
            conversation = session.get(Conversation, received.conversation_id)
            if conversation is not None and conversation.assignee_id is None:
                conversation.assignee_id = logged_by
    # Attached by the number itself, which found the customer above: record_customer_event attaches
    # to a user id, anonymous id or email, which a caller known only by phone does not have.
    event = {
        "type": "track",
        "event": CALL_EVENT,
        "messageId": f"call-{hashlib.sha256(call.call_id.encode()).hexdigest()[:40]}",
        "timestamp": call.at.isoformat() + "Z",
        "properties": {
            "direction": call.direction,
            "number": call.number,
            "duration_seconds": call.duration_seconds,
            "disposition": call.disposition,
            "recording_url": call.recording_url,
            "agent": call.agent,
            "conversation_id": received.conversation_id,
        },
        "context": {"traits": {"phone": call.number}},
    }
    source = internal_source(db, CALL_SOURCE, now=now, channel="call_center")
    ingest(db, source, [event], settings=settings, received_at=now)
    return received


def take_call_record(
    db: Database, settings: Settings, payload: Mapping[str, Any], *, now: datetime
) -> Received | None:
    return log_call(db, settings, parse_call_record(settings, payload, now=now), now=now)
