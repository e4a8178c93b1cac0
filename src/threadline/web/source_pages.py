"""The Sources page (write keys, activity, the quarantine) and its live event debugger (SSE).

Admins only. Other roles get a readable 403 page rather than a 404: the Sources page is a fixed part of
the workspace, not a record whose existence must be hidden (the 404 rule is for customers one may not
see), and "this needs the admin role" tells an agent who followed a link what to ask for. The check runs
before any lookup, so a 403 says nothing about which source names exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from threadline.accounts import UserInfo
from threadline.config import CHANNELS
from threadline.errors import Conflict, Invalid, NotFound
from threadline.ingest import (
    SourceInfo,
    Subscription,
    activate_source,
    create_source,
    get_source,
    live_feed,
    revoke_source,
    rotate_write_key,
    source_activity,
    source_quarantine,
)
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
QUARANTINE_PAGE = 25
HEARTBEAT_SECONDS = 15.0  # below the 30-60 s idle timeouts of common proxies and load balancers
Csrf = Annotated[str, Form()]  # defaults to "" below, so a missing token is a 403, not a 400


def _refused(request: Request, user: UserInfo) -> Response | None:
    if user.role == "admin":
        return None
    return render(request, "sources_error.html", status=403, user=user)


def _missing(request: Request, user: UserInfo, name: str) -> Response:
    return render(request, "sources_error.html", status=404, user=user, missing=name)


def _back(done: str, source: str) -> RedirectResponse:
    return RedirectResponse(f"/sources?{urlencode({'done': done, 'source': source})}", status_code=303)


def _sources_page(request: Request, user: UserInfo, status: int = 200, **form: str) -> Response:
    activity = source_activity(request.app.state.db, days=14, now=request.app.state.clock())
    peak = max((n for a in activity for _, n in a.days), default=0) or 1
    return render(
        request,
        "sources.html",
        status=status,
        user=user,
        activity=activity,
        peak=peak,
        channels=CHANNELS,
        done=request.query_params.get("done", ""),
        done_source=request.query_params.get("source", ""),
        form=form,
    )


@router.get("/sources")
def sources(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _sources_page(request, user)


@router.post("/sources")
def create(
    request: Request,
    user: WebUser,
    csrf: Csrf = "",
    name: Annotated[str, Form()] = "",
    channel: Annotated[str, Form()] = "",
) -> Response:
    if refused := _refused(request, user):
        return refused
    check_csrf(request, csrf)
    try:
        source = create_source(request.app.state.db, name, channel, now=request.app.state.clock())
    except (Invalid, Conflict) as error:
        return _sources_page(request, user, status=400, name=name, channel=channel, error=error.message)
    return _back("created", source.name)


@router.post("/sources/{name}/rotate")
def rotate(request: Request, name: str, user: WebUser, csrf: Csrf = "") -> Response:
    if refused := _refused(request, user):
        return refused
    check_csrf(request, csrf)
    try:
        _, old_key = rotate_write_key(request.app.state.db, name)
    except NotFound:
        return _missing(request, user, name)
    request.app.state.write_keys.forget(old_key)  # refused from the next request on, not in 5 s
    return _back("rotated", name)


@router.post("/sources/{name}/revoke")
def revoke(request: Request, name: str, user: WebUser, csrf: Csrf = "") -> Response:
    if refused := _refused(request, user):
        return refused
    check_csrf(request, csrf)
    try:
        source = revoke_source(request.app.state.db, name, now=request.app.state.clock())
    except NotFound:
        return _missing(request, user, name)
    request.app.state.write_keys.forget(source.write_key)
    return _back("revoked", name)


@router.post("/sources/{name}/activate")
def activate(request: Request, name: str, user: WebUser, csrf: Csrf = "") -> Response:
    if refused := _refused(request, user):
        return refused
    check_csrf(request, csrf)
    try:
        source = activate_source(request.app.state.db, name)
    except NotFound:
        return _missing(request, user, name)
    request.app.state.write_keys.forget(source.write_key)  # it was cached as refused
    return _back("activated", name)


@router.get("/sources/{name}")
def source_page(request: Request, name: str, user: WebUser, before: int | None = None) -> Response:
    if refused := _refused(request, user):
        return refused
    try:
        source = get_source(request.app.state.db, name)
    except NotFound:
        return _missing(request, user, name)
    entries, next_before = source_quarantine(
        request.app.state.db, source, before=before, limit=QUARANTINE_PAGE
    )
    # htmx asks for the next page of the quarantine only; a browser without JS gets the whole page.
    template = "sources_quarantine.html" if request.headers.get("HX-Request") else "source.html"
    response = render(
        request,
        template,
        user=user,
        source=source,
        entries=entries,
        next_before=next_before,
        path=quote(source.name),
        older=before is not None,
    )
    # Add to Vary rather than replace it: the page also varies by language (web/render.py).
    vary = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    response.headers["Vary"] = ", ".join([*vary, "HX-Request"])
    return response


@router.get("/sources/{name}/live")
async def live(request: Request, name: str, user: WebUser) -> Response:
    """Server-sent events: one `data:` JSON line per message stored or quarantined for the source."""
    if refused := _refused(request, user):
        return refused
    source = await run_in_threadpool(get_source, request.app.state.db, name)
    return StreamingResponse(
        _events(source),
        media_type="text/event-stream",
        # no-cache and no proxy buffering: a debugger that shows messages a minute late is no use
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(source: SourceInfo) -> AsyncIterator[bytes]:
    # Subscribed before the first byte goes out, so a client that has read the opening comment
    # sees every message stored after it. Starlette cancels this generator when the client goes
    # away (it listens for http.disconnect); `finally` then unsubscribes.
    subscription: Subscription = live_feed.subscribe(source.id, asyncio.get_running_loop())
    try:
        yield b"retry: 3000\n: connected\n\n"
        while not subscription.closed:
            messages, dropped = await subscription.next(HEARTBEAT_SECONDS)
            chunks = [b"event: dropped\ndata: %d\n\n" % dropped] if dropped else []
            chunks += [b"data: " + message + b"\n\n" for message in messages]
            yield b"".join(chunks) or b": heartbeat\n\n"
    finally:
        live_feed.unsubscribe(subscription)
