"""Workspace users: who they are, their role, their password, and whether they may sign in.

Passwords are argon2 hashes (pwdlib). Signing in, with its lockout, lives in signin.py; the sessions it
starts in sessions.py; personal API tokens in tokens.py; invitations in invites.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from pwdlib import PasswordHash
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from threadline.errors import Conflict, Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import ApiToken, Team, User, UserSession

ROLES = ("admin", "manager", "agent", "analyst")
# One rule for every way a password is set: `users create`, the invite page and the password change.
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHash.recommended()


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    email: str
    role: str
    is_active: bool
    name: str | None = None
    team_id: int | None = None


@dataclass(frozen=True, slots=True)
class UserListing:
    """A row of the admin's user list."""

    id: int
    email: str
    name: str | None
    role: str
    team: str | None
    is_active: bool
    invited: bool  # no password yet: the invitation has not been accepted
    last_login_at: datetime | None
    locked_until: datetime | None


def info_of(user: User) -> UserInfo:
    return UserInfo(user.id, user.email, user.role, user.is_active, user.name, user.team_id)


def revoke_sessions(session: Session, user_id: int, *, now: datetime, keep: str | None = None) -> int:
    """End the user's open sessions (all but `keep`, a session's id) in the caller's transaction.

    Here, not in sessions.py, because a password change and a deactivation end sessions in the same
    transaction as their own change; sessions.py uses it too. Returns how many ended.
    """
    query = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(UserSession.id != keep)
    return int(session.execute(query.values(revoked_at=now)).rowcount or 0)  # type: ignore[attr-defined]


def clean_email(email: str) -> str:
    try:
        return validate_email(
            email.strip(), check_deliverability=False, globally_deliverable=False
        ).normalized.lower()
    except EmailNotValidError as error:
        raise Invalid(f"email: {error}", details={"field": "email"}) from None


def check_role(role: str) -> None:
    if role not in ROLES:
        raise Invalid(f"role: must be one of {', '.join(ROLES)}", details={"field": "role"})


def check_password(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"{field}: must be at least {MIN_PASSWORD_LENGTH} characters", details={"field": field})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password: str, password_hash: str | None) -> bool:
    if not password_hash:
        _hasher.hash(password)  # spend the same time as a real check: no user enumeration by timing
        return False
    return _hasher.verify(password, password_hash)


def create_user(
    db: Database, email: str, role: str, password: str | None, *, now: datetime, name: str | None = None
) -> UserInfo:
    email = clean_email(email)
    check_role(role)
    if password is not None:
        check_password(password)
    with db.write() as session:
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            raise Conflict(f"email: a user {email} already exists", details={"field": "email"})
        user = User(
            email=email,
            name=(name or "").strip() or None,
            role=role,
            password_hash=hash_password(password) if password else None,
            is_active=True,
            created_at=now,
            failed_logins=0,
            password_changed_at=now,
        )
        session.add(user)
        session.flush()
        return info_of(user)


def verify_password(db: Database, email: str, password: str) -> UserInfo | None:
    """The active user with this email and password, else None (same answer for both failures).

    No lockout here: the sign-in page uses `sign_in`, which counts failures.
    """
    try:
        email = clean_email(email)
    except Invalid:
        return None
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active:
        password_matches(password, None)
        return None
    return info_of(user) if password_matches(password, user.password_hash) else None


def get_user(db: Database, user_id: int) -> UserInfo | None:
    """The user if they may still use the workspace (active); None for deactivated or unknown users."""
    with db.read() as session:
        user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    return info_of(user)


def count_users(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def list_users(db: Database) -> list[UserListing]:
    with db.read() as session:
        rows = session.execute(
            select(User, Team.name).outerjoin(Team, Team.id == User.team_id).order_by(User.email)
        ).all()
    return [
        UserListing(
            u.id,
            u.email,
            u.name,
            u.role,
            team,
            u.is_active,
            u.password_hash is None,
            u.last_login_at,
            u.locked_until,
        )
        for u, team in rows
    ]


def change_password(db: Database, user_id: int, current: str, new: str, *, now: datetime) -> UserInfo:
    """Set a new password after checking the current one. Every session of the user ends with it, in the
    same transaction: the page that changed it starts a new one for its own browser (a rotation)."""
    check_password(new, "new_password")
    with db.read() as session:
        user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound("no such user")
    # Hashing outside the write transaction: argon2 is slow and SQLite has a single writer.
    if not password_matches(current, user.password_hash):
        raise Invalid("current_password: is not right", details={"field": "current_password"})
    if current == new:
        raise Invalid(
            "new_password: must differ from the current password", details={"field": "new_password"}
        )
    new_hash = hash_password(new)
    with db.write() as session:
        row = session.get(User, user_id, with_for_update=True)
        if row is None or row.password_hash != user.password_hash:
            raise Conflict(
                "the password changed meanwhile; sign in again", details={"field": "current_password"}
            )
        row.password_hash = new_hash
        row.password_changed_at = now
        row.failed_logins = 0
        row.locked_until = None
        revoke_sessions(session, row.id, now=now)
        # audit: password changed (user row.id, by themself)
        return info_of(row)


def _one_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound(f"no user {user_id}", details={"field": "id"})
    return user


def _active_admins(session: Session) -> int:
    count = session.scalar(
        select(func.count()).select_from(User).where(User.role == "admin", User.is_active.is_(True))
    )
    return int(count or 0)


def set_active(db: Database, user_id: int, active: bool, *, by: int, now: datetime) -> UserInfo:
    """Deactivate or reactivate a user. Deactivation takes effect on their very next request: the
    session check and the token check both read is_active, and their sessions and API tokens are
    revoked."""
    with db.write() as session:
        user = _one_user(session, user_id)
        if not active and user.id == by:
            raise Conflict("you cannot deactivate yourself", details={"field": "id"})
        if not active and user.role == "admin" and user.is_active and _active_admins(session) <= 1:
            raise Conflict("the last active admin cannot be deactivated", details={"field": "id"})
        user.is_active = active
        if not active:
            # Revoked, not merely suspended: a reactivated user signs in afresh and makes new tokens
            # rather than finding old ones (perhaps copied elsewhere) working again.
            revoke_sessions(session, user.id, now=now)
            session.execute(
                update(ApiToken)
                .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        else:
            user.failed_logins = 0
            user.locked_until = None
        # audit: user deactivated / reactivated (object user.id, by `by`)
        return info_of(user)


def change_role(db: Database, user_id: int, role: str, *, by: int) -> UserInfo:
    check_role(role)
    with db.write() as session:
        user = _one_user(session, user_id)
        if user.role == "admin" and role != "admin" and user.is_active and _active_admins(session) <= 1:
            raise Conflict("the last active admin must stay an admin", details={"field": "role"})
        user.role = role
        # audit: role changed (object user.id, from -> to, by `by`)
        return info_of(user)


def user_by_email(db: Database, email: str) -> UserInfo:
    email = clean_email(email)
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == email))
    if user is None:
        raise NotFound(f"email: no user {email}", details={"field": "email"})
    return info_of(user)
