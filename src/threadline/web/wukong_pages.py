"""The WukongCRM (悟空CRM) import page for admins and managers: upload an export, see what was created,
skipped and rejected (with the line and the Chinese column), and download the rejects file.

Thin: threadline.sales.wukong reads and stores; this page checks the permission first so an agent sees
why, not a half-filled form.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from threadline.accounts import viewer_for
from threadline.errors import Forbidden, Invalid
from threadline.privacy import record
from threadline.sales import WUKONG_KINDS, import_wukong, parse_owner_map
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)

KIND_NAMES = {
    "customers": N_("Customers (客户)"),
    "contacts": N_("Contacts (联系人)"),
    "leads": N_("Leads (线索)"),
    "follow-ups": N_("Follow-ups (跟进记录)"),
}


def _may_import(request: Request, user: WebUser) -> bool:
    viewer = viewer_for(request.app.state.db, user.id, user.role)
    return viewer.can("create") and viewer.can("transfer")


@router.get("/import/wukong")
def wukong_page(request: Request, user: WebUser) -> Response:
    if not _may_import(request, user):
        return render(request, "account_forbidden.html", 403, user=user)
    return render(
        request, "wukong_import.html", user=user, kinds=KIND_NAMES, outcome=None, chosen="customers"
    )


@router.post("/import/wukong")
def wukong_submit(
    request: Request,
    user: WebUser,
    csrf: str = Form(""),
    kind: str = Form("customers"),
    mode: str = Form("skip"),
    owner_map: str = Form(""),
    file: UploadFile = File(...),
) -> Response:
    check_csrf(request, csrf)
    if not _may_import(request, user):
        return render(request, "account_forbidden.html", 403, user=user)
    db = request.app.state.db
    now = request.app.state.clock()
    page: dict[str, Any] = {
        "user": user,
        "kinds": KIND_NAMES,
        "chosen": kind if kind in WUKONG_KINDS else "customers",
    }
    try:
        outcome = import_wukong(
            db,
            viewer_for(db, user.id, user.role),
            kind,
            file.filename or "",
            file.file.read(),
            mode=mode,
            owner_map=parse_owner_map(owner_map),
            settings=request.app.state.settings,
            now=now,
        )
    except (Invalid, Forbidden) as problem:
        return render(request, "wukong_import.html", 400, outcome=None, error=problem.message, **page)
    details = {"via": "web", **outcome.summary()}
    record(db, actor_of(request, user.id), "import", outcome.object_type, None, at=now, details=details)
    rejects = outcome.rejects_file("csv").decode() if outcome.rejects else ""
    return render(request, "wukong_import.html", outcome=outcome, rejects_csv=rejects, **page)
