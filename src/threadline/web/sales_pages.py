"""Sales pages: lists of leads, accounts and deals (search, filters, custom fields, paging, last and
next follow-up), a page per record with its form, the deal pipeline board, lead conversion, imports and
exports, and the 360 page's sales panel (loaded by htmx like the consent panel).

Thin: every read and change goes through threadline.sales, which applies the data scope; a record out of
scope answers the 404 page, and the attempt is audited.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from threadline.accounts import UserInfo, Viewer, viewer_for
from threadline.api.sales import MEDIA, PLURALS, entity_of
from threadline.errors import Forbidden, Invalid, NotFound, ThreadlineError
from threadline.privacy import Actor, record
from threadline.profiles import ProfileNotFound, profile_view
from threadline.sales import (
    ACCOUNT_KINDS,
    LEAD_STATUSES,
    RecordQuery,
    close_deal,
    convert_lead,
    create_record,
    export_records,
    get_record,
    import_records,
    list_custom_fields,
    list_pipelines,
    list_records,
    move_deal,
    pipeline_board,
    read_table,
    sales_for_profile,
    template,
    update_record,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of, customer_not_found
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)

TITLES = {"lead": N_("Leads"), "account": N_("Accounts"), "contact": N_("Contacts"), "deal": N_("Deals")}
STATUS_NAMES = {
    "new": N_("new"),
    "contacted": N_("contacted"),
    "qualified": N_("qualified"),
    "unqualified": N_("unqualified"),
    "converted": N_("converted"),
    "open": N_("open"),
    "won": N_("won"),
    "lost": N_("lost"),
    "company": N_("company"),
    "person": N_("person"),
}
FIELD_LABELS = {
    "name": N_("Name"),
    "company": N_("Company"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "source": N_("Source"),
    "status": N_("Status"),
    "owner_id": N_("Owner"),
    "kind": N_("Kind"),
    "industry": N_("Industry"),
    "region": N_("Region"),
    "level": N_("Level"),
    "account_id": N_("Account"),
    "title": N_("Job title"),
    "is_decision_maker": N_("Key decision maker"),
    "pipeline_id": N_("Pipeline"),
    "stage": N_("Stage"),
    "amount": N_("Amount"),
    "currency": N_("Currency"),
    "expected_close": N_("Expected close"),
}
FORM_FIELDS = {
    "lead": ("name", "company", "email", "phone", "source", "status"),
    "account": ("name", "kind", "industry", "region", "source", "level"),
    "contact": ("account_id", "name", "title", "email", "phone", "is_decision_maker"),
    "deal": ("name", "account_id", "pipeline_id", "stage", "amount", "currency", "expected_close"),
}


def _scope(request: Request, user: UserInfo) -> tuple[Database, Viewer, Actor]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user.id, user.role), actor_of(request, user.id)


def _audit(request: Request, actor: Actor, action: str, entity: str, record_id: Any, **details: Any) -> None:
    record(
        request.app.state.db,
        actor,
        action,
        entity,
        None if record_id is None else str(record_id),
        at=request.app.state.clock(),
        details={"via": "web", **details},
    )


def _denied(
    request: Request, user: UserInfo, actor: Actor, entity: str, record_id: int, error: NotFound
) -> Response:
    scoped = isinstance(error.details, dict) and bool(error.details.get("out_of_scope"))
    _audit(request, actor, "denied", entity, record_id, out_of_scope=scoped)
    return render(request, "not_found.html", 404, user=user)


def _names() -> dict[str, Any]:
    return {"status_names": STATUS_NAMES, "field_labels": FIELD_LABELS, "titles": TITLES}


def _query(request: Request) -> RecordQuery:
    params = request.query_params
    page = params.get("page", "1")
    return RecordQuery(
        q=params.get("q", ""),
        status=params.get("status", ""),
        owner=params.get("owner", ""),
        kind=params.get("kind", ""),
        stage=params.get("stage", ""),
        custom={k[len("custom.") :]: v for k, v in params.items() if k.startswith("custom.") and v},
        page=int(page) if page.isdigit() else 1,
    )


def _form_values(entity: str, form: FormData, fields: list[Any]) -> dict[str, Any]:
    """The form's standard fields and custom fields (`custom.<key>`, several values for multi-select)."""
    raw: dict[str, Any] = {}
    for key in FORM_FIELDS[entity]:
        if key == "is_decision_maker":
            raw[key] = form.get(key) == "on"
        elif key in form:
            raw[key] = str(form.get(key) or "")
    custom: dict[str, Any] = {}
    for f in fields:
        name = f"custom.{f.key}"
        if f.type == "multi_select":
            custom[f.key] = [str(v) for v in form.getlist(name)]
        elif f.type == "boolean":
            custom[f.key] = form.get(name) == "on"
        elif name in form:
            custom[f.key] = str(form.get(name) or "")
    if custom:
        raw["custom"] = custom
    return raw


