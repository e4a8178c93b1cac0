"""Unsubscribe links: one in every message Threadline sends, and what following one does.

The token names the customer, channel and purpose, signed with the privacy key (privacy/keys.py), not
the session secret, which may be random per process: a link in an email sent last year must still work
on another server. It does not expire, for the same reason. The signature is the whole credential, so
the page needs no login and the RFC 8058 one-click POST needs no CSRF token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import Connection

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.privacy.consent import (
    ALL,
    CHANNELS,
    PURPOSES,
    InvalidConsent,
    Statement,
    consent_state,
    record_consent,
)
from threadline.privacy.keys import privacy_key
from threadline.storage import Database

_SALT = "threadline.unsubscribe"
UNSUBSCRIBE_SOURCE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class UnsubscribeLink:
    profile_id: str
    channel: str
    purpose: str


def _serializer(conn: Connection, settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(
        privacy_key(conn, settings), salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )


def unsubscribe_token(
    conn: Connection, settings: Settings, profile_id: str, channel: str, purpose: str = "marketing"
) -> str:
    if channel not in (ALL, *CHANNELS):
        raise InvalidConsent("channel", f"use one of {', '.join((ALL, *CHANNELS))}")
    if purpose not in PURPOSES:
        raise InvalidConsent("purpose", f"use one of {', '.join(PURPOSES)}")
    return str(_serializer(conn, settings).dumps([profile_id, channel, purpose]))


def unsubscribe_url(
    conn: Connection,
    settings: Settings,
    base_url: str,
    profile_id: str,
    channel: str,
    purpose: str = "marketing",
) -> str:
    """The link for a message to `profile_id` on `channel`; also the List-Unsubscribe header's URL
    (with List-Unsubscribe-Post: List-Unsubscribe=One-Click)."""
    token = unsubscribe_token(conn, settings, profile_id, channel, purpose)
    return f"{base_url.rstrip('/')}/unsubscribe/{token}"


def read_unsubscribe_token(conn: Connection, settings: Settings, token: str) -> UnsubscribeLink:
    """The link's customer, channel and purpose; InvalidConsent("token") if forged or garbled."""
    try:
        loaded: Any = _serializer(conn, settings).loads(token)
    except BadData:
        raise InvalidConsent("token", "this unsubscribe link is not valid") from None
    if (
        not isinstance(loaded, list)
        or len(loaded) != 3
        or not all(isinstance(part, str) for part in loaded)
        or loaded[1] not in (ALL, *CHANNELS)
        or loaded[2] not in PURPOSES
    ):
        raise InvalidConsent("token", "this unsubscribe link is not valid")
    return UnsubscribeLink(*loaded)


def already_unsubscribed(db: Database, link: UnsubscribeLink) -> bool:
    """Whether the customer already refused this purpose on this channel (a second click changes nothing)."""
    state = consent_state(db, link.profile_id, viewer=Viewer.system())
    return bool(state["state"][link.purpose][link.channel]["status"] in ("denied", "withdrawn"))


def unsubscribe(
    db: Database, link: UnsubscribeLink, *, now: datetime, evidence: dict[str, Any]
) -> str | None:
    """Record `withdrawn` for the link's purpose and channel (source "unsubscribe"); returns the live
    profile it was recorded on, or None when the customer had refused already, so mail clients and
    double clicks do not fill the ledger. CustomerNotFound when the customer no longer exists."""
    if already_unsubscribed(db, link):
        return None
    said = Statement(link.purpose, link.channel, "withdrawn")
    return record_consent(
        db, Viewer.system(), link.profile_id, [said], source=UNSUBSCRIBE_SOURCE, now=now, evidence=evidence
    )
