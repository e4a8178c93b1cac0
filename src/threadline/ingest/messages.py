"""Segment Spec messages as they arrive on the wire: validation, identifiers, clock-skew correction.

Hand-written rather than a Pydantic model because each message needs a field-named error a sender can
act on ("traits.email: not a valid email address") and this runs for every event of every batch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from threadline.identity import (
    ANONYMOUS_ID,
    EMAIL,
    PHONE,
    USER_ID,
    Identifier,
    InvalidIdentifier,
    normalise,
)
from threadline.privacy import ConsentContext, InvalidConsent, TraitCipher, consent_from_context

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
MAX_ID_LENGTH = 200
MAX_MESSAGE_ID_LENGTH = 100
MAX_NAME_LENGTH = 200


class InvalidMessage(ValueError):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


@dataclass(slots=True)
class Message:
    type: str
    message_id: str
    timestamp: datetime
    sent_at: datetime | None
    user_id: str | None
    anonymous_id: str | None
    name: str | None
    properties: dict[str, Any]
    traits: dict[str, Any] | None
    context: dict[str, Any]
    identifiers: list[Identifier]
    profile_traits: dict[str, Any]
    previous_id: str | None = None
    group_id: str | None = None
    alias_candidates: list[Identifier] = field(default_factory=list)
    consent: ConsentContext | None = None  # context.consent, validated (privacy/consent.py)


@dataclass(frozen=True, slots=True)
class ParseOptions:
    region: str
    identifier_kinds: tuple[str, ...]
    received_at: datetime
    batch_sent_at: datetime | None = None
    batch_context: dict[str, Any] | None = None


def parse_time(value: Any, field: str) -> datetime | None:
    """ISO 8601 to naive UTC; a time without an offset is taken as UTC."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidMessage(field, "must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidMessage(field, f"not an ISO 8601 date-time: {value[:40]!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _object(raw: dict[str, Any], key: str, prefix: str = "") -> dict[str, Any] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidMessage(f"{prefix}{key}", "must be a JSON object")
    return value


def _id(raw: dict[str, Any], key: str, limit: int = MAX_ID_LENGTH) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidMessage(key, "must be a string")
    text = str(value).strip()
    if len(text) > limit:
        raise InvalidMessage(key, f"longer than {limit} characters")
    return text or None


def _identifiers_in(
    traits: dict[str, Any] | None, prefix: str, kinds: tuple[str, ...], region: str
) -> list[Identifier]:
    if not traits:
        return []
    found = []
    for kind in (EMAIL, PHONE, *kinds):
        raw = traits.get(kind)
        if raw is None or raw == "":
            continue
        try:
            found.append(normalise(kind, raw, region=region, field=f"{prefix}{kind}"))
        except InvalidIdentifier as error:
            raise InvalidMessage(error.field, error.reason) from None
    return found


def seal_message(message: Message, cipher: TraitCipher) -> None:
    """Encrypt the encrypted traits (THREADLINE_ENCRYPTED_TRAITS) wherever the message carries them:
    traits, properties, context.traits and the profile traits drawn from them. Done before anything
    stores the message, so no table holds their plaintext (threadline.privacy.encryption)."""
    if message.traits and cipher.needs_sealing(message.traits):
        message.traits = cipher.seal_traits(message.traits)
    if cipher.needs_sealing(message.properties):
        message.properties = cipher.seal_traits(message.properties)
    context_traits = message.context.get("traits")
    if isinstance(context_traits, dict) and cipher.needs_sealing(context_traits):
        message.context = {**message.context, "traits": cipher.seal_traits(context_traits)}
    if cipher.needs_sealing(message.profile_traits):
        message.profile_traits = cipher.seal_traits(message.profile_traits)


def seal_raw(raw: Any, cipher: TraitCipher) -> Any:
    """A rejected message as the quarantine keeps it, with the encrypted traits encrypted too."""
    if not isinstance(raw, dict):
        return raw
    sealed = dict(raw)
    for key in ("traits", "properties"):
        if isinstance(raw.get(key), dict):
            sealed[key] = cipher.seal_traits(raw[key])
    context = raw.get("context")
    if isinstance(context, dict) and isinstance(context.get("traits"), dict):
        sealed["context"] = {**context, "traits": cipher.seal_traits(context["traits"])}
    return sealed


def parse_message(raw: Any, options: ParseOptions, *, forced_type: str | None = None) -> Message:
    """Validate one message; raises InvalidMessage naming the first field that is wrong."""
    if not isinstance(raw, dict):
        raise InvalidMessage(None, "a message must be a JSON object")
    kind = forced_type or raw.get("type")
    if kind not in MESSAGE_TYPES:
        raise InvalidMessage("type", f"must be one of {', '.join(MESSAGE_TYPES)}")

    message_id = _id(raw, "messageId", MAX_MESSAGE_ID_LENGTH) or f"tl-{uuid.uuid4().hex}"
    user_id = _id(raw, "userId")
    anonymous_id = _id(raw, "anonymousId")
    traits = _object(raw, "traits")
    properties = _object(raw, "properties") or {}
    context = _object(raw, "context")
    if options.batch_context:
        context = {**options.batch_context, **(context or {})}
    context = context or {}
    context_traits = _object(context, "traits", "context.")
    if "device" in context and not isinstance(context["device"], dict):
        raise InvalidMessage("context.device", "must be a JSON object")
    consent = None
    if context.get("consent") is not None:  # one dict lookup for the many messages without consent
        try:
            consent = consent_from_context(context["consent"])
        except InvalidConsent as error:
            raise InvalidMessage(error.field, error.reason) from None

    name: str | None = None
    if kind == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise InvalidMessage("event", "is required for track and must be a non-empty string")
        name = event.strip()
    elif kind in ("page", "screen"):
        page_name = raw.get("name")
        if page_name is not None and not isinstance(page_name, str):
            raise InvalidMessage("name", "must be a string")
        name = page_name
        category = raw.get("category")
        if isinstance(category, str) and "category" not in properties:
            properties = {**properties, "category": category}
    if name is not None and len(name) > MAX_NAME_LENGTH:
        raise InvalidMessage(
            "event" if kind == "track" else "name", f"longer than {MAX_NAME_LENGTH} characters"
        )

    timestamp = parse_time(raw.get("timestamp"), "timestamp")
    sent_at = parse_time(raw.get("sentAt"), "sentAt") or options.batch_sent_at
    received = options.received_at
    if timestamp is None:
        timestamp = received
    elif sent_at is not None:
        # Segment's clock-skew correction: the device's clock may be wrong, but the gap between the
        # event and the send is right, so anchor it on our receive time.
        timestamp = timestamp + (received - sent_at)

    region, kinds = options.region, options.identifier_kinds
    identifiers: list[Identifier] = []
    if user_id:
        identifiers.append(Identifier(USER_ID, user_id))
    if anonymous_id:
        identifiers.append(Identifier(ANONYMOUS_ID, anonymous_id))
    person_traits = traits if kind == "identify" else None
    identifiers += _identifiers_in(person_traits, "traits.", kinds, region)
    identifiers += _identifiers_in(context_traits, "context.traits.", kinds, region)
    device = context.get("device")
    if "device_id" in kinds and isinstance(device, dict) and device.get("id"):
        try:
            identifiers.append(normalise("device_id", device["id"], region=region, field="context.device.id"))
        except InvalidIdentifier as error:
            raise InvalidMessage(error.field, error.reason) from None

    previous_id = group_id = None
    alias_candidates: list[Identifier] = []
    if kind == "alias":
        previous_id = _id(raw, "previousId")
        if not previous_id:
            raise InvalidMessage("previousId", "is required for alias")
        if not user_id:
            raise InvalidMessage("userId", "is required for alias")
        alias_candidates = [Identifier(USER_ID, previous_id), Identifier(ANONYMOUS_ID, previous_id)]
    elif kind == "group":
        group_id = _id(raw, "groupId")
        if not group_id:
            raise InvalidMessage("groupId", "is required for group")

    if not identifiers:
        raise InvalidMessage(
            "userId",
            "a message needs userId or anonymousId (or an email, phone or other identifier in traits)",
        )

    profile_traits = dict(context_traits or {})
    if person_traits:
        profile_traits.update(person_traits)
    # The profile shows an email or phone as it matches, not as it was typed on each channel: one
    # spelling, and no history rows for "+1 (415) 555-0100" vs "415-555-0100".
    for ident in reversed(identifiers):  # traits are applied after context.traits: they win
        if ident.kind in (EMAIL, PHONE) and ident.kind in profile_traits:
            profile_traits[ident.kind] = ident.value

    return Message(
        type=kind,
        message_id=message_id,
        timestamp=timestamp,
        sent_at=sent_at,
        user_id=user_id,
        anonymous_id=anonymous_id,
        name=name,
        properties=properties,
        traits=traits,
        context=context,
        identifiers=identifiers,
        profile_traits=profile_traits,
        previous_id=previous_id,
        group_id=group_id,
        alias_candidates=alias_candidates,
        consent=consent,
    )
