"""The privacy key: what keys the suppression list's hashes and signs unsubscribe links.

Both must outlive a process and agree across processes, so the key is THREADLINE_PRIVACY_KEY when set,
else a random salt that migration 0010 stored in the database (made again here if it went missing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import Connection, insert, select

from threadline.config import Settings
from threadline.storage.models import WorkspaceSetting

SALT_KEY = "privacy.suppression_salt"
_cache: dict[str, bytes] = {}


def privacy_key(conn: Connection, settings: Settings) -> bytes:
    if settings.privacy_key:
        return hashlib.sha256(settings.privacy_key.encode()).digest()
    url = str(conn.engine.url)
    if url not in _cache:
        salt = conn.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == SALT_KEY))
        if not salt:
            salt = secrets.token_hex(32)
            conn.execute(
                insert(WorkspaceSetting).values(
                    key=SALT_KEY, value=salt, updated_at=datetime.now(), updated_by=None
                )
            )
        _cache[url] = bytes.fromhex(str(salt))
    return _cache[url]


def forget_key() -> None:
    """Drop the cached salt (tests that reset the database)."""
    _cache.clear()


def keyed_digest(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
