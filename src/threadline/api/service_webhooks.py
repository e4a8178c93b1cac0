"""Inbound webhooks of the service desk: `POST /webhooks/{source}` (SMS, WhatsApp, WeChat, social
messages) and `POST /webhooks/{source}/calls` (call records), HMAC-signed with the source's write key
(threadline.service.webhooks; docs/service.md, "Webhooks").

401, and nothing stored, for an unknown or web source, a missing, wrong or stale signature: an
attacker learns nothing about which sources exist. 400 names the field of a signed body that cannot
be taken; that body is in the source's quarantine (`quarantineId`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from threadline.api.errors import error_response
from threadline.api.responses import JSONResponse
from threadline.errors import NotFound
from threadline.ingest import SourceInfo, get_source
from threadline.service import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadSignature,
    accepts_webhooks,
    take_webhook,
    verify_signature,
)

router = APIRouter(tags=["webhooks"])

MAX_BODY = 256_000  # a message with attachment links, or a call record; media stay at the provider


def _source(request: Request, name: str) -> SourceInfo | None:
    try:
        return get_source(request.app.state.db, name)
    except NotFound:
        return None


async def _take(request: Request, name: str, kind: str) -> JSONResponse:
    app = request.app
    now = app.state.clock()
    body = await request.body()
    if len(body) > MAX_BODY:
        return error_response(413, "too_large", f"request body is larger than {MAX_BODY // 1000} KB")
    source = await run_in_threadpool(_source, request, name)
    try:
        if source is None or not accepts_webhooks(source):
            raise BadSignature("no source takes webhooks under this name")
        verify_signature(
            source.write_key,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            now=now,
        )
    except BadSignature as error:
        return error_response(401, "invalid_signature", str(error))
    assert source is not None
    outcome = await run_in_threadpool(
        take_webhook, app.state.db, app.state.settings, source, body, kind=kind, now=now
    )
    if outcome.quarantine_id is not None:
        return error_response(
            400,
            "invalid",
            outcome.reason or "invalid",
            {"field": outcome.field, "quarantineId": outcome.quarantine_id},
        )
    if outcome.opted_out is not None:  # a STOP reply: marketing consent withdrawn, no conversation
        return JSONResponse({"status": "opted_out"}, status_code=200)
    received = outcome.received
    if received is None:  # an erased person's: dropped, as ingestion drops it
        return JSONResponse({"status": "dropped"}, status_code=200)
    return JSONResponse(
        {
            "status": "duplicate" if received.duplicate else "stored",
            "conversation_id": received.conversation_id,
            "message_id": received.message_id,
        },
        status_code=200 if received.duplicate else 201,
    )


@router.post(
    "/webhooks/{source_name}", summary="A provider's inbound message (SMS, WhatsApp, WeChat, social)"
)
async def post_message(source_name: str, request: Request) -> JSONResponse:
    return await _take(request, source_name, "message")


@router.post("/webhooks/{source_name}/calls", summary="A call-center system's call record")
async def post_call(source_name: str, request: Request) -> JSONResponse:
    return await _take(request, source_name, "call")
