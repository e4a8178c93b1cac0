"""Service pages: Settings -> SLAs (policies and the weakest-link thresholds, admins), the service
metrics page with its CSV, the 360 page's service panel (surveys, at-risk flag), and the public survey
page a customer answers from their mailbox."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, viewer_for
from threadline.errors import Invalid, NotFound
from threadline.privacy import record
from threadline.profiles import ProfileNotFound
from threadline.service import (
    GROUPS,
    INTERVALS,
    PRIORITIES,
    SERVICE_CHANNELS,
    WEEKDAYS,
    answer_survey,
    at_risk_flag,
    create_policy,
    delete_policy,
    get_thresholds,
    list_policies,
    metrics_csv,
    metrics_query,
    profile_surveys,
    read_survey,
    service_metrics,
    set_thresholds,
    update_policy,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of, customer_not_found
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
SLA_PATH = "/settings/sla"
METRICS_PATH = "/service/metrics"
NOTICES = {
    "created": N_("SLA policy added."),
    "saved": N_("SLA policy saved. Conversations opened from now on get its targets."),
    "deleted": N_("SLA policy removed."),
    "thresholds": N_("The at-risk rules are saved; the next evaluation applies them."),
}
DAY_NAMES = {
    "mon": N_("Monday"),
    "tue": N_("Tuesday"),
    "wed": N_("Wednesday"),
    "thu": N_("Thursday"),
    "fri": N_("Friday"),
    "sat": N_("Saturday"),
    "sun": N_("Sunday"),
}
EXPERIENCE_NAMES = {
    "csat": N_("Low satisfaction score"),
    "nps_detractor": N_("NPS detractor"),
    "sla_breach": N_("SLA breached"),
    "negative_message": N_("Negative message"),
}
SURVEY_NAMES = {
    "csat": N_("Satisfaction (CSAT)"),
    "ces": N_("Effort (CES)"),
    "nps": N_("Recommendation (NPS)"),
}
GROUP_NAMES = {"channel": N_("Channel"), "agent": N_("Agent"), "team": N_("Team")}
INTERVAL_NAMES = {"week": N_("Week"), "month": N_("Month")}


def _refused(request: Request, user: UserInfo) -> Response | None:
    if user.role == "admin":
        return None
    return render(request, "account_forbidden.html", 403, user=user)


def _form_policy(form: Any) -> dict[str, Any]:
    """The policy form's fields as a policy's values; hours typed as "09:00-18:00" per day."""
    hours = {}
    for day in WEEKDAYS:
        span = str(form.get(f"hours_{day}", "")).strip()
        if span:
            opens, _, closes = span.partition("-")
            hours[day] = [opens.strip(), closes.strip()]
    holidays = [h.strip() for h in str(form.get("holidays", "")).replace(",", "\n").splitlines() if h.strip()]
    calendar: dict[str, Any] = {}
    if hours:
        calendar = {
            "timezone": str(form.get("timezone", "")).strip() or "UTC",
            "hours": hours,
            "holidays": holidays,
        }
    return {
        "name": form.get("name"),
        "position": form.get("position") or None,
        "priority": form.get("priority") or None,
        "tier": form.get("tier") or None,
        "channel": form.get("channel") or None,
        "first_response_minutes": form.get("first_response_minutes"),
        "resolution_minutes": form.get("resolution_minutes"),
        "warn_before_minutes": form.get("warn_before_minutes") or 0,
        "calendar": calendar,
        "active": form.get("active") == "on",
    }


def _sla_page(request: Request, user: UserInfo, status: int = 200, *, error: str | None = None) -> Response:
    db: Database = request.app.state.db
    return render(
        request,
        "service_sla.html",
        status,
        user=user,
        policies=list_policies(db),
        thresholds=get_thresholds(db),
        days=WEEKDAYS,
        day_names=DAY_NAMES,
        priorities=PRIORITIES,
        channels=SERVICE_CHANNELS,
        error=error,
        notice=NOTICES.get(request.query_params.get("done", "")),
    )


@router.get(SLA_PATH)
def sla_settings(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _sla_page(request, user)


def _audit(request: Request, user: UserInfo, action: str, object_type: str, object_id: str) -> None:
    at = request.app.state.clock()
    record(
        request.app.state.db,
        actor_of(request, user.id),
        action,
        object_type,
        object_id,
        at=at,
        details={"via": "web"},
    )


@router.post(SLA_PATH)
async def add_policy(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    try:
        policy = create_policy(request.app.state.db, _form_policy(form))
    except (Invalid, NotFound) as problem:
        return _sla_page(request, user, 400, error=problem.message)
    _audit(request, user, "create", "sla_policy", str(policy.id))
    return RedirectResponse(f"{SLA_PATH}?done=created", status_code=303)


@router.post(SLA_PATH + "/{policy_id}")
async def save_policy(request: Request, policy_id: int, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    try:
        if form.get("delete"):
            delete_policy(db, policy_id)
            _audit(request, user, "delete", "sla_policy", str(policy_id))
            return RedirectResponse(f"{SLA_PATH}?done=deleted", status_code=303)
        update_policy(db, policy_id, _form_policy(form))
    except (Invalid, NotFound) as problem:
        return _sla_page(request, user, 400, error=problem.message)
    _audit(request, user, "change", "sla_policy", str(policy_id))
    return RedirectResponse(f"{SLA_PATH}?done=saved", status_code=303)


@router.post(SLA_PATH + "-at-risk")
async def save_thresholds(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    values: dict[str, Any] = {
        key: form.get(key) for key in ("window_days", "experiences", "csat_max", "nps_max", "sentiment_max")
    }
    values["sla_breach"] = form.get("sla_breach") == "on"
    try:
        set_thresholds(request.app.state.db, values, user_id=user.id, now=request.app.state.clock())
    except Invalid as problem:
        return _sla_page(request, user, 400, error=problem.message)
    _audit(request, user, "change", "workspace_settings", "service.weakest_link")
    return RedirectResponse(f"{SLA_PATH}?done=thresholds", status_code=303)


def _report(request: Request, user: UserInfo) -> tuple[Any, dict[str, str]]:
    params = {k: request.query_params.get(k, "") for k in ("start", "end", "by", "interval")}
    now = request.app.state.clock()
    query = metrics_query(
        params["start"] or None,
        params["end"] or None,
        params["by"] or "channel",
        params["interval"] or "week",
        now=now,
    )
    db: Database = request.app.state.db
    return service_metrics(db, viewer_for(db, user.id, user.role), query, now=now), params


def _chart(report: Any, metric: str, label: str) -> str:
    """A line chart of one metric per group over the periods, as insight.js draws it."""
    datasets = [
        {
            "label": group["label"],
            "data": [report.series.get(group["key"], {}).get(p, {}).get(metric) for p in report.periods],
        }
        for group in report.groups
    ]
    return json.dumps({"type": "line", "labels": report.periods, "datasets": datasets, "title": label})


@router.get(METRICS_PATH)
def metrics_page(request: Request, user: WebUser) -> Response:
    try:
        report, params = _report(request, user)
    except Invalid as problem:
        return render(
            request,
            "service_metrics.html",
            400,
            user=user,
            report=None,
            error=problem.message,
            params={},
            **_choices(),
        )
    charts = [
        ("first_response_median_minutes", N_("First response, median minutes")),
        ("resolution_median_minutes", N_("Resolution, median minutes")),
        ("csat", N_("CSAT, share satisfied")),
    ]
    return render(
        request,
        "service_metrics.html",
        user=user,
        report=report,
        params=params,
        charts=[(label, _chart(report, metric, label)) for metric, label in charts],
        csv_url=f"{METRICS_PATH}.csv?{urlencode({k: v for k, v in params.items() if v})}",
        can_export=viewer_for(request.app.state.db, user.id, user.role).can("export"),
        error=None,
        **_choices(),
    )


def _choices() -> dict[str, Any]:
    return {
        "groups": GROUPS,
        "intervals": INTERVALS,
        "group_names": GROUP_NAMES,
        "interval_names": INTERVAL_NAMES,
    }


@router.get(METRICS_PATH + ".csv")
def metrics_export(request: Request, user: WebUser) -> Response:
    db: Database = request.app.state.db
    if not viewer_for(db, user.id, user.role).can("export"):
        return render(request, "account_forbidden.html", 403, user=user)
    try:
        report, params = _report(request, user)
    except Invalid as problem:
        return Response(problem.message, status_code=400, media_type="text/plain")
    _audit(request, user, "export", "service_metrics", params["by"] or "channel")
    return Response(
        metrics_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="service-metrics.csv"'},
    )


@router.get("/customers/{profile_id}/service")
def customer_service(request: Request, profile_id: str, user: WebUser) -> Response:
    db: Database = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    try:
        live, flag = at_risk_flag(db, profile_id, viewer=viewer)
        _, surveys = profile_surveys(db, live, viewer=viewer, limit=5)
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor_of(request, user.id), profile_id, problem)
    at = request.app.state.clock()
    record(
        db,
        actor_of(request, user.id),
        "view",
        "profile",
        live,
        at=at,
        details={"via": "web", "part": "service"},
    )
    page = request.headers.get("HX-Request") != "true"  # a browser without htmx asked for a page
    return render(
        request,
        "service_panel_page.html" if page else "service_panel.html",
        user=user,
        profile_id=live,
        flag=flag,
        surveys=surveys,
        experience_names=EXPERIENCE_NAMES,
        survey_names=SURVEY_NAMES,
    )


def _survey_or_404(request: Request, token: str) -> Any:
    try:
        return read_survey(request.app.state.db, token)
    except NotFound:
        return None


@router.get("/survey/{token}")
def survey_page(request: Request, token: str) -> Response:
    """Shows the question (a score from the email's link chosen already); records nothing: mail
    systems' link scanners open every link."""
    survey = _survey_or_404(request, token)
    if survey is None:
        return render(request, "survey_invalid.html", 404, user=None)
    chosen = request.query_params.get("score", "")
    return render(
        request,
        "survey.html",
        user=None,
        survey=survey,
        token=token,
        chosen=chosen,
        survey_names=SURVEY_NAMES,
        error=None,
    )


@router.post("/survey/{token}")
async def survey_answered(request: Request, token: str) -> Response:
    """No CSRF token: the random link is the whole credential, and the customer has no session."""
    survey = _survey_or_404(request, token)
    if survey is None:
        return render(request, "survey_invalid.html", 404, user=None)
    form = await request.form()
    score, comment = str(form.get("score", "")), str(form.get("comment", ""))
    try:
        answer_survey(
            request.app.state.db,
            request.app.state.settings,
            token,
            score=score,
            comment=comment,
            now=request.app.state.clock(),
        )
    except Invalid as problem:
        return render(
            request,
            "survey.html",
            400,
            user=None,
            survey=survey,
            token=token,
            chosen=score,
            comment=comment,
            survey_names=SURVEY_NAMES,
            error=(problem.details or {}).get("field", "score"),
        )
    return RedirectResponse(f"/survey/{quote(token)}/thanks", status_code=303)


@router.get("/survey/{token}/thanks")
def survey_thanks(request: Request, token: str) -> Response:
    survey = _survey_or_404(request, token)
    if survey is None:
        return render(request, "survey_invalid.html", 404, user=None)
    return render(request, "survey_done.html", user=None, survey=survey, token=token)
