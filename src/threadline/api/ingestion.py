"""The Segment-compatible ingestion API: /v1/identify, /v1/track, ..., /v1/batch.

Wire compatibility, as Segment's libraries send it:
- the write key comes as HTTP Basic username with an empty password (server libraries), or as
  `writeKey` in the body (analytics.js, which posts text/plain to avoid a CORS preflight);
- bodies may be gzip-compressed (`Content-Encoding: gzip`);
- analytics.js uses the short paths /v1/i, /v1/t, /v1/p, /v1/s, /v1/g, /v1/a, which are served too.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from threadline.api.errors import error_body
from threadline.api.rate_limits import retry_after
from threadline.api.responses import JSONResponse
from threadline.ingest import IngestResult, SourceInfo, parse_time, prepare, quarantine_raw

router = APIRouter(tags=["ingestion"])

SHORT_PATHS = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias"}


class BodyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, "too_large", f"request body is larger than {limit // 1024} KB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, "too_large", f"request body is larger than {limit // 1024} KB")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error:
            raise BodyError(400, "invalid_gzip", "body is not valid gzip") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise BodyError(413, "too_large", f"decompressed body is larger than {limit // 1024} KB")
    return body


def error_response(status: int, code: str, message: str, details: Any = None, **extra: Any) -> JSONResponse:
    """The API's error shape, plus `code` and `message` at the top level where Segment's libraries
    look for them when they log a failed request."""
    body = {"success": False, "code": code, "message": message, **extra, **error_body(code, message, details)}
    return JSONResponse(body, status_code=status)


def _basic_write_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _unauthorised() -> JSONResponse:
    response = error_response(
        401, "invalid_write_key", "a valid source write key is required (HTTP Basic username)"
    )
    response.headers["WWW-Authenticate"] = 'Basic realm="threadline"'
    return response


async def _handle(request: Request, forced_type: str | None) -> JSONResponse:
    app = request.app
    settings = app.state.settings
    received_at = app.state.clock()
    write_key = _basic_write_key(request)
    source: SourceInfo | None = app.state.write_keys.lookup(write_key) if write_key else None
    if write_key and source is None:
        return _unauthorised()
    try:
        body = await _read_body(request, settings.max_batch_bytes)
    except BodyError as error:
        return error_response(error.status, error.code, error.message)
    parse_error: str | None = None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        payload, parse_error = None, f"body is not valid JSON: {error}"
    else:
        parse_error = None if isinstance(payload, dict) else "body must be a JSON object"
    if source is None:
        key = payload.get("writeKey") if isinstance(payload, dict) else None
        source = app.state.write_keys.lookup(key) if isinstance(key, str) and key else None
        if source is None:
            return _unauthorised()
    limited = _rate_limited(request, source, payload, forced_type, received_at)
    if limited is not None:
        return limited
    if parse_error is not None:
        quarantine_id = await run_in_threadpool(
            quarantine_raw,
            app.state.db,
            source_id=source.id,
            received_at=received_at,
            payload=body.decode("utf-8", "replace"),
            reason=parse_error,
        )
        return error_response(400, "invalid_json", parse_error, {"quarantineId": quarantine_id})
    assert isinstance(payload, dict)

    batch_sent_at = batch_context = None
    if forced_type is None:
        messages = payload.get("batch")
        if not isinstance(messages, list):
            quarantine_id = await run_in_threadpool(
                quarantine_raw,
                app.state.db,
                source_id=source.id,
                received_at=received_at,
                payload=body.decode("utf-8", "replace"),
                reason="batch: must be a list of messages",
            )
            return error_response(
                400,
                "invalid_message",
                "batch: must be a list of messages",
                [{"field": "batch", "reason": "must be a list of messages", "quarantineId": quarantine_id}],
            )
        try:
            batch_sent_at = parse_time(payload.get("sentAt"), "sentAt")
        except ValueError:
            batch_sent_at = None  # each message is checked on its own; a bad batch sentAt just isn't used
        context = payload.get("context")
        batch_context = context if isinstance(context, dict) else None
    else:
        messages = [payload]
    submission = await run_in_threadpool(
        prepare,
        source,
        messages,
        settings=settings,
        received_at=received_at,
        batch_sent_at=batch_sent_at,
        batch_context=batch_context,
        forced_type=forced_type,
        sizes=_sizes(body, forced_type, settings.max_message_bytes),
    )
    result: IngestResult = await asyncio.wrap_future(app.state.ingest_writer.submit(submission))
    if result.rejected:
        rejected = len(result.rejected)
        first = result.rejected[0]
        message = (
            f"{rejected} of {len(messages)} message(s) rejected and quarantined; "
            f"first: {first.field + ': ' if first.field else ''}{first.reason}"
        )
        return error_response(
            400,
            "invalid_message",
            message,
            [r.as_dict() for r in result.rejected],
            accepted=result.accepted,
            duplicates=result.duplicates,
        )
    return JSONResponse({"success": True, "accepted": result.accepted, "duplicates": result.duplicates})


def _rate_limited(
    request: Request, source: SourceInfo, payload: Any, forced_type: str | None, now: datetime
) -> JSONResponse | None:
    """429 when the write key is over THREADLINE_INGEST_RATE_LIMIT (per process: api/rate_limits.py);
    a batch costs one token per message, anything else (even an unreadable body) one."""
    buckets = request.app.state.ingest_limits
    if not buckets.enabled:
        return None
    batch = payload.get("batch") if forced_type is None and isinstance(payload, dict) else None
    cost = len(batch) if isinstance(batch, list) and batch else 1
    wait = buckets.take(str(source.id), cost, now=now.timestamp())
    if not wait:
        return None
    response = error_response(
        429,
        "rate_limited",
        f"this write key sends more than {buckets.rate:g} messages a second; retry after the "
        "Retry-After header's seconds",
    )
    response.headers["Retry-After"] = retry_after(wait)
    return response


def _sizes(body: bytes, forced_type: str | None, limit: int) -> Callable[[Any], int] | None:
    """How to measure each message against the per-message limit, as cheaply as is exact."""
    if forced_type:
        return lambda _raw: len(body)  # the body is the message
    if len(body) <= limit:
        return lambda _raw: 0  # the whole batch fits: no message in it can be over the limit
    return None


def _single(kind: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        return await _handle(request, kind)

    endpoint.__name__ = f"ingest_{kind}"
    return endpoint


for _kind in ("identify", "track", "page", "screen", "group", "alias"):
    router.add_api_route(
        f"/v1/{_kind}",
        _single(_kind),
        methods=["POST"],
        summary=f"Segment {_kind} call",
        response_class=JSONResponse,
    )
for _short, _kind in SHORT_PATHS.items():
    router.add_api_route(f"/v1/{_short}", _single(_kind), methods=["POST"], include_in_schema=False)


@router.post("/v1/batch", summary="Segment batch call: {batch: [messages], sentAt, context}")
async def batch(request: Request) -> JSONResponse:
    return await _handle(request, None)


router.add_api_route("/v1/b", batch, methods=["POST"], include_in_schema=False)