def _list(request: Request, user: UserInfo, entity: str) -> Response:
    db, viewer, _ = _scope(request, user)
    query = _query(request)
    error = None
    try:
        page = list_records(db, viewer, entity, query)
    except Invalid as problem:
        error, page = problem.message, list_records(db, viewer, entity, RecordQuery())
    params = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return render(
        request,
        "sales_list.html",
        400 if error else 200,
        user=user,
        entity=entity,
        plural=f"{entity}s",
        page=page,
        query=query,
        error=error,
        filter_string=urlencode(params),
        custom_fields=list_custom_fields(db, entity),
        statuses=LEAD_STATUSES if entity == "lead" else ("open", "won", "lost") if entity == "deal" else (),
        kinds=ACCOUNT_KINDS,
        pages=max(1, -(-page.total // page.per_page)),
        can_create=viewer.can("create"),
        can_export=viewer.can("export"),
        **_names(),
    )


@router.get("/leads")
def leads_page(request: Request, user: WebUser) -> Response:
    return _list(request, user, "lead")


@router.get("/accounts")
def accounts_page(request: Request, user: WebUser) -> Response:
    return _list(request, user, "account")


@router.get("/contacts")
def contacts_page(request: Request, user: WebUser) -> Response:
    return _list(request, user, "contact")


@router.get("/deals")
def deals_page(request: Request, user: WebUser) -> Response:
    return _list(request, user, "deal")


@router.get("/deals/board")
def deal_board(request: Request, user: WebUser, pipeline: int | None = None) -> Response:
    db, viewer, _ = _scope(request, user)
    try:
        board = pipeline_board(db, viewer, pipeline)
    except Invalid:
        return render(request, "not_found.html", 404, user=user)
    return render(
        request,
        "sales_board.html",
        user=user,
        board=board,
        pipelines=list_pipelines(db),
        can_edit=viewer.can("edit"),
        **_names(),
    )


def _detail(
    request: Request,
    user: UserInfo,
    entity: str,
    record_id: int | None,
    status: int = 200,
    *,
    error: str | None = None,
    error_field: str | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    db, viewer, actor = _scope(request, user)
    view: dict[str, Any] = {}
    if record_id is not None:
        try:
            view = get_record(db, viewer, entity, record_id)
        except NotFound as problem:
            return _denied(request, user, actor, entity, record_id, problem)
        _audit(request, actor, "view", entity, record_id)
    shown = {**view, **(values or {})}
    if values and "custom" in values:
        shown["custom"] = {**view.get("custom", {}), **values["custom"]}
    return render(
        request,
        "sales_record.html",
        status,
        user=user,
        entity=entity,
        plural=f"{entity}s",
        record=view,
        shown=shown,
        form_fields=FORM_FIELDS[entity],
        custom_fields=list_custom_fields(db, entity),
        pipelines=list_pipelines(db) if entity == "deal" else [],
        accounts=list_records(db, viewer, "account", RecordQuery(per_page=200)).rows
        if entity in ("contact", "deal")
        else [],
        statuses=LEAD_STATUSES[:4],
        kinds=ACCOUNT_KINDS,
        error=error,
        error_field=error_field,
        can_edit=viewer.can("edit") if record_id is not None else viewer.can("create"),
        **_names(),
    )


def new_record_page(request: Request, plural: str, user: WebUser) -> Response:
    if plural not in PLURALS:
        return render(request, "not_found.html", 404, user=user)
    return _detail(request, user, PLURALS[plural], None, values=dict(request.query_params))


def record_page(request: Request, plural: str, record_id: int, user: WebUser) -> Response:
    if plural not in PLURALS:
        return render(request, "not_found.html", 404, user=user)
    return _detail(request, user, PLURALS[plural], record_id)


async def _save(request: Request, user: UserInfo, plural: str, record_id: int | None) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if plural not in PLURALS:
        return render(request, "not_found.html", 404, user=user)
    entity = PLURALS[plural]
    db, viewer, actor = _scope(request, user)
    settings, now = request.app.state.settings, request.app.state.clock()
    raw = _form_values(entity, form, list_custom_fields(db, entity))
    try:
        if record_id is None:
            view = create_record(db, viewer, entity, raw, settings=settings, now=now)
            _audit(request, actor, "create", entity, view["id"])
        else:
            view = update_record(db, viewer, entity, record_id, raw, settings=settings, now=now)
            _audit(request, actor, "change", entity, record_id, fields=sorted(raw))
    except NotFound as problem:
        return _denied(request, user, actor, entity, record_id or 0, problem)
    except (Invalid, Forbidden) as problem:
        field = problem.details.get("field") if isinstance(problem.details, dict) else None
        code = 400 if isinstance(problem, Invalid) else 403
        return _detail(
            request, user, entity, record_id, code, error=problem.message, error_field=field, values=raw
        )
    return RedirectResponse(f"/{plural}/{view['id']}", status_code=303)


async def create_record_page(request: Request, plural: str, user: WebUser) -> Response:
    return await _save(request, user, plural, None)


async def update_record_page(request: Request, plural: str, record_id: int, user: WebUser) -> Response:
    return await _save(request, user, plural, record_id)


@router.post("/deals/{deal_id}/stage")
def move_deal_page(
    request: Request,
    deal_id: int,
    user: WebUser,
    csrf: str = Form(""),
    stage: str = Form(""),
    back: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user)
    try:
        view = move_deal(db, viewer, deal_id, stage, now=request.app.state.clock())
    except NotFound as problem:
        return _denied(request, user, actor, "deal", deal_id, problem)
    except (Invalid, Forbidden) as problem:
        return _detail(request, user, "deal", deal_id, 400, error=problem.message)
    _audit(request, actor, "change", "deal", deal_id, change="stage", stage=view["stage"])
    target = "/deals/board" + (f"?pipeline={view['pipeline_id']}" if back == "board" else "")
    return RedirectResponse(target if back == "board" else f"/deals/{deal_id}", status_code=303)


@router.post("/deals/{deal_id}/close")
def close_deal_page(
    request: Request,
    deal_id: int,
    user: WebUser,
    csrf: str = Form(""),
    status: str = Form(""),
    lost_reason: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user)
    try:
        close_deal(db, viewer, deal_id, status, reason=lost_reason, now=request.app.state.clock())
    except NotFound as problem:
        return _denied(request, user, actor, "deal", deal_id, problem)
    except (Invalid, Forbidden) as problem:
        return _detail(request, user, "deal", deal_id, 400, error=problem.message, error_field="lost_reason")
    _audit(request, actor, "change", "deal", deal_id, change=status)
    return RedirectResponse(f"/deals/{deal_id}", status_code=303)


@router.get("/leads/{lead_id}/convert")
def convert_page(request: Request, lead_id: int, user: WebUser) -> Response:
    return _convert_form(request, user, lead_id)


def _convert_form(
    request: Request, user: UserInfo, lead_id: int, status: int = 200, error: str | None = None
) -> Response:
    db, viewer, actor = _scope(request, user)
    try:
        lead = get_record(db, viewer, "lead", lead_id)
    except NotFound as problem:
        return _denied(request, user, actor, "lead", lead_id, problem)
    return render(
        request,
        "sales_convert.html",
        status,
        user=user,
        lead=lead,
        pipelines=list_pipelines(db),
        error=error,
        kinds=ACCOUNT_KINDS,
        **_names(),
    )


@router.post("/leads/{lead_id}/convert")
async def convert_submit(request: Request, lead_id: int, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    db, viewer, actor = _scope(request, user)
    text = {k: str(v) for k, v in form.items()}
    deal = None
    if text.get("with_deal") == "on":
        deal = {k[len("deal_") :]: v for k, v in text.items() if k.startswith("deal_") and v}
    account = {"name": text["account_name"]} if text.get("account_name") else {}
    try:
        view = convert_lead(
            db,
            viewer,
            lead_id,
            kind=text.get("kind", "company"),
            account=account,
            deal=deal,
            settings=request.app.state.settings,
            now=request.app.state.clock(),
        )
    except NotFound as problem:
        return _denied(request, user, actor, "lead", lead_id, problem)
    except ThreadlineError as problem:
        return _convert_form(request, user, lead_id, 400, problem.message)
    _audit(
        request, actor, "change", "lead", lead_id, change="convert", account_id=view["converted_account_id"]
    )
    return RedirectResponse(f"/accounts/{view['converted_account_id']}", status_code=303)


# -- files ----------------------------------------------------------------------------------------------
def template_file(request: Request, plural: str, fmt: str, user: WebUser) -> Response:
    entity = entity_of(plural)
    db, _, _ = _scope(request, user)
    headers = {"Content-Disposition": f'attachment; filename="{plural}-template.{fmt}"'}
    return Response(template(db, entity, fmt), media_type=MEDIA.get(fmt, "text/csv"), headers=headers)


def export_file(request: Request, plural: str, fmt: str, user: WebUser) -> Response:
    entity = entity_of(plural)
    db, viewer, actor = _scope(request, user)
    query = _query(request)
    try:
        data, count = export_records(db, viewer, entity, query, fmt)
    except Forbidden:
        return render(request, "account_forbidden.html", 403, user=user)
    _audit(request, actor, "export", entity, None, count=count, filters=query.names(), format=fmt)
    headers = {"Content-Disposition": f'attachment; filename="{plural}.{fmt}"'}
    return Response(data, media_type=MEDIA[fmt], headers=headers)


def import_page(request: Request, plural: str, user: WebUser) -> Response:
    entity_of(plural)
    return render(
        request,
        "sales_import.html",
        user=user,
        plural=plural,
        entity=PLURALS[plural],
        outcome=None,
        **_names(),
    )


def import_submit(
    request: Request,
    plural: str,
    user: WebUser,
    csrf: str = Form(""),
    mode: str = Form("skip"),
    file: UploadFile = File(...),
) -> Response:
    check_csrf(request, csrf)
    entity = entity_of(plural)
    db, viewer, actor = _scope(request, user)
    try:
        header, rows = read_table(file.filename or "", file.file.read())
        outcome = import_records(
            db,
            viewer,
            entity,
            header,
            rows,
            mode=mode,
            settings=request.app.state.settings,
            now=request.app.state.clock(),
        )
    except (Invalid, Forbidden) as problem:
        return render(
            request, "sales_import.html", 400, user=user, plural=plural, entity=entity, outcome=None,
            error=problem.message, **_names(),
        )  # fmt: skip
    _audit(request, actor, "import", entity, None, **outcome.summary())
    rejects = outcome.rejects_file("csv").decode() if outcome.rejects else ""
    return render(
        request, "sales_import.html", user=user, plural=plural, entity=entity, outcome=outcome,
        rejects_csv=rejects, **_names(),
    )  # fmt: skip


# -- the 360 page's panel -------------------------------------------------------------------------------
@router.get("/customers/{profile_id}/sales")
def customer_sales(request: Request, profile_id: str, user: WebUser) -> Response:
    db, viewer, actor = _scope(request, user)
    try:
        live = profile_view(db, profile_id, viewer=viewer)["id"]
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem, part="sales")
    sales = sales_for_profile(db, viewer, live)
    _audit(request, actor, "view", "profile", profile_id, part="sales")
    page = request.headers.get("HX-Request") != "true"
    return render(
        request,
        "customer_sales_page.html" if page else "customer_sales_panel.html",
        user=user,
        profile_id=live,
        sales=sales,
        **_names(),
    )


# -- the four lists' own paths ------------------------------------------------------------------------------
def _for(endpoint: Callable[..., Any], plural: str) -> Callable[..., Any]:
    """`endpoint` with its `plural` fixed: each list gets literal paths ("/leads/new"), so no pattern of
    ours can catch another page's path such as "/tasks/new"."""
    signature = inspect.signature(endpoint)
    params = [p for p in signature.parameters.values() if p.name != "plural"]
    if inspect.iscoroutinefunction(endpoint):

        async def bound_async(**kwargs: Any) -> Any:
            return await endpoint(plural=plural, **kwargs)

        bound: Callable[..., Any] = bound_async
    else:

        def bound_sync(**kwargs: Any) -> Any:
            return endpoint(plural=plural, **kwargs)

        bound = bound_sync
    bound.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    bound.__name__ = f"{endpoint.__name__}_{plural}"
    return bound


# Static paths before "/{record_id}", which would take them otherwise.
for _plural in PLURALS:
    for _method, _path, _endpoint in (
        ("GET", "/template.{fmt}", template_file),
        ("GET", "/export.{fmt}", export_file),
        ("GET", "/import", import_page),
        ("POST", "/import", import_submit),
        ("GET", "/new", new_record_page),
        ("POST", "/new", create_record_page),
        ("GET", "/{record_id}", record_page),
        ("POST", "/{record_id}", update_record_page),
    ):
        router.add_api_route(f"/{_plural}{_path}", _for(_endpoint, _plural), methods=[_method])
