"""REST: an agent logs a phone call by hand (threadline.service.calls); a call-center system posts
its records to the signed webhook instead (api/service_webhooks.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep, SettingsDep
from threadline.privacy import record
from threadline.service import log_call, parse_call_record

router = APIRouter(prefix="/api/v1", tags=["conversations"])


class CallIn(BaseModel):
    number: str = Field(
        description="The customer's phone number; without a country code it is read in "
        "THREADLINE_DEFAULT_REGION"
    )
    direction: str = Field(description="inbound or outbound")
    disposition: str = Field("answered", description="answered, missed, voicemail, busy or failed")
    duration_seconds: int = Field(0, description="How long the call lasted")
    notes: str | None = Field(None, description="What was said, for colleagues and the timeline's call")
    recording_url: str | None = Field(None, description="A link to the recording (kept, never fetched)")
    started_at: str | None = Field(None, description="ISO 8601; now when left out")


@router.post("/calls", status_code=201, summary="Log a phone call with a customer")
def post_call(
    body: CallIn, request: Request, db: DatabaseDep, settings: SettingsDep, caller: CallerDep
) -> dict[str, Any]:
    """201 with the phone conversation the call went into (the customer found, or created, by the
    number); the agent is the caller."""
    if not caller.viewer.can("edit"):
        raise HTTPException(403, "logging a call needs the edit permission")
    now = request.app.state.clock()
    call = parse_call_record(settings, {**body.model_dump(), "agent": caller.user.email}, now=now)
    received = log_call(db, settings, call, now=now, logged_by=caller.user.id)
    conversation_id = received.conversation_id if received else None
    record(db, caller.actor, "log_call", "conversation", str(conversation_id), at=now, details={"via": "api"})
    return {"conversation_id": conversation_id, "message_id": received.message_id if received else None}
