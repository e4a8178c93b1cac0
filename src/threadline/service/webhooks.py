"""Generic inbound webhooks: SMS, WhatsApp, WeChat and social messages (and call records, calls.py)
posted by a provider to `POST /webhooks/{source}`.

Signing: the provider signs each request with HMAC-SHA256 over `"{timestamp}.{raw body}"`, keyed
with the source's write key, and sends `X-Threadline-Timestamp` (Unix seconds) and
`X-Threadline-Signature: sha256=<hex>`. The write key is the source's one secret already (shown once,
rotated on the Sources page), so there is no second secret to store and rotate; a web source's key
is public (it is in every page), so a web source takes no webhooks. Signatures are compared in
constant time; a timestamp more than 5 minutes from now is refused, so a captured request cannot be
replayed later, and a replay within the 5 minutes is dropped as a duplicate by its message id.

Nothing unsigned is stored; a signed body that cannot be read is kept in the source's quarantine with
the reason, so nothing valid is lost. See docs/service.md, "Webhooks".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from threadline.config import Settings
from threadline.errors import Invalid
from threadline.identity import InvalidIdentifier, normalise
from threadline.ingest import InvalidMessage, SourceInfo, parse_time, quarantine_raw
from threadline.service.conversations import InboundAttachment, Received, receive_inbound
from threadline.service.opt_out import OPT_OUT_CHANNELS, OptedOut, is_opt_out, take_opt_out
from threadline.storage import Database

SIGNATURE_HEADER = "X-Threadline-Signature"
TIMESTAMP_HEADER = "X-Threadline-Timestamp"
MAX_AGE = timedelta(minutes=5)
MESSAGE_CHANNELS = ("sms", "whatsapp", "wechat", "social")
# The identifier kind a channel's `from` is, unless the payload names one (`from_kind`).
FROM_KINDS = {"sms": "phone", "whatsapp": "phone", "wechat": "wechat_openid"}
MAX_ATTACHMENTS = 20
MAX_URL = 2_000
MAX_TEXT = 20_000


class BadSignature(Exception):
    """The request is not signed by the source (the interface answers 401 and stores nothing)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for a body sent at `timestamp` (what a provider computes)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, *, now: datetime
) -> None:
    """BadSignature unless `signature` signs `body` at `timestamp` and that is within 5 minutes."""
    if not timestamp or not signature:
        raise BadSignature(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        sent = datetime.fromtimestamp(int(timestamp.strip()), UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        raise BadSignature(f"{TIMESTAMP_HEADER}: must be Unix seconds") from None
    if abs(now - sent) > MAX_AGE:
        raise BadSignature(f"{TIMESTAMP_HEADER}: more than 5 minutes from the server's clock")
    expected = sign(secret, timestamp.strip(), body)
    if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        raise BadSignature(f"{SIGNATURE_HEADER}: does not match the body")


def accepts_webhooks(source: SourceInfo | None) -> bool:
    """An active source whose write key is a secret (not a web source's, which pages carry)."""
    return source is not None and not source.revoked and source.channel != "web"


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What became of a signed request: stored (`received`, None for an erased person's message), an
    opt-out reply taken (`opted_out`), or kept in the quarantine with the reason and the field at
    fault."""

    received: Received | None = None
    opted_out: OptedOut | None = None
    quarantine_id: int | None = None
    reason: str | None = None
    field: str | None = None
    details: Mapping[str, Any] | None = None


def _field(payload: Mapping[str, Any], name: str, *, required: bool = True, limit: int = 300) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise Invalid(f"{name}: is required", details={"field": name})
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"{name}: must be a string", details={"field": name})
    text = str(value).strip()
    if len(text) > limit:
        raise Invalid(f"{name}: longer than {limit} characters", details={"field": name})
    return text


def customer_identifier(settings: Settings, kind: str, raw: str, field: str) -> str:
    """`raw` normalised as identity does it (a phone number in E.164), so the thread key and the
    profile lookup agree however the provider wrote the number."""
    try:
        return normalise(kind, raw, region=settings.default_region, field=field).value
    except InvalidIdentifier as error:
        raise Invalid(f"{field}: {error.reason}", details={"field": field}) from None


def url_attachments(value: Any) -> list[InboundAttachment]:
    """Attachments given as URLs: the URL is kept (as a text/uri-list file), never fetched, so a
    provider's link cannot make the server request anything."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ATTACHMENTS:
        raise Invalid(
            f"attachments: must be a list of up to {MAX_ATTACHMENTS}", details={"field": "attachments"}
        )
    found = []
    for index, item in enumerate(value):
        url = item.get("url") if isinstance(item, dict) else item
        field = f"attachments[{index}].url"
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > MAX_URL:
            raise Invalid(f"{field}: must be an http(s) URL", details={"field": field})
        name = (item.get("filename") if isinstance(item, dict) else None) or url.rsplit("/", 1)[-1] or "link"
        data = (url + "\r\n").encode()
        found.append(InboundAttachment(str(name)[:300], "text/uri-list", len(data), data))
    return found


def message_time(payload: Mapping[str, Any], name: str, now: datetime) -> datetime:
    if payload.get(name) in (None, ""):
        return now
    try:
        at = parse_time(payload.get(name), name)
    except (InvalidMessage, ValueError):
        raise Invalid(f"{name}: must be an ISO 8601 time", details={"field": name}) from None
    return now if at is None or at > now else at  # a provider's clock ahead of ours is not the future


def take_message(
    db: Database, settings: Settings, payload: Mapping[str, Any], *, now: datetime
) -> Received | OptedOut | None:
    """One provider message into a conversation, threaded by the customer's number (or id); an SMS or
    WhatsApp message that is only an opt-out keyword withdraws marketing consent instead (opt_out.py)."""
    channel = _field(payload, "channel")
    if channel not in MESSAGE_CHANNELS:
        raise Invalid(f"channel: must be one of {', '.join(MESSAGE_CHANNELS)}", details={"field": "channel"})
    kind = _field(payload, "from_kind", required=channel not in FROM_KINDS) or FROM_KINDS[channel]
    if kind not in ("phone", "email", *settings.identifier_kinds):
        raise Invalid("from_kind: not an identifier kind of this workspace", details={"field": "from_kind"})
    sender = customer_identifier(settings, kind, _field(payload, "from") or "", "from")
    text = payload.get("text")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise Invalid(f"text: must be a string of up to {MAX_TEXT} characters", details={"field": "text"})
    attachments = url_attachments(payload.get("attachments"))
    if not text.strip() and not attachments:
        raise Invalid("text: is required when there are no attachments", details={"field": "text"})
    provider_id = _field(payload, "message_id", limit=200)
    if channel in OPT_OUT_CHANNELS and not attachments and is_opt_out(text):
        return take_opt_out(
            db,
            settings,
            channel=channel,
            kind=kind,
            sender=sender,
            keyword=text,
            provider_message_id=provider_id,
            now=now,
        )
    return receive_inbound(
        db,
        settings,
        channel=channel,
        identifiers={kind: sender},
        thread_key=sender,
        sender=_field(payload, "name", required=False) or sender,
        body_text=text,
        attachments=attachments,
        message_id_header=f"{channel}-{provider_id}",
        at=message_time(payload, "timestamp", now),
    )


def take_webhook(
    db: Database, settings: Settings, source: SourceInfo, body: bytes, *, kind: str, now: datetime
) -> WebhookOutcome:
    """A signed request's body (already verified): a message (`kind` "message") or a call record
    ("call"); a body that cannot be taken goes to the source's quarantine with the reason."""
    from threadline.service.calls import take_call_record  # calls.py uses this module's helpers

    try:
        payload = orjson.loads(body)
        if not isinstance(payload, dict):
            raise Invalid("body: must be a JSON object", details={"field": "body"})
        if kind == "call":
            return WebhookOutcome(received=take_call_record(db, settings, payload, now=now))
        taken = take_message(db, settings, payload, now=now)
        if isinstance(taken, OptedOut):
            return WebhookOutcome(opted_out=taken)
        return WebhookOutcome(received=taken)
    except orjson.JSONDecodeError as error:
        reason, field = f"body: is not valid JSON ({error})", "body"
    except Invalid as error:
        reason = error.message
        field = str((error.details or {}).get("field") or "body")
    kept = quarantine_raw(
        db, source_id=source.id, received_at=now, payload=body.decode("utf-8", "replace"), reason=reason
    )
    return WebhookOutcome(quarantine_id=kept, reason=reason, field=field)
