"""REST: SLA policies, the weakest-link thresholds, a customer's surveys and at-risk flag, and the
service metrics (JSON or CSV). Thin: parse, authorise, call threadline.service, map out."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from threadline.api.deps import AdminUser, CallerDep, CurrentUser, DatabaseDep
from threadline.errors import Forbidden
from threadline.privacy import record
from threadline.profiles import ProfileNotFound
from threadline.service import (
    at_risk_flag,
    create_policy,
    delete_policy,
    get_policy,
    get_thresholds,
    list_policies,
    metrics_csv,
    metrics_query,
    profile_surveys,
    service_metrics,
    set_thresholds,
    update_policy,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of

router = APIRouter(prefix="/api/v1", tags=["service"])


class PolicyIn(BaseModel):
    name: str
    position: int | None = Field(
        None, description="Policies are tried by position, lowest first; left out: last."
    )
    priority: str | None = Field(None, description="low, normal, high or urgent; null for any")
    tier: str | None = Field(None, description="The customer's `tier` trait (e.g. gold); null for any")
    channel: str | None = Field(
        None, description="email, chat, sms, whatsapp, wechat, social or phone; null for any"
    )
    first_response_minutes: int = Field(description="Business minutes to the first agent reply")
    resolution_minutes: int = Field(description="Business minutes to resolution")
    warn_before_minutes: int = Field(30, description="Warn this many minutes before a due time")
    calendar: dict[str, Any] = Field(
        default_factory=dict,
        description='{"timezone": "Asia/Shanghai", "hours": {"mon": ["09:00", "18:00"], ...}, '
        '"holidays": ["2026-10-01"]}; empty: every minute counts',
    )
    active: bool = True


def _z(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


@router.get("/sla-policies", summary="SLA policies, in the order they are tried")
def get_policies(db: DatabaseDep, user: CurrentUser) -> dict[str, Any]:
    return {"policies": [p.public() for p in list_policies(db)]}


@router.post("/sla-policies", status_code=201, summary="Add an SLA policy (admins)")
def post_policy(body: PolicyIn, request: Request, db: DatabaseDep, user: AdminUser) -> dict[str, Any]:
    policy = create_policy(db, body.model_dump())
    _audit(request, db, user.id, "create", policy.id)
    return policy.public()


@router.get("/sla-policies/{policy_id}", summary="One SLA policy")
def get_one_policy(policy_id: int, db: DatabaseDep, user: CurrentUser) -> dict[str, Any]:
    return get_policy(db, policy_id).public()


@router.put("/sla-policies/{policy_id}", summary="Replace an SLA policy (admins)")
def put_policy(
    policy_id: int, body: PolicyIn, request: Request, db: DatabaseDep, user: AdminUser
) -> dict[str, Any]:
    values = body.model_dump()
    if values["position"] is None:
        values["position"] = get_policy(db, policy_id).position
    policy = update_policy(db, policy_id, values)
    _audit(request, db, user.id, "change", policy.id)
    return policy.public()


@router.delete("/sla-policies/{policy_id}", status_code=204, summary="Remove an SLA policy (admins)")
def remove_policy(policy_id: int, request: Request, db: DatabaseDep, user: AdminUser) -> Response:
    delete_policy(db, policy_id)
    _audit(request, db, user.id, "delete", policy_id)
    return Response(status_code=204)


def _audit(request: Request, db: Database, user_id: int, action: str, policy_id: int) -> None:
    at = request.app.state.clock()
    record(
        db, actor_of(request, user_id), action, "sla_policy", str(policy_id), at=at, details={"via": "api"}
    )


@router.get("/service/weakest-link", summary="When a customer counts as at risk")
def get_weakest_link(db: DatabaseDep, user: CurrentUser) -> dict[str, Any]:
    return get_thresholds(db).public()


@router.put("/service/weakest-link", summary="Change when a customer counts as at risk (admins)")
def put_weakest_link(
    body: dict[str, Any], request: Request, db: DatabaseDep, user: AdminUser
) -> dict[str, Any]:
    at = request.app.state.clock()
    saved = set_thresholds(db, body, user_id=user.id, now=at)
    details = {"action": "weakest_link", "values": saved.public(), "via": "api"}
    record(
        db,
        actor_of(request, user.id),
        "change",
        "workspace_settings",
        "service.weakest_link",
        at=at,
        details=details,
    )
    return saved.public()


def _denied(
    request: Request, db: Database, caller: CallerDep, profile_id: str, error: ProfileNotFound
) -> NoReturn:
    """The same 404 as every profile endpoint, audited as denied (api/profiles.py)."""
    scoped = bool(isinstance(error.details, dict) and error.details.get("out_of_scope"))
    at = request.app.state.clock()
    record(db, caller.actor, "denied", "profile", profile_id, at=at, details={"out_of_scope": scoped})
    raise ProfileNotFound(f"profile {profile_id} does not exist") from None


@router.get("/profiles/{profile_id}/surveys", summary="The customer's answered surveys, newest first")
def get_surveys(
    profile_id: str,
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    limit: int = Query(20, ge=1, le=200),
) -> dict[str, Any]:
    try:
        live, surveys = profile_surveys(db, profile_id, viewer=caller.viewer, limit=limit)
    except ProfileNotFound as error:
        _denied(request, db, caller, profile_id, error)
    record(
        db, caller.actor, "view", "profile", live, at=request.app.state.clock(), details={"part": "surveys"}
    )
    return {
        "profile_id": live,
        "surveys": [
            {
                "id": s.id,
                "kind": s.kind,
                "conversation_id": s.conversation_id,
                "channel": s.channel,
                "sent_at": _z(s.sent_at),
                "answered_at": _z(s.answered_at),
                "score": s.score,
                "comment": s.comment,
            }
            for s in surveys
        ],
    }


@router.get(
    "/profiles/{profile_id}/at-risk", summary="The customer's weakest-link flag (null when not at risk)"
)
def get_at_risk(profile_id: str, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    try:
        live, flag = at_risk_flag(db, profile_id, viewer=caller.viewer)
    except ProfileNotFound as error:
        _denied(request, db, caller, profile_id, error)
    shown = None
    if flag is not None:
        shown = {
            "experiences": flag.experiences,
            "recovery_tasks": flag.recovery_tasks,
            "computed_at": _z(flag.computed_at),
        }
    return {"profile_id": live, "at_risk": flag is not None, "flag": shown}


@router.get(
    "/service/metrics", summary="Service metrics per channel, agent or team, week by week (JSON or CSV)"
)
def get_metrics(
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    start: str | None = Query(None, description="First day (ISO date); default 12 weeks before end"),
    end: str | None = Query(None, description="Day after the last (ISO date); default tomorrow"),
    by: str = Query("channel", description="channel, agent or team"),
    interval: str = Query("week", description="week or month"),
    format: str = Query("json", description="json or csv"),
) -> Any:
    now = request.app.state.clock()
    report = service_metrics(db, caller.viewer, metrics_query(start, end, by, interval, now=now), now=now)
    if format == "csv":
        if not caller.viewer.can("export"):
            raise Forbidden("exporting needs the export permission")
        record(db, caller.actor, "export", "service_metrics", None, at=now, details={"by": by, "via": "api"})
        return Response(
            metrics_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="service-metrics.csv"'},
        )
    return {
        "start": _z(report.query.start),
        "end": _z(report.query.end),
        "by": report.query.by,
        "interval": report.query.interval,
        "overall": report.overall,
        "groups": report.groups,
        "periods": report.periods,
        "series": report.series,
        "backlog": report.backlog,
    }
