"""Where the loyalty jobs got to, kept in `workspace_settings` so any worker carries on from there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from threadline.storage.models import WorkspaceSetting

EARN_MARK = "loyalty.earn.watermark"
EXPIRE_MARK = "loyalty.expire.watermark"


def read_mark(conn: Connection, key: str) -> dict[str, Any]:
    value = conn.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == key))
    return dict(value) if isinstance(value, dict) else {}


def save_mark(conn: Connection, key: str, value: dict[str, Any], *, now: datetime) -> None:
    if conn.execute(select(WorkspaceSetting.key).where(WorkspaceSetting.key == key)).first() is None:
        conn.execute(insert(WorkspaceSetting).values(key=key, value=value, updated_at=now, updated_by=None))
    else:
        conn.execute(
            update(WorkspaceSetting).where(WorkspaceSetting.key == key).values(value=value, updated_at=now)
        )


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
