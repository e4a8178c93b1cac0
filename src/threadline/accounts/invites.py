"""Invitations: an admin adds a user without a password and passes them a link to choose one.

The link carries a token that is not stored anywhere: it is an HMAC (keyed with the workspace secret)
over the user's id, the time it was issued and the user's credential state, as Django's password-reset
tokens are. So it
- expires: the issue time is inside it and checked against `valid_for`;
- works once: accepting sets a password, which changes the state it was signed over;
- is replaced by a new link: re-inviting moves `password_changed_at`, which is part of that state.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from threadline.accounts.users import UserInfo, check_password, create_user, hash_password, info_of
from threadline.errors import Conflict, Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import User

_EPOCH = datetime(2000, 1, 1)
NOT_VALID = "this invitation link is not valid: it was used or replaced; ask an admin for a new one"
EXPIRED = "this invitation link has expired; ask an admin for a new one"


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation just issued: `token` is shown to the admin once and goes into /invite/<token>."""

    user: UserInfo
    token: str
    expires_at: datetime


def _signature(user: User, issued: int, secret: str) -> str:
    state = "|".join(
        (
            "invite",
            str(user.id),
            str(issued),
            user.email,
            user.password_hash or "",
            user.password_changed_at.isoformat() if user.password_changed_at else "",
        )
    )
    return hmac.new(secret.encode(), state.encode(), hashlib.sha256).hexdigest()[:40]


def _issue(user: User, *, now: datetime, secret: str, valid_for: timedelta) -> Invitation:
    issued = int((now - _EPOCH).total_seconds())
    token = f"{user.id}-{issued}-{_signature(user, issued, secret)}"
    return Invitation(info_of(user), token, _EPOCH + timedelta(seconds=issued) + valid_for)


def invite_user(
    db: Database,
    email: str,
    role: str,
    *,
    name: str | None,
    now: datetime,
    secret: str,
    valid_for: timedelta,
) -> Invitation:
    created = create_user(db, email, role, None, now=now, name=name)
    with db.read() as session:
        user = session.get(User, created.id)
        assert user is not None
    # audit: user invited (object created.id, role)
    return _issue(user, now=now, secret=secret, valid_for=valid_for)


def reissue_invitation(
    db: Database, user_id: int, *, now: datetime, secret: str, valid_for: timedelta
) -> Invitation:
    """A fresh link for someone who has not accepted yet; any earlier link stops working."""
    with db.write() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None or not user.is_active:
            raise NotFound(f"no active user {user_id}", details={"field": "id"})
        if user.password_hash is not None:
            raise Conflict("this user has already accepted their invitation", details={"field": "id"})
        user.password_changed_at = now
        session.flush()
        return _issue(user, now=now, secret=secret, valid_for=valid_for)


def _invited_user(
    session: Session, token: str, *, now: datetime, secret: str, valid_for: timedelta, lock: bool = False
) -> User:
    try:
        user_id, issued_text, signature = token.split("-")
        user, issued = session.get(User, int(user_id), with_for_update=lock), int(issued_text)
    except ValueError:
        raise Invalid(NOT_VALID, details={"field": "token"}) from None
    if (
        user is None
        or not user.is_active
        or user.password_hash is not None
        or not hmac.compare_digest(signature, _signature(user, issued, secret))
    ):
        raise Invalid(NOT_VALID, details={"field": "token"})
    if now > _EPOCH + timedelta(seconds=issued) + valid_for:
        raise Invalid(EXPIRED, details={"field": "token"})
    return user


def read_invitation(
    db: Database, token: str, *, now: datetime, secret: str, valid_for: timedelta
) -> UserInfo:
    """Who this invitation is for, if it may still be accepted; Invalid with the reason otherwise."""
    with db.read() as session:
        return info_of(_invited_user(session, token, now=now, secret=secret, valid_for=valid_for))


def accept_invitation(
    db: Database, token: str, password: str, *, now: datetime, secret: str, valid_for: timedelta
) -> UserInfo:
    check_password(password)
    password_hash = hash_password(password)  # before the transaction: argon2 is slow, SQLite has one writer
    with db.write() as session:
        user = _invited_user(session, token, now=now, secret=secret, valid_for=valid_for, lock=True)
        user.password_hash = password_hash
        user.password_changed_at = now
        user.last_login_at = now  # accepting signs them in
        # audit: invitation accepted, password set (user user.id)
        return info_of(user)
