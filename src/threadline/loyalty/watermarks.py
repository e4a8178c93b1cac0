"""Where the loyalty jobs got to, kept in `workspace_settings` so any worker carries on from there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from threadline.storage import put_setting, read_setting

EARN_MARK = "loyalty.earn.watermark"
EXPIRE_MARK = "loyalty.expire.watermark"


def read_mark(conn: Connection, key: str) -> dict[str, Any]:
    value = read_setting(conn, key)
    return dict(value) if isinstance(value, dict) else {}


def save_mark(conn: Connection, key: str, value: dict[str, Any], *, now: datetime) -> None:
    put_setting(conn, key, value, user_id=None, now=now)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
