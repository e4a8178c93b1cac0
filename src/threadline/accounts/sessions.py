"""Workspace sessions: a row per signed-in browser, so that signing out really ends a session.

The browser's cookie (signed by Starlette, see web/session.py) carries a random secret; the database keeps
only its SHA-256 digest, as the row's key, so a leaked table or backup signs nobody in. Every page
request reads that row joined to its user (one primary-key lookup) and needs it open, recent and the
user active. `last_seen_at` moves at most once a minute, so reading pages does not mean writing.

A session ends when its browser signs out; when its user ends it from another session at /account; when
the password changes (all of them: the browser that changed it gets a new one, users.change_password);
when the user is deactivated (users.set_active); and after `SESSION_IDLE_LIMIT` without a request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from threadline.accounts.users import UserInfo, info_of, revoke_sessions
from threadline.errors import NotFound
from threadline.storage import Database
from threadline.storage.models import User, UserSession

SEEN_RESOLUTION = timedelta(minutes=1)
# The cookie's max age too (app.py): a session idle this long is over on both sides at once.
SESSION_IDLE_LIMIT = timedelta(days=14)
MAX_USER_AGENT = 300  # the columns' widths
MAX_IP = 64


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """An open session as its owner sees it at /account."""

    id: str  # the stored digest: it names the session in a form but cannot sign anyone in
    created_at: datetime
    last_seen_at: datetime
    ip: str | None
    user_agent: str | None
    browser: str | None  # "Firefox", "Chrome", ... read from the user agent
    system: str | None  # "Windows", "macOS", "Android", ...
    current: bool  # the session this list was asked for from


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started: `secret` goes into the browser's cookie and is stored nowhere else."""

    secret: str
    id: str


def session_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# Most specific first: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Version/[\d.]+.*Safari/")),
)
_SYSTEMS = (
    ("Windows", re.compile(r"Windows")),
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux")),
)
_PRODUCT = re.compile(r"^([A-Za-z][\w.-]*)/")  # a script's "curl/8.5", "python-httpx/0.28"


def _describe(user_agent: str | None) -> tuple[str | None, str | None]:
    if not user_agent:
        return None, None
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    if browser is None and system is None and (product := _PRODUCT.match(user_agent)):
        browser = product.group(1)
    return browser, system


def _info(row: UserSession, current: str | None) -> SessionInfo:
    browser, system = _describe(row.user_agent)
    return SessionInfo(
        row.id,
        row.created_at,
        row.last_seen_at,
        row.ip,
        row.user_agent,
        browser,
        system,
        row.id == current,
    )


def _is_open(row: UserSession, now: datetime) -> bool:
    return row.revoked_at is None and now - row.last_seen_at <= SESSION_IDLE_LIMIT


def start_session(
    db: Database, user_id: int, *, now: datetime, ip: str | None, user_agent: str | None
) -> NewSession:
    """A new session for a user who just proved who they are (signed in, accepted an invitation,
    changed their password)."""
    secret = secrets.token_urlsafe(32)
    key = session_key(secret)
    with db.write() as session:
        # The user's ended sessions go now: nothing reads them again, and this bounds the rows per user.
        session.execute(
            delete(UserSession).where(
                UserSession.user_id == user_id,
                or_(UserSession.revoked_at.is_not(None), UserSession.last_seen_at < now - SESSION_IDLE_LIMIT),
            )
        )
        session.add(
            UserSession(
                id=key,
                user_id=user_id,
                created_at=now,
                last_seen_at=now,
                ip=ip[:MAX_IP] if ip else None,
                user_agent=user_agent[:MAX_USER_AGENT] if user_agent else None,
            )
        )
    return NewSession(secret, key)


def session_user(db: Database, secret: str, *, now: datetime) -> UserInfo | None:
    """The user of an open session, or None: unknown, ended, idle too long, or the user deactivated."""
    key = session_key(secret)
    with db.read() as session:
        found = session.execute(
            select(User, UserSession)
            .join(UserSession, UserSession.user_id == User.id)
            .where(UserSession.id == key)
        ).first()
    if found is None:
        return None
    user, row = found
    if not user.is_active or not _is_open(row, now):
        return None
    # At most one write a minute per session: a write per page would queue every read behind ingestion.
    if now - row.last_seen_at >= SEEN_RESOLUTION:
        with db.write() as session:
            session.execute(
                update(UserSession)
                .where(UserSession.id == key, UserSession.revoked_at.is_(None))
                .values(last_seen_at=now)
            )
    return info_of(user)


def end_session(db: Database, secret: str, *, now: datetime) -> int | None:
    """Sign-out: the session of this secret ends. Returns its user's id if it was still open."""
    with db.write() as session:
        row = session.get(UserSession, session_key(secret), with_for_update=True)
        if row is None or row.revoked_at is not None:
            return None
        row.revoked_at = now
        return row.user_id


def revoke_session(db: Database, session_id: str, *, user_id: int, now: datetime) -> SessionInfo:
    """End one of the user's own sessions by its id (from `list_sessions`). Someone else's, or one
    that is not open, answers NotFound, the same as an id that does not exist."""
    with db.write() as session:
        row = session.get(UserSession, session_id, with_for_update=True)
        if row is None or row.user_id != user_id or not _is_open(row, now):
            raise NotFound("no such session", details={"field": "id"})
        row.revoked_at = now
        return _info(row, None)


def revoke_other_sessions(db: Database, user_id: int, *, keep_secret: str, now: datetime) -> int:
    """Sign out everywhere else: every open session of the user but this one ends. Returns how many."""
    with db.write() as session:
        return revoke_sessions(session, user_id, now=now, keep=session_key(keep_secret))


def list_sessions(
    db: Database, user_id: int, *, now: datetime, current_secret: str | None = None
) -> list[SessionInfo]:
    """The user's open sessions, most recently used first; `current` marks the one of `current_secret`."""
    current = session_key(current_secret) if current_secret else None
    with db.read() as session:
        rows = session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.revoked_at.is_(None),
                UserSession.last_seen_at >= now - SESSION_IDLE_LIMIT,
            )
            .order_by(UserSession.last_seen_at.desc(), UserSession.created_at.desc())
        ).all()
    return [_info(row, current) for row in rows]
