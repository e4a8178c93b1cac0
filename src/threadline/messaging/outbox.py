"""Asking for a message: validate, render for the customer, check consent, store, queue its sending.

`send_message` is the one way a message leaves Threadline (staff on the 360 page or the REST API today,
journeys and service replies later): whatever asks, the same consent check decides, the same row keeps
what happened, and the same timeline events tell it. The sending itself is a durable job (delivery.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer, customer_write_filter
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid
from threadline.jobs import enqueue
from threadline.messaging.frequency_caps import cap_reached
from threadline.messaging.providers import PROVIDER_CHANNELS, disabled_reason, webhook_url
from threadline.messaging.quiet_hours import quiet_hold
from threadline.messaging.rendering import InvalidTemplate, render
from threadline.messaging.timeline import record_outcome
from threadline.privacy import (
    MASK,
    PURPOSES,
    CannotDecrypt,
    SendDecision,
    check_send,
    mask_email,
    mask_phone,
    trait_cipher,
)
from threadline.profiles import resolve_profile_id
from threadline.storage import Database
from threadline.storage.models import Identity, OutboundMessage, Profile

CHANNELS = ("email", *PROVIDER_CHANNELS)  # email by SMTP (mail.py), the others by webhook (providers.py)
QUEUED, SENDING, SENT, FAILED, REFUSED = "queued", "sending", "sent", "failed", "refused"
STATUSES = (QUEUED, SENDING, SENT, FAILED, REFUSED)
FINAL = frozenset({SENT, FAILED, REFUSED})
ORIGINS = ("manual", "journey", "service")  # the usual ones; a caller may name its own
JOB_KIND = "messaging.send"
SENDING_DISABLED = "sending is disabled (THREADLINE_SMTP_HOST is not set): the message waits in the queue"
MAX_SUBJECT = 500
MAX_TEXT = 100_000
MAX_HTML = 500_000
MAX_ORIGIN = 40
LOG_LIMIT = 200
# Headers a caller may add to an email: threading (RFC 5322 3.6.4) for service replies. Anything else
# (From, To, List-Unsubscribe) is Threadline's to set.
EXTRA_HEADERS = ("In-Reply-To", "References")
MAX_HEADER = 2000
# Where a message on each channel goes: the trait the profile shows, else the identifier of that kind
# seen first. Social networks have no common id, so a `social_id` trait (or identifier kind) it is.
ADDRESS_KINDS = {
    "email": "email",
    "sms": "phone",
    "whatsapp": "phone",
    "wechat": "wechat_openid",
    "social": "social_id",
}
ADDRESS_NAMES = {"email": "email address", "phone": "phone number", "wechat_openid": "WeChat OpenID"}
MAX_ADDRESS = 320


@dataclass(frozen=True, slots=True)
class MessageView:
    """One outbound message as the delivery log shows it."""

    id: int
    profile_id: str
    channel: str
    purpose: str
    to_address: str | None
    subject: str
    body_text: str
    body_html: str | None
    status: str
    reason: str | None
    message_id_header: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    created_by: int | None
    origin: str
    send_after: datetime | None = None  # held for the customer's quiet hours until then
    tracked: bool = False  # went out with an open image and redirected links
    first_opened_at: datetime | None = None
    first_clicked_at: datetime | None = None

    @classmethod
    def of(cls, row: OutboundMessage) -> MessageView:
        return cls(
            row.id,
            row.profile_id,
            row.channel,
            row.purpose,
            row.to_address,
            row.subject,
            row.body_text,
            row.body_html,
            row.status,
            row.reason,
            row.message_id_header,
            row.attempts,
            row.created_at,
            row.sent_at,
            row.created_by,
            row.origin,
            row.send_after,
            bool(row.tracked),
            row.first_opened_at,
            row.first_clicked_at,
        )

    def as_dict(self, *, reveal: bool) -> dict[str, Any]:
        """For the API: without the pii permission the address is masked and the subject and bodies,
        which quote the customer's traits, are left out."""
        address = self.to_address
        if address is not None and not reveal:
            address = mask_email(address) if self.channel == "email" else _mask_other(self.channel, address)
        return {
            "id": self.id,
            "profile_id": self.profile_id,
            "channel": self.channel,
            "purpose": self.purpose,
            "to_address": address,
            "subject": self.subject if reveal else None,
            "body_text": self.body_text if reveal else None,
            "body_html": self.body_html if reveal else None,
            "status": self.status,
            "reason": self.reason,
            "message_id_header": self.message_id_header,
            "attempts": self.attempts,
            "created_at": _iso(self.created_at),
            "sent_at": _iso(self.sent_at),
            "created_by": self.created_by,
            "origin": self.origin,
            "send_after": _iso(self.send_after),
            "tracked": self.tracked,
            "first_opened_at": _iso(self.first_opened_at),
            "first_clicked_at": _iso(self.first_clicked_at),
        }


