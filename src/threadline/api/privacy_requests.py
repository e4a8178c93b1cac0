"""REST: data subject requests (access, rectification, erasure, restriction, objection) and the erasure
policy. Admins only: these hand over or remove everything about a person."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.api.deps import AdminUser, CallerDep, DatabaseDep, SettingsDep
from threadline.privacy import (
    access_export,
    carry_out,
    create_request,
    erasure_policy,
    get_request,
    list_requests,
    record,
    reject_request,
    set_erasure_policy,
    set_subject,
    verify_request,
)

router = APIRouter(prefix="/api/v1", tags=["privacy requests"])


class NewRequest(BaseModel):
    kind: str = Field(description="access | rectification | erasure | restriction | objection")
    regulation: str = Field("gdpr", description="gdpr (30 days) | ccpa (45 days) | pipl (30 days)")
    requester: str | None = Field(None, max_length=320, description="How to reach the requester")
    subject: str | None = Field(None, max_length=320, description="Email, phone or user id of the person")
    profile_id: str | None = Field(None, max_length=32)
    details: dict[str, Any] = Field(
        default_factory=dict,
        description='rectification: {"traits": {...}}; objection: {"purposes": ["marketing"]}',
    )
    note: str | None = Field(None, max_length=2000)


class Verification(BaseModel):
    method: str = Field(description="signed_in | email_confirmation | known_contact | id_document | other")
    note: str | None = Field(None, max_length=2000)


class Rejection(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Subject(BaseModel):
    profile_id: str = Field(max_length=32)


class ErasurePolicyBody(BaseModel):
    events: str = Field(description="anonymise (keep for aggregates) | delete")
    keep_properties: list[str] = Field(default_factory=list, max_length=100)


def _audit(request: Request, db: Any, caller: Any, action: str, request_id: int, **details: Any) -> None:
    now = request.app.state.clock()
    record(
        db,
        caller.actor,
        action,
        "privacy_request",
        str(request_id),
        at=now,
        details={"via": "api", **details},
    )


@router.post("/privacy-requests", status_code=201, summary="Log a data subject request")
def post_request(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    _: AdminUser,
    body: NewRequest,
) -> dict[str, Any]:
    request_id = create_request(
        db,
        settings,
        kind=body.kind,
        regulation=body.regulation,
        requester=body.requester,
        subject=body.subject,
        profile_id=body.profile_id,
        details=body.details,
        received_at=request.app.state.clock(),
        user_id=caller.user.id,
        note=body.note,
    )
    _audit(request, db, caller, "create", request_id, kind=body.kind)
    return get_request(db, request_id).as_dict()


@router.get("/privacy-requests", summary="Data subject requests, soonest due first")
def get_requests(
    db: DatabaseDep, _: AdminUser, status: str | None = None, kind: str | None = None
) -> dict[str, Any]:
    return {"requests": [r.as_dict() for r in list_requests(db, status=status, kind=kind)]}


@router.get("/privacy-requests/{request_id}", summary="One request with its log")
def get_one(db: DatabaseDep, _: AdminUser, request_id: int) -> dict[str, Any]:
    return get_request(db, request_id).as_dict()


@router.post("/privacy-requests/{request_id}/verify", summary="Record how the requester was verified")
def post_verify(
    request: Request, db: DatabaseDep, caller: CallerDep, _: AdminUser, request_id: int, body: Verification
) -> dict[str, Any]:
    now = request.app.state.clock()
    verify_request(db, request_id, method=body.method, note=body.note, user_id=caller.user.id, now=now)
    _audit(request, db, caller, "change", request_id, step="verified", method=body.method)
    return get_request(db, request_id).as_dict()


@router.post("/privacy-requests/{request_id}/subject", summary="Say which customer the request is about")
def post_subject(
    request: Request, db: DatabaseDep, caller: CallerDep, _: AdminUser, request_id: int, body: Subject
) -> dict[str, Any]:
    set_subject(db, request_id, body.profile_id, user_id=caller.user.id, now=request.app.state.clock())
    _audit(request, db, caller, "change", request_id, step="subject_set")
    return get_request(db, request_id).as_dict()


@router.post("/privacy-requests/{request_id}/reject", summary="Reject a request, with the reason")
def post_reject(
    request: Request, db: DatabaseDep, caller: CallerDep, _: AdminUser, request_id: int, body: Rejection
) -> dict[str, Any]:
    reject_request(db, request_id, reason=body.reason, user_id=caller.user.id, now=request.app.state.clock())
    _audit(request, db, caller, "change", request_id, step="rejected")
    return get_request(db, request_id).as_dict()


@router.post(
    "/privacy-requests/{request_id}/carry-out", summary="Do what a verified request asks, and complete it"
)
def post_carry_out(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    _: AdminUser,
    request_id: int,
) -> dict[str, Any]:
    view = get_request(db, request_id)
    now = request.app.state.clock()
    outcome = carry_out(db, settings, request_id, user_id=caller.user.id, now=now)
    action = "delete" if view.kind == "erasure" else "change"
    details = {"via": "api", "kind": view.kind, "step": "completed"}
    if view.kind == "erasure":
        details["rows"] = outcome.get("rows", {})
    record(db, caller.actor, action, "profile", view.profile_id, at=now, details=details)
    return get_request(db, request_id).as_dict()


@router.get(
    "/privacy-requests/{request_id}/export",
    summary="Everything about the person (JSON), for a verified request; the readable document is the "
    "page /privacy/{id}/export",
)
def get_export(request: Request, db: DatabaseDep, caller: CallerDep, _: AdminUser, request_id: int) -> Any:
    now = request.app.state.clock()
    export = access_export(db, request_id, user_id=caller.user.id, now=now)
    record(
        db,
        caller.actor,
        "export",
        "profile",
        export["profile_id"],
        at=now,
        details={"via": "api", "privacy_request": request_id, "format": "json"},
    )
    return export


@router.get("/privacy/erasure-policy", summary="What an erasure does to events")
def get_policy(db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    with db.read() as session:
        policy = erasure_policy(session.connection())
    return {"events": policy.events, "keep_properties": list(policy.keep_properties)}


@router.put("/privacy/erasure-policy", summary="Delete events on erasure, or keep them anonymised")
def put_policy(
    request: Request, db: DatabaseDep, caller: CallerDep, _: AdminUser, body: ErasurePolicyBody
) -> dict[str, Any]:
    now = request.app.state.clock()
    policy = set_erasure_policy(
        db, events=body.events, keep_properties=body.keep_properties, user_id=caller.user.id, now=now
    )
    record(
        db,
        caller.actor,
        "change",
        "workspace_settings",
        None,
        at=now,
        details={"action": "erasure_policy", "events": policy.events},
    )
    return {"events": policy.events, "keep_properties": list(policy.keep_properties)}
