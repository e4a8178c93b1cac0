"""Signing in with a password, and the lockout after repeated failures.

After `max_failures` wrong passwords in a row an account locks for `period`; while locked even the right
password is refused. The lock ends by itself: the next failure after it starts a fresh count. Success
resets the count and records `last_login_at`.

An email that belongs to nobody must not be told apart from one that does, so failures for unknown
emails are counted too and lock with the same message and timing. They are kept in `sign_in_failures`,
shared by every server process, under an HMAC of the email (keyed with the workspace secret): a
leaked table does not list the addresses people typed. Rows a day old (or older than a lock) are pruned
as new failures come in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from threadline.accounts.users import UserInfo, clean_email, info_of, password_matches
from threadline.errors import Invalid
from threadline.storage import Database
from threadline.storage.models import SignInFailure, User

# A stranger's count is forgotten after a day without failures (or after the lock, if locks are longer).
STRANGER_MEMORY = timedelta(days=1)
PRUNE_BATCH = 100  # rows deleted per failure at most: pruning never makes one sign-in slow


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5
    period: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """`user` when the password was right; otherwise `locked_until` says whether a lock is why."""

    user: UserInfo | None
    locked_until: datetime | None = None


def _count_failure(
    failures: int, locked_until: datetime | None, *, now: datetime, policy: LockoutPolicy
) -> tuple[int, datetime | None]:
    """One more failure on an account that is not locked now: the new count and lock."""
    failures = 1 if locked_until is not None else failures + 1  # an expired lock starts a fresh count
    return failures, (now + policy.period if failures >= policy.max_failures else None)


def stranger_key(email: str, secret: str) -> str:
    return hmac.new(secret.encode(), email.encode(), hashlib.sha256).hexdigest()


def _prune_strangers(session: Session, *, now: datetime, policy: LockoutPolicy) -> None:
    # Rows are only written while not locked, so a row last written before the cutoff has no lock left.
    # SKIP LOCKED (PostgreSQL; SQLite has one writer anyway): two prunes never wait for each other.
    cutoff = now - max(STRANGER_MEMORY, policy.period)
    stale = (
        select(SignInFailure.key)
        .where(SignInFailure.updated_at < cutoff)
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(delete(SignInFailure).where(SignInFailure.key.in_(stale.scalar_subquery())))


def _fail_stranger(db: Database, key: str, *, now: datetime, policy: LockoutPolicy) -> SignInOutcome:
    """Count a failure for an email without a user, in the same way and transaction shape as a user's."""
    with db.write() as session:
        insert = postgresql_insert if db.dialect == "postgresql" else sqlite_insert
        # Two processes may meet the same new stranger at once: the second insert waits for the first
        # and does nothing, and both then count on the one row, locked for update.
        session.execute(
            insert(SignInFailure)
            .values(key=key, failures=0, locked_until=None, updated_at=now)
            .on_conflict_do_nothing(index_elements=[SignInFailure.key])
        )
        row = session.get(SignInFailure, key, with_for_update=True)
        assert row is not None
        if row.locked_until is not None and row.locked_until > now:
            return SignInOutcome(None, row.locked_until)
        row.failures, row.locked_until = _count_failure(
            row.failures, row.locked_until, now=now, policy=policy
        )
        row.updated_at = now
        _prune_strangers(session, now=now, policy=policy)
        return SignInOutcome(None, row.locked_until)


def sign_in(
    db: Database,
    email: str,
    password: str,
    *,
    now: datetime,
    policy: LockoutPolicy,
    secret: str,
) -> SignInOutcome:
    """`secret` keys the digest under which an unknown email's failures are counted: the same in every
    process of the workspace (THREADLINE_SECRET_KEY), so that they all count together."""
    try:
        email = clean_email(email)
    except Invalid:
        email = email.strip().lower()  # cannot belong to a user, but counts like any other stranger
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == email))
    if user is None:
        password_matches(password, None)
        return _fail_stranger(db, stranger_key(email, secret), now=now, policy=policy)
    if user.locked_until is not None and user.locked_until > now:
        password_matches(password, None)  # the same time as a real check: a lock is not a shortcut
        return SignInOutcome(None, user.locked_until)
    # Hash outside the write transaction: argon2 takes a while and SQLite has a single writer.
    right = password_matches(password, user.password_hash) and user.is_active
    with db.write() as session:
        row = session.get(User, user.id, with_for_update=True)
        if row is None:
            return SignInOutcome(None)
        if row.locked_until is not None and row.locked_until > now:  # locked by a concurrent attempt
            return SignInOutcome(None, row.locked_until)
        if right:
            row.failed_logins = 0
            row.locked_until = None
            row.last_login_at = now
            # audit: signed in (user row.id)
            return SignInOutcome(info_of(row))
        row.failed_logins, row.locked_until = _count_failure(
            row.failed_logins or 0, row.locked_until, now=now, policy=policy
        )
        # audit: failed sign-in (user row.id); and when row.locked_until was just set: account locked
        return SignInOutcome(None, row.locked_until)
