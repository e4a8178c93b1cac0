"""REST: importing a WukongCRM (悟空CRM) export (threadline.sales.wukong). Audited with counts and column
names, never the cells (names and phones are personal data)."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from threadline.api.deps import CallerDep, DatabaseDep, SettingsDep
from threadline.api.responses import JSONResponse
from threadline.api.sales import MEDIA
from threadline.privacy import record
from threadline.sales import import_wukong, parse_owner_map

router = APIRouter(prefix="/api/v1/wukong", tags=["sales"])


@router.post("/import", summary="Import a WukongCRM export of customers, contacts, leads or follow-ups")
def post_wukong_import(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    file: UploadFile = File(description="The .xlsx or .csv file WukongCRM exported."),
    kind: str = Form(description="customers, contacts, leads or follow-ups."),
    mode: str = Form("skip", description="What a repeated row does: skip, update or create."),
    owner_map: str = Form("", description="Lines of NAME=EMAIL for owners (负责人) named otherwise here."),
    respond: str = Form("summary", description="summary (JSON), or rejects: the rejects file as CSV."),
) -> Response:
    now = request.app.state.clock()
    outcome = import_wukong(
        db,
        caller.viewer,
        kind,
        file.filename or "",
        file.file.read(),
        mode=mode,
        owner_map=parse_owner_map(owner_map),
        settings=settings,
        now=now,
    )
    details = {"via": "api", **outcome.summary()}
    record(db, caller.actor, "import", outcome.object_type, None, at=now, details=details)
    if respond == "rejects":
        headers = {"Content-Disposition": f'attachment; filename="wukong-{kind}-rejects.csv"'}
        return Response(outcome.rejects_file("csv"), media_type=MEDIA["csv"], headers=headers)
    return JSONResponse(
        {
            **outcome.summary(),
            "rejects": [{"row": r.row, "column": r.column, "error": r.reason} for r in outcome.rejects],
            "warnings": [{"row": w.row, "column": w.column, "message": w.message} for w in outcome.warnings],
        }
    )
