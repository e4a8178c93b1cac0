"""A user's language and time zone for the workspace.

Both are optional: an empty locale follows the browser's Accept-Language, an empty time zone follows
THREADLINE_TIMEZONE. Which languages exist is the interface's business (it owns the catalogs), so
`set_locale` is told the supported codes rather than knowing them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

from sqlalchemy import select, update

from threadline.errors import Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import User


@dataclass(frozen=True, slots=True)
class Preferences:
    locale: str | None
    timezone: str | None


@cache
def timezone_names() -> tuple[str, ...]:
    """IANA zone names, sorted; cached because listing them walks the tz database on disk."""
    return tuple(sorted(available_timezones()))


def check_timezone(name: str) -> str:
    """The zone name if the tz database knows it (so ZoneInfo(name) cannot fail later), else Invalid."""
    name = name.strip()
    if name not in timezone_names():
        raise Invalid(
            f"timezone: unknown time zone {name!r}; use an IANA name such as Asia/Shanghai or Europe/London",
            details={"field": "timezone"},
        )
    return name


def get_preferences(db: Database, user_id: int) -> Preferences | None:
    """The active user's preferences; None when there is no such active user."""
    with db.read() as session:
        row = session.execute(
            select(User.locale, User.timezone).where(User.id == user_id, User.is_active.is_(True))
        ).first()
    return None if row is None else Preferences(row.locale or None, row.timezone or None)


def _store(db: Database, user_id: int, **values: str | None) -> None:
    with db.write() as session:
        if session.get(User, user_id) is None:
            raise NotFound(f"user: no user {user_id}", details={"field": "user"})
        session.execute(update(User).where(User.id == user_id).values(**values))


def set_locale(db: Database, user_id: int, locale: str | None, *, supported: Collection[str]) -> None:
    """Store the user's language; None or "" goes back to following the browser."""
    if locale and locale not in supported:
        raise Invalid(
            f"locale: unknown language {locale!r}; choose one of {', '.join(sorted(supported))}",
            details={"field": "locale"},
        )
    _store(db, user_id, locale=locale or None)


def set_timezone(db: Database, user_id: int, timezone: str | None) -> None:
    """Store the user's time zone; None or "" goes back to THREADLINE_TIMEZONE."""
    _store(db, user_id, timezone=check_timezone(timezone) if timezone else None)
