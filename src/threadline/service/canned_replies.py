"""Canned replies: answers a team writes once and agents insert, with the customer's details filled in.

Kept in the workspace settings (key "service.canned_replies") as a list of `{"title", "body"}`. A body
is a template in threadline.messaging's sandbox, the customer's traits under `customer`:
`Hello {{ customer.first_name | default("there") }}`. It is written for the customer when the agent
picks it, into the reply box, where the agent reads and edits it before sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from threadline.config import Settings
from threadline.errors import Invalid
from threadline.messaging import InvalidTemplate, render
from threadline.privacy import CannotDecrypt, live_profile_id, trait_cipher
from threadline.storage import Database, put_setting
from threadline.storage.models import Profile, WorkspaceSetting

CANNED_REPLIES_KEY = "service.canned_replies"
MAX_REPLIES = 200
MAX_TITLE = 100
MAX_BODY = 20_000


@dataclass(frozen=True, slots=True)
class CannedReply:
    title: str
    body: str

    def as_dict(self) -> dict[str, str]:
        return {"title": self.title, "body": self.body}


def _checked(value: Any) -> list[CannedReply]:
    if not isinstance(value, list):
        raise Invalid("canned_replies: must be a list", details={"field": "canned_replies"})
    if len(value) > MAX_REPLIES:
        raise Invalid(f"canned_replies: at most {MAX_REPLIES}", details={"field": "canned_replies"})
    replies = []
    for number, item in enumerate(value):
        where = f"canned_replies[{number}]"
        if not isinstance(item, Mapping):
            raise Invalid(f"{where}: must have a title and a body", details={"field": where})
        title, body = item.get("title"), item.get("body")
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
            raise Invalid(f"{where}.title: 1 to {MAX_TITLE} characters", details={"field": f"{where}.title"})
        if not isinstance(body, str) or not body.strip() or len(body) > MAX_BODY:
            raise Invalid(f"{where}.body: 1 to {MAX_BODY} characters", details={"field": f"{where}.body"})
        _check_template(f"{where}.body", body)
        replies.append(CannedReply(title.strip(), body))
    return replies


def _check_template(field: str, body: str) -> None:
    """A syntax error is found when the reply is saved, not when an agent picks it; traits are not
    known yet, so a missing one is no error here."""
    try:
        render(field, body, {}, namespace="customer")
    except InvalidTemplate as error:
        if "has no trait" not in error.reason and "is not defined" not in error.reason:
            raise


def canned_replies(db: Database) -> list[CannedReply]:
    with db.read() as session:
        row = session.get(WorkspaceSetting, CANNED_REPLIES_KEY)
    if row is None or not isinstance(row.value, list):
        return []
    return [
        CannedReply(str(i.get("title", "")), str(i.get("body", ""))) for i in row.value if isinstance(i, dict)
    ]


def set_canned_replies(db: Database, value: Any, *, user_id: int | None, now: datetime) -> list[CannedReply]:
    replies = _checked(value)
    with db.write() as session:
        value = [r.as_dict() for r in replies]
        put_setting(session.connection(), CANNED_REPLIES_KEY, value, user_id=user_id, now=now)
    return replies


def fill_canned_reply(db: Database, settings: Settings, reply: CannedReply, profile_id: str) -> str:
    """The reply written for a customer (the live profile of `profile_id`; the caller has checked the
    scope); InvalidTemplate naming the trait when it needs one the customer lacks without a default."""
    with db.read() as session:
        live = live_profile_id(session.connection(), profile_id)
        profile = session.get(Profile, live)
        traits = dict(profile.traits or {}) if profile is not None else {}
    cipher = trait_cipher(settings)
    if cipher is not None:
        # As messaging's outbox does: a trait that does not decrypt is left out, never shown sealed.
        readable = {}
        for key, value in traits.items():
            try:
                readable[key] = cipher.open(key, value)
            except CannotDecrypt:
                continue
        traits = readable
    return render("body", reply.body, traits, namespace="customer")
