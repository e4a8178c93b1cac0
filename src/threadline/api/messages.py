"""REST: sending a customer a message, and their delivery log (threadline.messaging)."""

from __future__ import annotations

from typing import Any, NoReturn

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep
from threadline.messaging import REFUSED, delivery_log, send_message
from threadline.privacy import record
from threadline.profiles import ProfileNotFound
from threadline.storage import Database

router = APIRouter(prefix="/api/v1", tags=["messages"])


class MessageIn(BaseModel):
    purpose: str = Field(
        description="marketing, analytics, personalisation or service: what consent covers it"
    )
    subject: str = Field(description="A template: {{ traits.first_name }} writes the customer's trait.")
    body_text: str = Field(description="The plain-text body, a template like the subject.")
    body_html: str | None = Field(
        None, description="An HTML body (a template; traits are escaped); made from the text when left out."
    )
    channel: str = Field("email", description="email (sms and webhook later)")
    origin: str = Field("manual", description="Who asks: manual, journey, service, or a name of your own.")


def _denied(
    request: Request, db: Database, caller: CallerDep, profile_id: str, error: ProfileNotFound
) -> NoReturn:
    """The same 404 as every profile endpoint, audited as denied (api/profiles.py)."""
    scoped = bool(isinstance(error.details, dict) and error.details.get("out_of_scope"))
    at = request.app.state.clock()
    record(db, caller.actor, "denied", "profile", profile_id, at=at, details={"out_of_scope": scoped})
    raise ProfileNotFound(f"profile {profile_id} does not exist") from None


@router.post(
    "/profiles/{profile_id}/messages",
    status_code=201,
    summary="Send the customer a message; consent decides (201 with status refused when it refuses)",
)
def post_message(
    profile_id: str, body: MessageIn, request: Request, response: Response, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    """201 with the stored message: `queued` (a worker sends it, checking consent again) or `refused`
    with the consent check's reason (nothing is sent). Needs the edit permission and the customer in
    your write scope; a template error is 400 naming the field."""
    now = request.app.state.clock()
    try:
        message = send_message(
            db,
            request.app.state.settings,
            caller.viewer,
            profile_id,
            purpose=body.purpose,
            subject=body.subject,
            body_text=body.body_text,
            body_html=body.body_html,
            channel=body.channel,
            origin=body.origin,
            created_by=caller.user.id,
            now=now,
        )
    except ProfileNotFound as error:
        _denied(request, db, caller, profile_id, error)
    # Ids and the decision only: the address and the bodies stay out of the audit log.
    details = {
        "via": "api",
        "message": message.id,
        "channel": message.channel,
        "purpose": message.purpose,
        "status": message.status,
    }
    record(db, caller.actor, "message", "profile", message.profile_id, at=now, details=details)
    response.headers["Location"] = f"/api/v1/profiles/{message.profile_id}/messages"
    return {**message.as_dict(reveal=caller.viewer.can("pii")), "refused": message.status == REFUSED}


@router.get(
    "/profiles/{profile_id}/messages",
    summary="The customer's delivery log, newest first; a merged-away ID answers with its survivor",
)
def get_messages(
    profile_id: str,
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    limit: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    try:
        live, messages = delivery_log(db, profile_id, viewer=caller.viewer, limit=limit)
    except ProfileNotFound as error:
        _denied(request, db, caller, profile_id, error)
    at = request.app.state.clock()
    record(db, caller.actor, "view", "profile", live, at=at, details={"via": "api", "part": "messages"})
    reveal = caller.viewer.can("pii")
    return {"profile_id": live, "messages": [m.as_dict(reveal=reveal) for m in messages]}
