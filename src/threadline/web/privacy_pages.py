"""Privacy requests: the queue of data subject requests, one request's page with its steps, and the
readable copy of a person's data (the right of access). Admins only, like the settings pages."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo
from threadline.errors import Conflict, Invalid, NotFound
from threadline.privacy import (
    KINDS,
    REGULATIONS,
    VERIFICATIONS,
    access_export,
    carry_out,
    create_request,
    get_request,
    list_requests,
    record,
    reject_request,
    request_counts,
    verify_request,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
KIND_NAMES = {
    "access": N_("Access (a copy of their data)"),
    "rectification": N_("Rectification"),
    "erasure": N_("Erasure"),
    "restriction": N_("Restriction of processing"),
    "objection": N_("Objection"),
}
STATUS_NAMES = {
    "received": N_("received"),
    "verified": N_("verified"),
    "completed": N_("completed"),
    "rejected": N_("rejected"),
}
VERIFICATION_NAMES = {
    "signed_in": N_("signed in to their account"),
    "email_confirmation": N_("confirmed from their email address"),
    "known_contact": N_("wrote from a contact we know"),
    "id_document": N_("showed an identity document"),
    "other": N_("other (see the note)"),
}


def _refused(request: Request, user: UserInfo) -> Response | None:
    return None if user.role == "admin" else render(request, "account_forbidden.html", 403, user=user)


def _names() -> dict[str, Any]:
    return {
        "kind_names": KIND_NAMES,
        "status_names": STATUS_NAMES,
        "verification_names": VERIFICATION_NAMES,
        "kinds": KINDS,
        "regulations": tuple(REGULATIONS),
        "verifications": VERIFICATIONS,
    }


def _list_page(
    request: Request, user: UserInfo, status: int = 200, *, error: str | None = None, form: Any = None
) -> Response:
    db: Database = request.app.state.db
    now = request.app.state.clock()
    shown = request.query_params.get("status", "open")
    return render(
        request,
        "privacy_requests.html",
        status,
        user=user,
        requests=list_requests(db, status=shown if shown != "all" else None),
        counts=request_counts(db, now=now),
        shown=shown,
        now=now,
        error=error,
        form=form or {},
        **_names(),
    )


@router.get("/privacy")
def privacy_requests(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _list_page(request, user)


@router.post("/privacy")
async def new_privacy_request(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    now = request.app.state.clock()
    kind = str(form.get("kind", ""))
    details: dict[str, Any] = {}
    if kind == "rectification":
        traits = {}
        for line in str(form.get("corrections", "")).splitlines():
            key, _, value = line.partition("=")
            if key.strip():
                traits[key.strip()] = value.strip()
        details["traits"] = traits or None
    if kind == "objection":
        details["purposes"] = [str(p) for p in form.getlist("purposes")] or ["marketing"]
    try:
        request_id = create_request(
            db,
            request.app.state.settings,
            kind=kind,
            regulation=str(form.get("regulation", "gdpr")),
            requester=str(form.get("requester", "")) or None,
            subject=str(form.get("subject", "")) or None,
            details=details,
            received_at=now,
            user_id=user.id,
            note=str(form.get("note", "")) or None,
        )
    except (Invalid, NotFound) as problem:
        return _list_page(request, user, 400, error=problem.message, form=dict(form))
    record(
        db,
        actor_of(request, user.id),
        "create",
        "privacy_request",
        str(request_id),
        at=now,
        details={"kind": kind, "via": "web"},
    )
    return RedirectResponse(f"/privacy/{request_id}", status_code=303)


def _detail(
    request: Request, user: UserInfo, request_id: int, status: int = 200, error: str | None = None
) -> Response:
    db: Database = request.app.state.db
    try:
        view = get_request(db, request_id)
    except NotFound:
        return render(request, "not_found.html", 404, user=user)
    return render(
        request,
        "privacy_request.html",
        status,
        user=user,
        req=view,
        now=request.app.state.clock(),
        error=error,
        done=request.query_params.get("done"),
        **_names(),
    )


@router.get("/privacy/{request_id}")
def privacy_request(request: Request, user: WebUser, request_id: int) -> Response:
    return _refused(request, user) or _detail(request, user, request_id)


@router.post("/privacy/{request_id}/{step}")
async def privacy_request_step(request: Request, user: WebUser, request_id: int, step: str) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    now = request.app.state.clock()
    actor = actor_of(request, user.id)
    try:
        if step == "verify":
            method = str(form.get("method", ""))
            verify_request(
                db,
                request_id,
                method=method,
                note=str(form.get("note", "")) or None,
                user_id=user.id,
                now=now,
            )
            record(
                db,
                actor,
                "change",
                "privacy_request",
                str(request_id),
                at=now,
                details={"step": "verified", "method": method, "via": "web"},
            )
        elif step == "reject":
            reject_request(db, request_id, reason=str(form.get("reason", "")), user_id=user.id, now=now)
            record(
                db,
                actor,
                "change",
                "privacy_request",
                str(request_id),
                at=now,
                details={"step": "rejected", "via": "web"},
            )
        elif step == "carry-out":
            view = get_request(db, request_id)
            outcome = carry_out(db, request.app.state.settings, request_id, user_id=user.id, now=now)
            details: dict[str, Any] = {"kind": view.kind, "privacy_request": request_id, "via": "web"}
            if view.kind == "erasure":
                details["rows"] = outcome.get("rows", {})
            record(
                db,
                actor,
                "delete" if view.kind == "erasure" else "change",
                "profile",
                view.profile_id,
                at=now,
                details=details,
            )
        else:
            return render(request, "not_found.html", 404, user=user)
    except (Invalid, Conflict) as problem:
        return _detail(request, user, request_id, 400, error=problem.message)
    except NotFound:
        return render(request, "not_found.html", 404, user=user)
    return RedirectResponse(f"/privacy/{request_id}?done={step}", status_code=303)


@router.get("/privacy/{request_id}/export")
def privacy_export(request: Request, user: WebUser, request_id: int) -> Response:
    """The person's data as a readable document (print it or save it as a PDF from the browser), or as
    JSON with ?format=json; every copy handed out is audited and logged on the request."""
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    now = request.app.state.clock()
    try:
        export = access_export(db, request_id, user_id=user.id, now=now)
    except Conflict as problem:
        return _detail(request, user, request_id, 409, error=problem.message)
    except NotFound:
        return render(request, "not_found.html", 404, user=user)
    as_json = request.query_params.get("format") == "json"
    record(
        db,
        actor_of(request, user.id),
        "export",
        "profile",
        export["profile_id"],
        at=now,
        details={"privacy_request": request_id, "format": "json" if as_json else "html", "via": "web"},
    )
    if as_json:
        return Response(
            orjson.dumps(export, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="privacy-request-{request_id}.json"'},
        )
    profile = export["profile"]
    sections = {k: v for k, v in export.items() if k not in {"profile_id", "profile"}}
    return render(
        request,
        "privacy_export.html",
        user=user,
        req_id=request_id,
        profile=profile,
        sections=sections,
        now=now,
    )
