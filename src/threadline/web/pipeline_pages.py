"""Settings → Pipelines: deal pipelines and their stages (name, order, win probability), on a page.

Admins only, through threadline.sales' save_pipeline / delete_pipeline like the REST API. Each stage is a
row with a position: the stages are saved in the order of their positions (so reordering is typing
numbers, no script needed); a row with its name cleared is removed (refused while deals are in it); the
empty rows at the end add stages.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, viewer_for
from threadline.errors import Conflict, Invalid, NotFound
from threadline.privacy import record
from threadline.sales import delete_pipeline, list_pipelines, save_pipeline
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PATH = "/settings/pipelines"
BLANK_STAGES = 2
NOTICES = {"saved": N_("Pipeline saved."), "deleted": N_("Pipeline removed.")}


def _refused(request: Request, user: UserInfo) -> Response | None:
    return None if user.role == "admin" else render(request, "account_forbidden.html", 403, user=user)


def _blank(position: int) -> dict[str, str]:
    return {"position": str(position), "key": "", "name": "", "probability": ""}


def _forms(request: Request) -> list[dict[str, Any]]:
    out = []
    for p in list_pipelines(request.app.state.db):
        stages = [
            {"position": str(n + 1), "key": s["key"], "name": s["name"], "probability": str(s["probability"])}
            for n, s in enumerate(p.stages)
        ]
        stages += [_blank(len(stages) + n + 1) for n in range(BLANK_STAGES)]
        out.append({"id": p.id, "name": p.name, "is_default": p.is_default, "stages": stages})
    return out


def _page(
    request: Request, user: UserInfo, status: int = 200, *, entered: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:  # fmt: skip
    forms = _forms(request)
    if entered is not None:  # the form that was refused, as typed, in place of its saved state
        forms = [entered if f["id"] == entered["id"] else f for f in forms]
    new = entered if entered is not None and entered["id"] is None else None
    new = new or {"id": None, "name": "", "is_default": False, "stages": [_blank(n + 1) for n in range(4)]}
    return render(
        request, "pipelines.html", status, user=user, pipelines=forms, new=new, error=error,
        notice=NOTICES.get(request.query_params.get("done", "")),
    )  # fmt: skip


@router.get(PATH)
def pipelines_page(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _page(request, user)


def _stages(form: Any) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The rows as typed, and the stages to save: named rows in the order of their positions."""
    rows = [
        {"position": str(p), "key": str(k).strip(), "name": str(n).strip(), "probability": str(b).strip()}
        for p, k, n, b in zip(
            form.getlist("position"), form.getlist("key"), form.getlist("stage_name"),
            form.getlist("probability"), strict=False,
        )
    ]  # fmt: skip

    def order(row: dict[str, str]) -> float:
        text = row["position"].strip()
        return float(text) if text.replace(".", "", 1).isdigit() else float("inf")

    named = sorted((r for r in rows if r["name"]), key=order)
    stages = [
        {"key": r["key"] or None, "name": r["name"], "probability": r["probability"] or 0} for r in named
    ]
    return rows, stages


async def _save(request: Request, user: UserInfo, pipeline_id: int | None) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    rows, stages = _stages(form)
    name, is_default = str(form.get("name", "")), form.get("is_default") == "on"
    db: Database = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    try:
        saved = save_pipeline(db, viewer, name, stages, is_default=is_default, pipeline_id=pipeline_id)
    except (Invalid, Conflict, NotFound) as problem:
        entered = {"id": pipeline_id, "name": name, "is_default": is_default, "stages": rows}
        return _page(request, user, 404 if isinstance(problem, NotFound) else 400, entered=entered,
                     error=problem.message)  # fmt: skip
    actor, now = actor_of(request, user.id), request.app.state.clock()
    action = "create" if pipeline_id is None else "change"
    record(db, actor, action, "pipeline", str(saved.id), at=now, details={"via": "web"})
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)


@router.post(PATH)
async def create_pipeline(request: Request, user: WebUser) -> Response:
    return await _save(request, user, None)


@router.post(PATH + "/{pipeline_id}")
async def change_pipeline(request: Request, pipeline_id: int, user: WebUser) -> Response:
    return await _save(request, user, pipeline_id)


@router.post(PATH + "/{pipeline_id}/delete")
async def remove_pipeline(request: Request, pipeline_id: int, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    db: Database = request.app.state.db
    try:
        delete_pipeline(db, viewer_for(db, user.id, user.role), pipeline_id)
    except (Conflict, NotFound) as problem:
        return _page(request, user, 409 if isinstance(problem, Conflict) else 404, error=problem.message)
    actor, now = actor_of(request, user.id), request.app.state.clock()
    record(db, actor, "delete", "pipeline", str(pipeline_id), at=now, details={"via": "web"})
    return RedirectResponse(f"{PATH}?done=deleted", status_code=303)
