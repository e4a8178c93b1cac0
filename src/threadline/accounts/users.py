"""Users and their personal API tokens (bearer tokens for the REST API).

Tokens are shown once and stored as SHA-256 digests: a leaked database does not leak working tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from pwdlib import PasswordHash
from sqlalchemy import func, select, update

from threadline.errors import Conflict, Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import ApiToken, User

ROLES = ("admin", "manager", "agent", "analyst")
TOKEN_PREFIX = "tl_"
USAGE_RESOLUTION = timedelta(minutes=1)
_hasher = PasswordHash.recommended()


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    email: str
    role: str
    is_active: bool


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _clean_email(email: str) -> str:
    try:
        return validate_email(
            email.strip(), check_deliverability=False, globally_deliverable=False
        ).normalized.lower()
    except EmailNotValidError as error:
        raise Invalid(f"email: {error}", details={"field": "email"}) from None


def create_user(db: Database, email: str, role: str, password: str | None, *, now: datetime) -> UserInfo:
    email = _clean_email(email)
    if role not in ROLES:
        raise Invalid(f"role: must be one of {', '.join(ROLES)}", details={"field": "role"})
    if password is not None and len(password) < 8:
        raise Invalid("password: must be at least 8 characters", details={"field": "password"})
    with db.write() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            raise Conflict(f"email: a user {email} already exists", details={"field": "email"})
        user = User(
            email=email,
            role=role,
            password_hash=_hasher.hash(password) if password else None,
            is_active=True,
            created_at=now,
        )
        session.add(user)
        session.flush()
        return UserInfo(user.id, user.email, user.role, user.is_active)


def verify_password(db: Database, email: str, password: str) -> UserInfo | None:
    """The active user with this email and password, else None (same answer for both failures)."""
    try:
        email = _clean_email(email)
    except Invalid:
        return None
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active or not user.password_hash:
        _hasher.hash(password)  # spend the same time as a real check: no user enumeration by timing
        return None
    if not _hasher.verify(password, user.password_hash):
        return None
    return UserInfo(user.id, user.email, user.role, user.is_active)


def get_user(db: Database, user_id: int) -> UserInfo | None:
    with db.read() as session:
        user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    return UserInfo(user.id, user.email, user.role, user.is_active)


def count_users(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def create_token(db: Database, email: str, *, now: datetime, name: str = "cli") -> str:
    email = _clean_email(email)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.write() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None or not user.is_active:
            raise NotFound(f"email: no active user {email}", details={"field": "email"})
        session.add(ApiToken(user_id=user.id, token_hash=_digest(token), name=name, created_at=now))
    return token


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
    return UserInfo(user.id, user.email, user.role, user.is_active)
