"""Settings → Custom fields: the fields each sales entity carries beside its own (leads, accounts,
contacts, deals), added, changed and removed on a page.

Admins only, through threadline.sales' save_custom_field / delete_custom_field like the REST API, so the
page names the same field at fault. A field's entity and key are fixed once made (values are stored
under the key); its label, type, options, flags and position can change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, viewer_for
from threadline.errors import Invalid, NotFound
from threadline.privacy import record
from threadline.sales import (
    CUSTOM_FIELD_TYPES,
    ENTITIES,
    delete_custom_field,
    list_custom_fields,
    save_custom_field,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PATH = "/settings/custom-fields"
ENTITY_NAMES = {
    "lead": N_("Leads"),
    "account": N_("Accounts"),
    "contact": N_("Contacts"),
    "deal": N_("Deals"),
}
TYPE_NAMES = {
    "text": N_("Text"),
    "number": N_("Number"),
    "date": N_("Date"),
    "select": N_("One of a list"),
    "multi_select": N_("Several of a list"),
    "user": N_("A user"),
    "boolean": N_("Yes or no"),
}
NOTICES = {"saved": N_("Custom field saved."), "deleted": N_("Custom field removed; stored values stay.")}
NEW = {"entity": "account", "key": "", "label": "", "type": "text", "options": "", "position": "0"}


def _refused(request: Request, user: UserInfo) -> Response | None:
    return None if user.role == "admin" else render(request, "account_forbidden.html", 403, user=user)


def _page(
    request: Request, user: UserInfo, status: int = 200, *, entered: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:  # fmt: skip
    db: Database = request.app.state.db
    return render(
        request,
        "custom_fields.html",
        status,
        user=user,
        fields=list_custom_fields(db),
        entities=ENTITIES,
        entity_names=ENTITY_NAMES,
        types=CUSTOM_FIELD_TYPES,
        type_names=TYPE_NAMES,
        entered=entered or NEW,
        error=error,
        notice=NOTICES.get(request.query_params.get("done", "")),
    )


@router.get(PATH)
def custom_fields_page(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _page(request, user)


def _spec(form: Any) -> dict[str, Any]:
    position = str(form.get("position", "0")).strip() or "0"
    return {
        "entity": str(form.get("entity", "")),
        "key": str(form.get("key", "")),
        "label": str(form.get("label", "")),
        "type": str(form.get("type", "")),
        "options": str(form.get("options", "")),
        "required": form.get("required") == "on",
        "unique": form.get("unique") == "on",
        "position": int(position) if position.lstrip("-").isdigit() else position,
    }


async def _save(request: Request, user: UserInfo, field_id: int | None) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    spec = _spec(form)
    db: Database = request.app.state.db
    try:
        saved = save_custom_field(db, viewer_for(db, user.id, user.role), spec, field_id=field_id)
    except (Invalid, NotFound) as problem:
        entered = {**spec, "options": spec["options"], "position": str(spec["position"]), "id": field_id}
        return _page(request, user, 404 if isinstance(problem, NotFound) else 400, entered=entered,
                     error=problem.message)  # fmt: skip
    now = request.app.state.clock()
    action = "create" if field_id is None else "change"
    record(
        db, actor_of(request, user.id), action, "custom_field", str(saved.id), at=now, details={"via": "web"}
    )
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)


@router.post(PATH)
async def create_custom_field(request: Request, user: WebUser) -> Response:
    return await _save(request, user, None)


@router.post(PATH + "/{field_id}")
async def change_custom_field(request: Request, field_id: int, user: WebUser) -> Response:
    return await _save(request, user, field_id)


@router.post(PATH + "/{field_id}/delete")
async def remove_custom_field(request: Request, field_id: int, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    try:
        delete_custom_field(db, viewer_for(db, user.id, user.role), field_id)
    except NotFound as problem:
        return _page(request, user, 404, error=problem.message)
    now = request.app.state.clock()
    record(
        db,
        actor_of(request, user.id),
        "delete",
        "custom_field",
        str(field_id),
        at=now,
        details={"via": "web"},
    )
    return RedirectResponse(f"{PATH}?done=deleted", status_code=303)
