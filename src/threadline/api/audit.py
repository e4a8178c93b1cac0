"""REST: the audit log (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from threadline.api.deps import AdminUser, DatabaseDep
from threadline.privacy import search_audit

router = APIRouter(prefix="/api/v1", tags=["audit"])


@router.get("/audit", summary="Who viewed, changed, exported or was refused which record; newest first")
def get_audit(
    db: DatabaseDep,
    _: AdminUser,
    user_email: str | None = None,
    action: str | None = None,
    object_id: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    entries = search_audit(
        db, user_email=user_email, action=action, object_id=object_id, before_id=before, limit=limit
    )
    return {
        "entries": [
            {
                "id": e.id,
                "at": e.at.isoformat() + "Z",
                "user": e.user_email,
                "action": e.action,
                "object_type": e.object_type,
                "object_id": e.object_id,
                "ip": e.ip,
                "user_agent": e.user_agent,
                "details": e.details,
            }
            for e in entries
        ]
    }
