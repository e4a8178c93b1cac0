"""Settings → Scheduled reports: weekly emails of chosen Insight pages to chosen users.

Admins and managers; other roles get the readable 403 page. The schedules and their sending live in
threadline.analytics (report_emails.py); "send now" emails the signed-in user their own copy at once, so
they can see what recipients will get.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, list_users
from threadline.analytics import (
    REPORT_PAGES,
    delete_report_schedule,
    list_report_schedules,
    save_report_schedule,
    schedule_json,
    send_report,
)
from threadline.errors import Invalid
from threadline.privacy import record
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PATH = "/settings/reports"
ROLES = ("admin", "manager")
PAGE_NAMES = {
    "overview": N_("Overview"),
    "funnel": N_("Funnel"),
    "cohorts": N_("Cohorts"),
    "consistency": N_("Consistency"),
    "portrait": N_("Portrait"),
}
WEEKDAYS = (
    N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday")
)  # fmt: skip
NEW_REPORT = {"pages": ["overview"], "weekday": 0, "hour": 8, "days": 7}  # what the form starts with
NOTICES = {
    "saved": N_("Report saved. Recipients get it at its hour in their own time zone."),
    "deleted": N_("Report deleted."),
    "sent": N_("Your copy is on its way."),
    "disabled": N_("Sending is off: THREADLINE_SMTP_HOST is not set."),
}


def _refused(request: Request, user: UserInfo) -> Response | None:
    return None if user.role in ROLES else render(request, "account_forbidden.html", 403, user=user)


def _page(
    request: Request,
    user: UserInfo,
    status: int = 200,
    *,
    entered: dict[str, object] | None = None,
    error: str | None = None,
) -> Response:
    db: Database = request.app.state.db
    users = [u for u in list_users(db) if u.is_active]
    return render(
        request,
        "report_schedules.html",
        status,
        user=user,
        schedules=list_report_schedules(db),
        users=users,
        user_names={u.id: u.name or u.email for u in users},
        pages=REPORT_PAGES,
        page_names=PAGE_NAMES,
        weekdays=WEEKDAYS,
        entered=entered or {**NEW_REPORT, "recipients": [user.id]},
        error=error,
        notice=NOTICES.get(request.query_params.get("done", "")),
    )


@router.get(PATH)
def reports_page(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _page(request, user)


@router.post(PATH)
async def save_report(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    entered: dict[str, object] = {
        "name": str(form.get("name", "")),
        "pages": [str(p) for p in form.getlist("pages")],
        "recipients": [str(r) for r in form.getlist("recipients")],
        "weekday": str(form.get("weekday", "")),
        "hour": str(form.get("hour", "")),
        "days": str(form.get("days", "")),
    }
    db: Database = request.app.state.db
    now = request.app.state.clock()
    try:
        saved = save_report_schedule(
            db,
            name=str(entered["name"]),
            pages=form.getlist("pages"),  # type: ignore[arg-type]
            recipients=form.getlist("recipients"),
            weekday=entered["weekday"],
            hour=entered["hour"],
            days=entered["days"],
            user_id=user.id,
            now=now,
        )
    except Invalid as problem:
        return _page(request, user, 400, entered=entered, error=problem.message)
    details = {"action": "report_schedule", "schedule": schedule_json(saved), "via": "web"}
    record(db, actor_of(request, user.id), "change", "workspace_settings", "insight.report_schedules", at=now,
           details=details)  # fmt: skip
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)


@router.post(PATH + "/{schedule_id}/delete")
async def delete_report(request: Request, schedule_id: int, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    now = request.app.state.clock()
    if delete_report_schedule(db, schedule_id, user_id=user.id, now=now):
        details = {"action": "report_schedule_deleted", "schedule_id": schedule_id, "via": "web"}
        record(db, actor_of(request, user.id), "change", "workspace_settings", "insight.report_schedules",
               at=now, details=details)  # fmt: skip
    return RedirectResponse(f"{PATH}?done=deleted", status_code=303)


@router.post(PATH + "/{schedule_id}/send")
async def send_now(request: Request, schedule_id: int, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    schedule = next((s for s in list_report_schedules(db) if s.id == schedule_id), None)
    if schedule is None:
        return _page(request, user, 404, error=f"schedule {schedule_id} does not exist")
    now = request.app.state.clock()
    sent = send_report(db, request.app.state.settings, schedule, user, today=now.date(), now=now)
    return RedirectResponse(f"{PATH}?done={'sent' if sent else 'disabled'}", status_code=303)
