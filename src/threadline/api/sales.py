"""REST: leads, accounts, contacts and deals within the caller's data scope; converting leads; moving,
winning and losing deals; pipelines and custom fields (admins change them); templates, imports and exports.

Every change and export is audited with the record's id and counts, never its contents (names, emails and
phones are personal data). A record outside the scope answers 404 like one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep, SettingsDep
from threadline.api.responses import JSONResponse
from threadline.errors import Invalid, NotFound
from threadline.privacy import record
from threadline.sales import (
    ENTITIES,
    RecordQuery,
    close_deal,
    convert_lead,
    create_record,
    delete_custom_field,
    delete_record,
    export_records,
    get_record,
    import_records,
    list_custom_fields,
    list_pipelines,
    list_records,
    move_deal,
    pipeline_board,
    read_table,
    save_custom_field,
    save_pipeline,
    template,
    transfer_records,
    update_record,
)

router = APIRouter(prefix="/api/v1/sales", tags=["sales"])
PLURALS = {f"{e}s": e for e in ENTITIES}
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def entity_of(plural: str) -> str:
    if plural not in PLURALS:
        raise NotFound(f"no such list {plural!r}; use one of {', '.join(PLURALS)}")
    return PLURALS[plural]


def out(value: Any) -> Any:
    """Times in UTC with their Z, as the rest of the API writes them."""
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    if isinstance(value, dict):
        return {k: out(v) for k, v in value.items()}
    if isinstance(value, list):
        return [out(v) for v in value]
    return value


def _audit(
    request: Request, caller: CallerDep, action: str, entity: str, record_id: Any, **details: Any
) -> None:
    record(
        request.app.state.db,
        caller.actor,
        action,
        entity,
        None if record_id is None else str(record_id),
        at=request.app.state.clock(),
        details={"via": "api", **details},
    )


def _denied(request: Request, caller: CallerDep, entity: str, record_id: int, error: NotFound) -> NotFound:
    scoped = bool(isinstance(error.details, dict) and error.details.get("out_of_scope"))
    _audit(request, caller, "denied", entity, record_id, out_of_scope=scoped)
    return NotFound(f"{entity} {record_id} does not exist")


def _query(request: Request) -> RecordQuery:
    params = request.query_params
    custom = {k[len("custom.") :]: v for k, v in params.items() if k.startswith("custom.")}

    def number(name: str) -> int | None:
        raw = params.get(name, "")
        if not raw:
            return None
        if not raw.isdigit():
            raise Invalid(f"{name}: must be a whole number", details={"field": name})
        return int(raw)

    return RecordQuery(
        q=params.get("q", ""),
        status=params.get("status", ""),
        owner=params.get("owner", ""),
        kind=params.get("kind", ""),
        account_id=number("account_id"),
        pipeline_id=number("pipeline_id"),
        stage=params.get("stage", ""),
        custom=custom,
        page=number("page") or 1,
        per_page=number("per_page") or 50,
    )


# -- pipelines and custom fields (static paths before /{plural}/{id}) ---------------------------------------
class PipelineBody(BaseModel):
    name: str = Field(description="Shown on the board and the deal form; unique.")
    stages: list[dict[str, Any]] = Field(description="In order: {key, name, probability 0-100}.")
    is_default: bool = Field(False, description="New deals go to the default pipeline.")


@router.get("/pipelines", summary="Pipelines and their stages")
def get_pipelines(db: DatabaseDep, caller: CallerDep) -> JSONResponse:
    return JSONResponse([p.as_dict() for p in list_pipelines(db)])


@router.post("/pipelines", status_code=201, summary="Create a pipeline (admins)")
def post_pipeline(body: PipelineBody, request: Request, db: DatabaseDep, caller: CallerDep) -> JSONResponse:
    saved = save_pipeline(db, caller.viewer, body.name, body.stages, is_default=body.is_default)
    _audit(request, caller, "create", "pipeline", saved.id)
    return JSONResponse(saved.as_dict(), status_code=201)


@router.put("/pipelines/{pipeline_id}", summary="Change a pipeline (admins)")
def put_pipeline(
    pipeline_id: int, body: PipelineBody, request: Request, db: DatabaseDep, caller: CallerDep
) -> JSONResponse:
    saved = save_pipeline(
        db, caller.viewer, body.name, body.stages, is_default=body.is_default, pipeline_id=pipeline_id
    )
    _audit(request, caller, "change", "pipeline", saved.id)
    return JSONResponse(saved.as_dict())


@router.get("/pipelines/{pipeline_id}/board", summary="Open deals by stage, within the caller's scope")
def get_board(pipeline_id: int, db: DatabaseDep, caller: CallerDep) -> JSONResponse:
    return JSONResponse(out(pipeline_board(db, caller.viewer, pipeline_id)))


@router.get("/custom-fields", summary="Custom fields, optionally of one entity")
def get_custom_fields(db: DatabaseDep, caller: CallerDep, entity: str | None = None) -> JSONResponse:
    return JSONResponse([f.as_dict() for f in list_custom_fields(db, entity)])


@router.post("/custom-fields", status_code=201, summary="Add a custom field (admins)")
def post_custom_field(
    body: dict[str, Any], request: Request, db: DatabaseDep, caller: CallerDep
) -> JSONResponse:
    saved = save_custom_field(db, caller.viewer, body)
    _audit(request, caller, "create", "custom_field", saved.id)
    return JSONResponse(saved.as_dict(), status_code=201)


@router.put("/custom-fields/{field_id}", summary="Change a custom field (admins)")
def put_custom_field(
    field_id: int, body: dict[str, Any], request: Request, db: DatabaseDep, caller: CallerDep
) -> JSONResponse:
    saved = save_custom_field(db, caller.viewer, body, field_id=field_id)
    _audit(request, caller, "change", "custom_field", saved.id)
    return JSONResponse(saved.as_dict())


@router.delete("/custom-fields/{field_id}", status_code=204, summary="Remove a custom field (admins)")
def remove_custom_field(field_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    delete_custom_field(db, caller.viewer, field_id)
    _audit(request, caller, "delete", "custom_field", field_id)
    return Response(status_code=204)


# -- files ----------------------------------------------------------------------------------------------
@router.get(
    "/{plural}/template.{fmt}", summary="An empty import file with the columns, custom fields included"
)
def get_template(plural: str, fmt: str, db: DatabaseDep, caller: CallerDep) -> Response:
    entity = entity_of(plural)
    data = template(db, entity, fmt)
    headers = {"Content-Disposition": f'attachment; filename="{plural}-template.{fmt}"'}
    return Response(data, media_type=MEDIA[fmt], headers=headers)


@router.get(
    "/{plural}/export.{fmt}", summary="Every matching record in scope as CSV or XLSX (export permission)"
)
def get_export(plural: str, fmt: str, request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    entity = entity_of(plural)
    query = _query(request)
    data, count = export_records(db, caller.viewer, entity, query, fmt)
    _audit(request, caller, "export", entity, None, count=count, filters=query.names(), format=fmt)
    headers = {"Content-Disposition": f'attachment; filename="{plural}.{fmt}"'}
    return Response(data, media_type=MEDIA[fmt], headers=headers)


@router.post("/{plural}/import", summary="Import a CSV or XLSX file: duplicates skipped, updated or created")
def post_import(
    plural: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    file: UploadFile = File(description="A .csv (UTF-8) or .xlsx file with the template's columns."),
    mode: str = Form("skip", description="What a duplicate row does: skip, update or create."),
    respond: str = Form("summary", description="summary (JSON), or rejects: the rejects file as CSV."),
) -> Response:
    entity = entity_of(plural)
    header, rows = read_table(file.filename or "", file.file.read())
    now = request.app.state.clock()
    outcome = import_records(db, caller.viewer, entity, header, rows, mode=mode, settings=settings, now=now)
    _audit(request, caller, "import", entity, None, **outcome.summary())
    if respond == "rejects":
        headers = {"Content-Disposition": f'attachment; filename="{plural}-rejects.csv"'}
        return Response(outcome.rejects_file("csv"), media_type=MEDIA["csv"], headers=headers)
    rejects = [{"row": r.row, "column": r.column, "error": r.reason} for r in outcome.rejects]
    return JSONResponse({**outcome.summary(), "rejects": rejects})


# -- records --------------------------------------------------------------------------------------------
@router.get("/{plural}", summary="A page of leads, accounts, contacts or deals in the caller's scope")
def get_list(plural: str, request: Request, db: DatabaseDep, caller: CallerDep) -> JSONResponse:
    entity = entity_of(plural)
    page = list_records(db, caller.viewer, entity, _query(request))
    return JSONResponse(
        out({"total": page.total, "page": page.page, "per_page": page.per_page, "items": page.rows})
    )


@router.post("/{plural}", status_code=201, summary="Create a record; custom field values under `custom`")
def post_record(
    plural: str,
    body: dict[str, Any],
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> JSONResponse:
    entity = entity_of(plural)
    view = create_record(db, caller.viewer, entity, body, settings=settings, now=request.app.state.clock())
    _audit(request, caller, "create", entity, view["id"])
    return JSONResponse(out(view), status_code=201)


def _read(request: Request, caller: CallerDep, entity: str, record_id: int) -> dict[str, Any]:
    try:
        view = get_record(request.app.state.db, caller.viewer, entity, record_id)
    except NotFound as error:
        raise _denied(request, caller, entity, record_id, error) from None
    _audit(request, caller, "view", entity, record_id)
    return view


@router.get("/{plural}/{record_id}", summary="One record (an account with its contacts and deals)")
def get_one(plural: str, record_id: int, request: Request, caller: CallerDep) -> JSONResponse:
    return JSONResponse(out(_read(request, caller, entity_of(plural), record_id)))


@router.patch("/{plural}/{record_id}", summary="Change the fields given")
def patch_record(
    plural: str,
    record_id: int,
    body: dict[str, Any],
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> JSONResponse:
    entity = entity_of(plural)
    try:
        view = update_record(
            db, caller.viewer, entity, record_id, body, settings=settings, now=request.app.state.clock()
        )
    except NotFound as error:
        raise _denied(request, caller, entity, record_id, error) from None
    _audit(request, caller, "change", entity, record_id, fields=sorted(body))
    return JSONResponse(out(view))


@router.delete(
    "/{plural}/{record_id}", status_code=204, summary="Delete (an account with its contacts and deals)"
)
def remove_record(
    plural: str, record_id: int, request: Request, db: DatabaseDep, caller: CallerDep
) -> Response:
    entity = entity_of(plural)
    try:
        delete_record(db, caller.viewer, entity, record_id)
    except NotFound as error:
        raise _denied(request, caller, entity, record_id, error) from None
    _audit(request, caller, "delete", entity, record_id)
    return Response(status_code=204)


class OwnerBody(BaseModel):
    owner_id: int | str | None = Field(description="A user id or email; null for none (the pool).")


@router.put("/{plural}/{record_id}/owner", summary="Transfer to another owner (transfer permission)")
def put_owner(
    plural: str, record_id: int, body: OwnerBody, request: Request, db: DatabaseDep, caller: CallerDep
) -> JSONResponse:
    entity = entity_of(plural)
    now = request.app.state.clock()
    try:
        transfer_records(db, caller.viewer, entity, [record_id], body.owner_id, now=now)
    except NotFound as error:
        raise _denied(request, caller, entity, record_id, error) from None
    _audit(request, caller, "change", entity, record_id, change="transfer")
    # The new owner may be outside the caller's scope now, so the answer says only what was done.
    return JSONResponse({"id": record_id, "transferred": True})


class ConvertBody(BaseModel):
    kind: str = Field("company", description="company, or person for a consumer.")
    mapping: dict[str, str] = Field(
        default_factory=dict, description='Lead field -> "account.x", "contact.x" or "deal.x".'
    )
    account: dict[str, Any] = Field(default_factory=dict, description="Account fields given outright.")
    contact: dict[str, Any] = Field(default_factory=dict, description="Contact fields given outright.")
    deal: dict[str, Any] | None = Field(None, description="Deal fields; null for no deal.")
    account_id: int | None = Field(None, description="Join this existing account instead of making one.")


@router.post("/leads/{lead_id}/convert", summary="Convert a lead into an account, a contact and maybe a deal")
def post_convert(
    lead_id: int,
    body: ConvertBody,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> JSONResponse:
    try:
        view = convert_lead(
            db,
            caller.viewer,
            lead_id,
            kind=body.kind,
            mapping=body.mapping,
            account=body.account,
            contact=body.contact,
            deal=body.deal,
            account_id=body.account_id,
            settings=settings,
            now=request.app.state.clock(),
        )
    except NotFound as error:
        raise _denied(request, caller, "lead", lead_id, error) from None
    _audit(
        request, caller, "change", "lead", lead_id, change="convert", account_id=view["converted_account_id"]
    )
    return JSONResponse(out(view))


class StageBody(BaseModel):
    stage: str = Field(description="A stage key or name of the deal's pipeline.")


@router.post("/deals/{deal_id}/stage", summary="Move an open deal to another stage")
def post_stage(
    deal_id: int, body: StageBody, request: Request, db: DatabaseDep, caller: CallerDep
) -> JSONResponse:
    try:
        view = move_deal(db, caller.viewer, deal_id, body.stage, now=request.app.state.clock())
    except NotFound as error:
        raise _denied(request, caller, "deal", deal_id, error) from None
    _audit(request, caller, "change", "deal", deal_id, change="stage", stage=view["stage"])
    return JSONResponse(out(view))


class CloseBody(BaseModel):
    status: str = Field(description="won, lost or open (reopen).")
    lost_reason: str | None = Field(None, description="Why it was lost; required for lost.")


@router.post("/deals/{deal_id}/close", summary="Mark a deal won or lost, or reopen it")
def post_close(
    deal_id: int, body: CloseBody, request: Request, db: DatabaseDep, caller: CallerDep
) -> JSONResponse:
    try:
        view = close_deal(
            db, caller.viewer, deal_id, body.status, reason=body.lost_reason, now=request.app.state.clock()
        )
    except NotFound as error:
        raise _denied(request, caller, "deal", deal_id, error) from None
    _audit(request, caller, "change", "deal", deal_id, change=body.status)
    return JSONResponse(out(view))
