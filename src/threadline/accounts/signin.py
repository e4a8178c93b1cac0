"""Signing in with a password, and the lockout after repeated failures.

After `max_failures` wrong passwords in a row an account locks for `period`; while locked even the right
password is refused. The lock ends by itself: the next failure after it starts a fresh count. Success
resets the count and records `last_login_at`.

An email that belongs to nobody must not be told apart from one that does, so failures for unknown
emails are counted too (in memory, see `StrangerFailures`) and lock with the same message and timing.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from threadline.accounts.users import UserInfo, clean_email, info_of, password_matches
from threadline.errors import Invalid
from threadline.storage import Database
from threadline.storage.models import User


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    max_failures: int = 5
    period: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """`user` when the password was right; otherwise `locked_until` says whether a lock is why."""

    user: UserInfo | None
    locked_until: datetime | None = None


class StrangerFailures:
    """Failed sign-ins for emails without a user, so that they lock exactly like real accounts.

    Kept in memory, keyed by a digest of the email and bounded: it only has to make the answers look
    alike, and a restart forgetting it is harmless (nobody can sign in as a stranger anyway).
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()

    def fail(self, email: str, *, now: datetime, policy: LockoutPolicy) -> SignInOutcome:
        key = hashlib.sha256(email.encode()).hexdigest()
        with self._lock:
            failures, locked_until = self._seen.pop(key, (0, None))
            if locked_until is not None and locked_until > now:
                self._seen[key] = (failures, locked_until)
                return SignInOutcome(None, locked_until)
            failures, locked_until = _count_failure(failures, locked_until, now=now, policy=policy)
            self._seen[key] = (failures, locked_until)
            while len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
        return SignInOutcome(None, locked_until)


def _count_failure(
    failures: int, locked_until: datetime | None, *, now: datetime, policy: LockoutPolicy
) -> tuple[int, datetime | None]:
    """One more failure on an account that is not locked now: the new count and lock."""
    failures = 1 if locked_until is not None else failures + 1  # an expired lock starts a fresh count
    return failures, (now + policy.period if failures >= policy.max_failures else None)


def sign_in(
    db: Database,
    email: str,
    password: str,
    *,
    now: datetime,
    policy: LockoutPolicy,
    strangers: StrangerFailures,
) -> SignInOutcome:
    try:
        email = clean_email(email)
    except Invalid:
        email = email.strip().lower()  # cannot belong to a user, but counts like any other stranger
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == email))
    if user is None:
        password_matches(password, None)
        return strangers.fail(email, now=now, policy=policy)
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
