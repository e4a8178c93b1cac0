"""Personal API tokens: bearer tokens for the REST API, one user each.

Tokens are shown once and stored as SHA-256 digests: a leaked database does not leak working tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from threadline.accounts.users import UserInfo, clean_email, info_of
from threadline.errors import Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import ApiToken, User

TOKEN_PREFIX = "tl_"
USAGE_RESOLUTION = timedelta(minutes=1)
MAX_NAME = 100  # the column's width


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: `secret` exists only here, never again."""

    info: TokenInfo
    secret: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.created_at, row.last_used_at, row.revoked_at)


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise Invalid(f"name: must be 1 to {MAX_NAME} characters", details={"field": "name"})
    return name


def issue_token(db: Database, user_id: int, name: str, *, now: datetime) -> NewToken:
    name = _clean_name(name)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.write() as session:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise NotFound("no active user", details={"field": "user"})
        row = ApiToken(user_id=user.id, token_hash=_digest(secret), name=name, created_at=now)
        session.add(row)
        session.flush()
        return NewToken(_info(row), secret)


def create_token(db: Database, email: str, *, now: datetime, name: str = "cli") -> str:
    """A new token for the user with this email (the CLI's way in); returns the secret."""
    email = clean_email(email)
    with db.read() as session:
        user_id = session.scalar(select(User.id).where(User.email == email, User.is_active.is_(True)))
    if user_id is None:
        raise NotFound(f"email: no active user {email}", details={"field": "email"})
    return issue_token(db, user_id, name, now=now).secret


def list_tokens(db: Database, user_id: int, *, include_revoked: bool = False) -> list[TokenInfo]:
    query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    with db.read() as session:
        return [_info(row) for row in session.scalars(query)]


def revoke_token(db: Database, token_id: int, *, now: datetime, user_id: int | None = None) -> TokenInfo:
    """Revoke a token. With `user_id`, only that user's own: someone else's answers NotFound, the same
    as a token that does not exist, so IDs cannot be probed."""
    with db.write() as session:
        row = session.get(ApiToken, token_id, with_for_update=True)
        if row is None or (user_id is not None and row.user_id != user_id):
            raise NotFound(f"no token {token_id}", details={"field": "id"})
        if row.revoked_at is None:
            row.revoked_at = now
        return _info(row)


def authenticate_token(db: Database, token: str, *, now: datetime) -> UserInfo | None:
    with db.read() as session:
        row = session.execute(
            select(User, ApiToken.id, ApiToken.last_used_at)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None))
        ).first()
    if row is None or not row[0].is_active:
        return None
    user, token_id, last_used = row
    # Record use at most once a minute: a write per read would queue every API call behind ingestion.
    if last_used is None or now - last_used > USAGE_RESOLUTION:
        with db.write() as session:
            session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return info_of(user)
