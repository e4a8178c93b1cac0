"""Settings → Retention: the days kept per data class, what a run now would remove, and "run now".

Admins only; other roles get the readable 403 page. Saving changes the policy the daily
`privacy.retention` job applies; "run now" queues that job for a worker (threadline.privacy).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo
from threadline.errors import Invalid
from threadline.privacy import (
    DATA_CLASSES,
    RETENTION_POLICY_KEY,
    get_retention_policy,
    queue_retention_run,
    record,
    retention_report,
    set_retention_policy,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PATH = "/settings/retention"
# The data classes as the page names them; a class missing here shows its English label.
CLASS_NAMES = {
    "events": N_("Raw events"),
    "quarantine": N_("Quarantined messages"),
    "sessions": N_("Ended sign-in sessions"),
    "sign_in_failures": N_("Failed sign-ins of unknown emails"),
    "match_candidates": N_("Decided duplicate pairs"),
}
NOTICES = {
    "saved": N_("Retention policy saved. The next run applies it."),
    "queued": N_("A retention run is queued; a worker starts it within seconds."),
    "already": N_("A retention run asked for this minute is queued already."),
}


def _refused(request: Request, user: UserInfo) -> Response | None:
    if user.role == "admin":
        return None
    return render(request, "account_forbidden.html", 403, user=user)


def _page(
    request: Request,
    user: UserInfo,
    status: int = 200,
    *,
    entered: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    db: Database = request.app.state.db
    policy = get_retention_policy(db)
    report = retention_report(db, now=request.app.state.clock(), policy=policy)
    if entered is None:
        entered = {name: "" if days is None else str(days) for name, days in policy.days.items()}
    return render(
        request,
        "retention.html",
        status,
        user=user,
        lines=report.lines,
        entered=entered,
        names=CLASS_NAMES,
        policy=policy,
        error=error,
        notice=NOTICES.get(request.query_params.get("done", "")),
    )


@router.get(PATH)
def retention_page(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _page(request, user)


def _days(name: str, text: str) -> Any:
    """A field as the policy's value: empty keeps forever; what is no number is left for the policy's
    check to refuse with its message."""
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


@router.post(PATH)
async def save_retention(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    entered = {c.name: str(form.get(f"days_{c.name}", "")) for c in DATA_CLASSES}
    db: Database = request.app.state.db
    now = request.app.state.clock()
    try:
        saved = set_retention_policy(
            db, {name: _days(name, text) for name, text in entered.items()}, user_id=user.id, now=now
        )
    except Invalid as problem:
        return _page(request, user, 400, entered=entered, error=problem.message)
    details = {"action": "retention_policy", "policies": dict(saved.days), "via": "web"}
    record(
        db,
        actor_of(request, user.id),
        "change",
        "workspace_settings",
        RETENTION_POLICY_KEY,
        at=now,
        details=details,
    )
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)


@router.post(f"{PATH}/run")
async def run_retention_now(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    job = queue_retention_run(
        request.app.state.db,
        requested_by=user.id,
        via="web",
        now=request.app.state.clock(),
        max_attempts=request.app.state.settings.job_max_attempts,
    )
    return RedirectResponse(f"{PATH}?done={'queued' if job else 'already'}", status_code=303)
