"""Reading and saving one row of `workspace_settings`: the team's choices (golden-record rules, the
resolver's thresholds, retention and erasure policies, the loyalty program, routing rules...) and the
jobs' watermarks, each under its own key with who changed it and when.

One way to save, so every capability writes the row alike; on a Connection, so ORM sessions
(`session.connection()`) and Core callers share it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from threadline.storage.models import WorkspaceSetting


def read_setting(conn: Connection, key: str, *, for_update: bool = False) -> Any:
    """The stored value under `key`, or None when nothing was saved. `for_update` locks the row until
    the transaction ends (PostgreSQL; SQLite's writer lock already serialises writers)."""
    query = select(WorkspaceSetting.value).where(WorkspaceSetting.key == key)
    return conn.scalar(query.with_for_update() if for_update else query)


def put_setting(conn: Connection, key: str, value: Any, *, user_id: int | None, now: datetime) -> None:
    """Save `value` under `key` (made on first save), with who (None: the system) and when."""
    if conn.execute(select(WorkspaceSetting.key).where(WorkspaceSetting.key == key)).first() is None:
        conn.execute(
            insert(WorkspaceSetting).values(key=key, value=value, updated_at=now, updated_by=user_id)
        )
    else:
        conn.execute(
            update(WorkspaceSetting)
            .where(WorkspaceSetting.key == key)
            .values(value=value, updated_at=now, updated_by=user_id)
        )