def _mask_other(channel: str, address: str) -> str:
    if ADDRESS_KINDS[channel] == "phone":
        return mask_phone(address)
    return f"{MASK}{address[-4:]}" if len(address) > 8 else MASK  # an id's tail, as masking does


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


def _choice(value: Any, field: str, choices: tuple[str, ...]) -> str:
    word = value.strip().lower() if isinstance(value, str) else value
    if word not in choices:
        raise Invalid(f"{field}: must be one of {', '.join(choices)}", details={"field": field})
    return str(word)


def _text(value: Any, field: str, limit: int, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(f"{field}: must be a string", details={"field": field})
    if required and not value.strip():
        raise Invalid(f"{field}: is required", details={"field": field})
    if len(value) > limit:
        raise Invalid(f"{field}: longer than {limit} characters", details={"field": field})
    return value


def readable_traits(settings: Settings, traits: dict[str, Any]) -> dict[str, Any]:
    """Traits in clear for the template; one that does not decrypt is left out (the template then
    names it as missing), rather than mailing its ciphertext."""
    cipher = trait_cipher(settings)
    if cipher is None:
        return dict(traits)
    readable = {}
    for key, value in traits.items():
        try:
            readable[key] = cipher.open(key, value)
        except CannotDecrypt:
            continue
    return readable


def _headers(value: Mapping[str, str] | None) -> dict[str, str] | None:
    if not value:
        return None
    checked = {}
    for name, text in value.items():
        if name not in EXTRA_HEADERS:
            raise Invalid(
                f"headers: {name} is not one of {', '.join(EXTRA_HEADERS)}", details={"field": "headers"}
            )
        if not isinstance(text, str) or len(text) > MAX_HEADER or "\r" in text or "\n" in text:
            raise Invalid(f"headers: {name} must be one line of message ids", details={"field": "headers"})
        if text.strip():
            checked[name] = text.strip()
    return checked or None


def email_address(session: Session, profile: Profile) -> str | None:
    """Where an email to the customer goes: the email trait the profile shows (its golden value),
    else the email identifier seen first."""
    return channel_address(session, profile, "email")


def channel_address(session: Session, profile: Profile, channel: str) -> str | None:
    """Where a message on `channel` goes (ADDRESS_KINDS): the trait the profile shows (its golden
    value), else the identifier of that kind seen first."""
    kind = ADDRESS_KINDS[channel]
    shown = (profile.traits or {}).get(kind)
    if isinstance(shown, str) and shown.strip() and (kind != "email" or "@" in shown):
        return shown.strip()
    return session.scalar(
        select(Identity.value)
        .where(Identity.profile_id == profile.id, Identity.kind == kind)
        .order_by(Identity.first_seen, Identity.id)
        .limit(1)
    )


def sending_disabled(settings: Settings, channel: str) -> str | None:
    """Why this process cannot send on `channel` (no relay or provider configured), else None."""
    if channel == "email":
        return None if settings.smtp_host else SENDING_DISABLED
    return None if webhook_url(settings, channel) else disabled_reason(channel)


def send_message(
    db: Database,
    settings: Settings,
    viewer: Viewer,
    profile_id: str,
    *,
    purpose: str,
    subject: str,
    body_text: str,
    body_html: str | None = None,
    channel: str = "email",
    origin: str = "manual",
    created_by: int | None = None,
    headers: Mapping[str, str] | None = None,
    templated: bool = True,
    variables: Mapping[str, Any] | None = None,
    on_stored: Callable[[Session, MessageView], None] | None = None,
    to_address: str | None = None,
    now: datetime,
) -> MessageView:
    """Ask for a message to a customer. Stored `queued` (a job sends it, checking consent again) or
    `refused` with the consent decision's reason, or "frequency cap" (nothing is sent, the timeline
    says so). Inside the customer's quiet hours a non-service message is queued with `send_after`,
    its job due then (quiet_hours.py).

    Needs the edit permission and the customer in the viewer's write scope (journeys pass
    `Viewer.system()`); ProfileNotFound when out of scope. Subject and bodies are templates rendered
    with the customer's traits; an error names the field (`body_text`). `templated=False` sends them as
    written (a service reply quoting the customer's `{{`). `headers`: In-Reply-To and References.
    `variables`: further template names beside `traits` (a journey's trigger event). `on_stored` runs in
    the transaction that stores the message, so a caller's own record of it (a journey's step log)
    commits with the message or not at all. `to_address` sends there instead of to the profile's own
    address for the channel (a service reply answers the number the customer wrote from). The subject
    is required for email only: an SMS has none, and it is kept for the delivery log."""
    channel = _choice(channel, "channel", CHANNELS)
    purpose = _choice(purpose, "purpose", PURPOSES)
    origin = _text(origin, "origin", MAX_ORIGIN, required=True).strip()
    subject = _text(subject, "subject", MAX_SUBJECT, required=channel == "email")
    body_text = _text(body_text, "body_text", MAX_TEXT, required=True)
    body_html = _text(body_html, "body_html", MAX_HTML, required=False) or None
    extra_headers = _headers(headers) if channel == "email" else None
    given_address = _text(to_address, "to_address", MAX_ADDRESS, required=False).strip() or None
    if not viewer.can("edit"):
        raise Forbidden("sending a message needs the edit permission")
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        writable = select(Profile.id).where(Profile.id == live, customer_write_filter(viewer))
        if session.scalar(writable) is None:
            raise Forbidden("this customer is shared with you read-only")
        profile = session.get(Profile, live)
        assert profile is not None
        address = given_address or channel_address(session, profile, channel)
        traits = readable_traits(settings, profile.traits or {})
    if address is None:
        what = ADDRESS_NAMES.get(ADDRESS_KINDS[channel], f"{ADDRESS_KINDS[channel]} trait or identifier")
        raise Invalid(f"channel: the customer has no {what}", details={"field": "channel"})
    if templated:
        rendered_subject = " ".join(render("subject", subject, traits, variables=variables).split())
        if not rendered_subject and channel == "email":
            raise InvalidTemplate("subject", "is empty once written for this customer")
        rendered_text = render("body_text", body_text, traits, variables=variables)
        rendered_html = (
            None
            if body_html is None
            else render("body_html", body_html, traits, html=True, variables=variables)
        )
    else:
        rendered_subject, rendered_text, rendered_html = " ".join(subject.split()), body_text, body_html

    hold = quiet_hold(settings, purpose, traits, now)
    with db.write() as session:
        # Consent first (its refusal says most), then the cap; quiet hours only delay.
        decision = check_send(session, live, channel, purpose)
        capped = cap_reached(session, settings, live, channel, purpose, now) if decision.allowed else None
        reason: str | None
        if not decision.allowed:
            status, reason = REFUSED, decision.explanation
        elif capped:
            status, reason = REFUSED, capped
        else:
            status, reason = QUEUED, (hold.reason if hold else None) or sending_disabled(settings, channel)
        send_after = hold.until if hold is not None and status == QUEUED else None
        row = OutboundMessage(
            profile_id=live,
            channel=channel,
            purpose=purpose,
            to_address=address,
            subject=rendered_subject[:MAX_SUBJECT],
            body_text=rendered_text,
            body_html=rendered_html,
            status=status,
            reason=reason,
            attempts=0,
            created_at=now,
            updated_at=now,
            created_by=created_by,
            origin=origin,
            headers=extra_headers,
            send_after=send_after,
        )
        session.add(row)
        session.flush()
        view = MessageView.of(row)
        if on_stored is not None:
            on_stored(session, view)
    if status == QUEUED:
        # Queued even when this process cannot send: `threadline worker` processes may have the relay.
        # (Between the commit above and this one, a crash would leave the message queued without a
        # job; see docs/messaging.md.)
        enqueue(
            db,
            JOB_KIND,
            {"message_id": view.id},
            now=now,
            run_at=send_after,
            dedupe_key=f"{JOB_KIND}:{view.id}",
            max_attempts=settings.job_max_attempts,
        )
    else:
        record_outcome(
            db,
            settings,
            message_id=view.id,
            profile_id=live,
            outcome=REFUSED,
            channel=channel,
            purpose=purpose,
            subject=view.subject,
            origin=origin,
            reason=reason,
            now=now,
        )
    return view


def delivery_log(
    db: Database, profile_id: str, *, viewer: Viewer, limit: int = 50
) -> tuple[str, list[MessageView]]:
    """The customer's live profile ID and their messages, newest first (also those asked for under an
    ID since merged into it); ProfileNotFound when out of the viewer's scope."""
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        ids = [live, *session.scalars(select(Profile.id).where(Profile.merged_into == live))]
        rows = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.profile_id.in_(ids))
            .order_by(OutboundMessage.created_at.desc(), OutboundMessage.id.desc())
            .limit(min(max(limit, 1), LOG_LIMIT))
        )
        return live, [MessageView.of(row) for row in rows]


def send_decisions(
    db: Database, profile_id: str, *, viewer: Viewer, channel: str = "email"
) -> tuple[str, dict[str, SendDecision]]:
    """What the consent check answers now for each purpose on `channel`: shown before sending."""
    channel = _choice(channel, "channel", CHANNELS)
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        return live, {purpose: check_send(session, live, channel, purpose) for purpose in PURPOSES}
