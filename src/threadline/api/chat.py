"""The web chat widget's endpoints (static/chat-widget.js): open a session, post a visitor's message,
and the session's event stream (server-sent events) that carries the history and the agents' replies.

Like the tracker's ingestion, the write key of a web (or chat) source authorises them, not a cookie:
the widget runs on the customer's site, cross-origin (the app's CORS middleware allows any origin
without credentials). Each session's secret (threadline.service.chat) keeps one visitor out of
another's session. Bodies are read as JSON whatever their content type, so the widget can post
text/plain and skip the CORS preflight, as threadline.js does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from threadline.api.errors import error_response
from threadline.api.responses import JSONResponse
from threadline.errors import Invalid
from threadline.ingest import SourceInfo
from threadline.service import (
    chat_history,
    chat_lines_after,
    chat_streams,
    check_chat_session,
    open_chat_session,
    receive_chat,
)

router = APIRouter(tags=["chat"])

MAX_BODY = 32_000
KEEPALIVE_SECONDS = 15.0  # a comment line that keeps proxies from closing an idle stream
CHAT_SOURCES = ("web", "chat")


class Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _source(request: Request, write_key: object) -> SourceInfo:
    found = (
        request.app.state.write_keys.lookup(write_key) if isinstance(write_key, str) and write_key else None
    )
    if found is None or found.channel not in CHAT_SOURCES:
        raise Refused(
            error_response(401, "invalid_write_key", "the write key of a web or chat source is required")
        )
    return found  # type: ignore[no-any-return]


async def _payload(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Refused(error_response(413, "too_large", f"request body is larger than {MAX_BODY // 1000} KB"))
    try:
        payload = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        raise Refused(error_response(400, "invalid_json", "body must be a JSON object", {"field": "body"}))
    return payload


def _session(request: Request, source: SourceInfo, session_id: str, secret: object) -> str:
    try:
        return check_chat_session(request.app.state.secret_key, source.id, session_id, secret)
    except Invalid as error:
        raise Refused(error_response(403, "forbidden", error.message, error.details)) from None


@router.post("/chat/sessions", status_code=201, summary="Open a chat session (the widget, with a write key)")
async def post_session(request: Request) -> JSONResponse:
    """201 `{"session_id", "secret"}`: the widget keeps both and sends the secret with every call."""
    try:
        source = _source(request, (await _payload(request)).get("writeKey"))
    except Refused as refused:
        return refused.response
    opened = open_chat_session(request.app.state.secret_key, source.id)
    return JSONResponse({"session_id": opened.session_id, "secret": opened.secret}, status_code=201)


@router.post("/chat/sessions/{session_id}/messages", status_code=201, summary="A visitor's chat message")
async def post_message(session_id: str, request: Request) -> JSONResponse:
    """Body: `writeKey`, `secret`, `anonymousId` (the tracker's), optional `email` and `name` (from
    the page's identify), `text`, `clientMessageId` (a retried post is stored once)."""
    app = request.app
    try:
        payload = await _payload(request)
        source = _source(request, payload.get("writeKey"))
        session_id = _session(request, source, session_id, payload.get("secret"))
    except Refused as refused:
        return refused.response
    received = await run_in_threadpool(
        receive_chat,
        app.state.db,
        app.state.settings,
        session_id=session_id,
        anonymous_id=payload.get("anonymousId"),
        email=payload.get("email"),
        name=payload.get("name"),
        text=payload.get("text"),
        client_message_id=payload.get("clientMessageId"),
        at=app.state.clock(),
    )
    # An erased person's message is dropped without saying so, as ingestion does.
    return JSONResponse({"id": received.message_id if received else None}, status_code=201)


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.get("/chat/sessions/{session_id}/events", summary="The session's stream: history, then replies")
async def get_events(session_id: str, request: Request, writeKey: str = "", secret: str = "") -> Any:
    """Server-sent events (EventSource cannot send headers, hence the query): `history` with every
    line so far on each (re)connect, then `message` for each agent's reply."""
    app = request.app
    try:
        source = _source(request, writeKey)
        session_id = _session(request, source, session_id, secret)
    except Refused as refused:
        return refused.response

    async def events() -> AsyncIterator[bytes]:
        # Subscribed before the history is read, so a reply stored in between is not missed (the
        # widget drops lines it already shows, by id).
        stream = chat_streams.subscribe(session_id, asyncio.get_running_loop())
        poll = app.state.settings.chat_poll_seconds
        try:
            history = await run_in_threadpool(chat_history, app.state.db, session_id)
            yield _event("history", [line.as_dict() for line in history])
            seen = max((line.id for line in history), default=0)
            quiet = 0.0
            while True:
                try:
                    line = await asyncio.wait_for(stream.queue.get(), poll)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    # Replies another server process stored: this one's queue never hears of them.
                    missed = await run_in_threadpool(chat_lines_after, app.state.db, session_id, seen)
                    for found in missed:
                        seen = max(seen, found.id)
                        yield _event("message", found.as_dict())
                    quiet = 0.0 if missed else quiet + poll
                    if quiet >= KEEPALIVE_SECONDS:
                        quiet = 0.0
                        yield b": keep-alive\n\n"
                    continue
                seen = max(seen, int(line["id"]))
                quiet = 0.0
                yield _event("message", line)
        finally:
            chat_streams.unsubscribe(stream)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
