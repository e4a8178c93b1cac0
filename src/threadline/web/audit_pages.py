"""The audit log page (admins): search who did what to which record, newest first."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from threadline.privacy import search_audit
from threadline.web.render import render
from threadline.web.session import WebUser

router = APIRouter(include_in_schema=False)
PAGE = 100


@router.get("/audit")
def audit_log(
    request: Request,
    user: WebUser,
    user_email: str = "",
    action: str = "",
    object_id: str = "",
    before: int | None = None,
) -> Response:
    if user.role != "admin":
        return render(request, "account_forbidden.html", 403, user=user)
    entries = search_audit(
        request.app.state.db,
        user_email=user_email or None,
        action=action or None,
        object_id=object_id or None,
        before_id=before,
        limit=PAGE,
    )
    filters = {"user_email": user_email, "action": action, "object_id": object_id}
    older = entries[-1].id if len(entries) == PAGE else None
    return render(request, "audit.html", user=user, entries=entries, filters=filters, older=older)
