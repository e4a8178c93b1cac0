"""REST: a customer's consent ledger (state and history), recording statements, and the send check."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep
from threadline.errors import NotFound
from threadline.privacy import (
    CustomerNotFound,
    Statement,
    audit_details,
    check_send,
    consent_history,
    consent_state,
    record,
    record_consent,
    statement,
)
from threadline.storage import Database

router = APIRouter(prefix="/api/v1", tags=["consent"])
T = TypeVar("T")


class ConsentStatementIn(BaseModel):
    purpose: str = Field(description="marketing, analytics, personalisation or service")
    channel: str = Field(
        "all", description="email, sms, phone, push, whatsapp, wechat, post, or all (every channel)"
    )
    status: str = Field(description="granted, denied or withdrawn")


class ConsentChange(BaseModel):
    statements: list[ConsentStatementIn] = Field(description="One or more statements, said together.")
    recorded_at: datetime | None = Field(
        None, description="When the customer said it (a signed paper form); now when left out."
    )
    evidence: dict[str, Any] = Field(
        default_factory=dict,
        description="What proves it: form, text shown, note, a reference to a document. Up to 4 KB.",
    )


def _audited(request: Request, db: Database, caller: CallerDep, profile_id: str, read: Callable[[], T]) -> T:
    """A read of one customer's consent, audited; refused or unknown IDs are audited as denied and
    answer the same 404 as every profile endpoint (api/profiles.py)."""
    now = request.app.state.clock()
    try:
        result = read()
    except CustomerNotFound as error:
        _denied(request, db, caller, profile_id, error)
    record(db, caller.actor, "view", "profile", profile_id, at=now, details={"via": "api", "part": "consent"})
    return result


def _denied(request: Request, db: Database, caller: CallerDep, profile_id: str, error: NotFound) -> NoReturn:
    scoped = bool(isinstance(error.details, dict) and error.details.get("out_of_scope"))
    at = request.app.state.clock()
    record(db, caller.actor, "denied", "profile", profile_id, at=at, details={"out_of_scope": scoped})
    raise NotFound(f"profile {profile_id} does not exist") from None


@router.get(
    "/profiles/{profile_id}/consents",
    summary="Consent state (purpose x channel) and history; a merged-away ID answers with its survivor",
)
def get_consents(
    profile_id: str, request: Request, response: Response, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        state = consent_state(db, profile_id, viewer=caller.viewer)
        return {**state, "history": consent_history(db, profile_id, viewer=caller.viewer)}

    body = _audited(request, db, caller, profile_id, read)
    if body["profile_id"] != profile_id:
        response.headers["Content-Location"] = f"/api/v1/profiles/{body['profile_id']}/consents"
    return body


@router.post(
    "/profiles/{profile_id}/consents",
    status_code=201,
    summary="Record consent statements with their evidence (needs the edit permission)",
)
def post_consents(
    profile_id: str, body: ConsentChange, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    said: list[Statement] = [
        statement(s.purpose, s.channel, s.status, prefix=f"statements[{n}].")
        for n, s in enumerate(body.statements)
    ]
    recorded_at = body.recorded_at
    if recorded_at is not None and recorded_at.tzinfo is not None:
        recorded_at = recorded_at.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC
    now = request.app.state.clock()
    try:
        live = record_consent(
            db,
            caller.viewer,
            profile_id,
            said,
            source="api",
            now=now,
            recorded_at=recorded_at,
            actor_user_id=caller.user.id,
            evidence=body.evidence,
        )
    except CustomerNotFound as error:
        _denied(request, db, caller, profile_id, error)
    details = audit_details(said, via="api")
    record(db, caller.actor, "consent", "profile", live, at=now, details=details)
    state = consent_state(db, live, viewer=caller.viewer)
    return {**state, "recorded": [s.as_dict() for s in said]}


@router.get(
    "/consent-check",
    summary="May this customer be contacted on this channel for this purpose? The rule every sender uses",
)
def get_consent_check(
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    profile_id: str = Query(description="The customer; a merged-away ID answers for its survivor"),
    channel: str = Query(description="email, sms, phone, push, whatsapp, wechat or post"),
    purpose: str = Query(description="marketing, analytics, personalisation or service"),
) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        live = consent_state(db, profile_id, viewer=caller.viewer)["profile_id"]  # the scope check
        with db.read() as session:
            decision = check_send(session, live, channel, purpose)
        return {"profile_id": live, "channel": channel, "purpose": purpose, **decision.as_dict()}

    return _audited(request, db, caller, profile_id, read)
