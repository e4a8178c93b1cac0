"""REST: segments (define, edit, delete, preview, members, recompute now). Reading needs a signed-in
user; defining needs the admin or manager role (threadline.segments.catalog). Counts, samples and members
keep to the caller's data scope and are masked like the customer list. Changes are audited with the
segment's id and name, never a member or a definition's values."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep
from threadline.errors import Forbidden
from threadline.privacy import disclosure_for, record
from threadline.segments import (
    COUNT_CAP,
    create_segment,
    delete_segment,
    get_segment,
    list_members,
    list_segments,
    may_define,
    preview,
    recompute,
    update_segment,
)

router = APIRouter(prefix="/api/v1", tags=["segments"])


class SegmentIn(BaseModel):
    name: str = Field(description="Unique, 1 to 100 characters.")
    description: str | None = Field(None, description="What the audience is for.")
    definition: dict[str, Any] = Field(description="The conditions (docs/segments.md).")
    active: bool = Field(True, description="Inactive segments keep their definition but are not recomputed.")


class SegmentChange(BaseModel):
    name: str | None = None
    description: str | None = None
    definition: dict[str, Any] | None = None
    active: bool | None = None


class PreviewIn(BaseModel):
    definition: dict[str, Any] = Field(description="The conditions to try (docs/segments.md).")
    limit: int = Field(10, ge=0, le=50, description="How many customers to show.")


def _masked(request: Request, caller: CallerDep, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    disclosure = disclosure_for(request.app.state.settings, reveal=caller.viewer.can("pii"))
    return [disclosure.customer(row) for row in rows]


def _audit(request: Request, caller: CallerDep, action: str, segment_id: int, **details: Any) -> None:
    at = request.app.state.clock()
    record(request.app.state.db, caller.actor, action, "segment", str(segment_id), at=at, details=details)


@router.get("/segments", summary="Every segment, with its member count in the caller's data scope")
def segments(db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    return {
        "segments": [
            {**view.as_dict(), "member_count": count} for view, count in list_segments(db, caller.viewer)
        ]
    }


@router.post("/segments", status_code=201, summary="Define a segment (admins and managers)")
def create(body: SegmentIn, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    view = create_segment(
        db,
        caller.viewer,
        name=body.name,
        definition=body.definition,
        description=body.description,
        active=body.active,
        now=request.app.state.clock(),
    )
    _audit(request, caller, "create", view.id, name=view.name)
    return view.as_dict()


@router.post("/segments/preview", summary="How many customers a definition selects now, and a sample")
def preview_segment(body: PreviewIn, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    count, sample = preview(db, caller.viewer, body.definition, body.limit, now=request.app.state.clock())
    return {"count": count, "capped": count > COUNT_CAP, "sample": _masked(request, caller, sample)}


@router.get("/segments/{segment_id}", summary="One segment")
def segment(segment_id: int, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    return get_segment(db, segment_id).as_dict()


@router.patch("/segments/{segment_id}", summary="Change a segment (admins and managers)")
def change(
    segment_id: int, body: SegmentChange, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    view = update_segment(
        db,
        caller.viewer,
        segment_id,
        now=request.app.state.clock(),
        name=body.name,
        definition=body.definition,
        description=body.description,
        active=body.active,
    )
    changed = sorted(k for k, v in body.model_dump().items() if v is not None)
    _audit(request, caller, "update", segment_id, name=view.name, fields=changed)
    return view.as_dict()


@router.delete("/segments/{segment_id}", status_code=204, summary="Delete a segment (admins and managers)")
def remove(segment_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    name = get_segment(db, segment_id).name
    delete_segment(db, caller.viewer, segment_id)
    _audit(request, caller, "delete", segment_id, name=name)
    return Response(status_code=204)


@router.get("/segments/{segment_id}/members", summary="A page of the segment's members in the caller's scope")
def members(
    segment_id: int,
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    page: int = Query(1, ge=1),
    size: int = Query(50, ge=1, le=200),
) -> dict[str, Any]:
    rows, total = list_members(db, caller.viewer, segment_id, page=page, size=size)
    _audit(request, caller, "view", segment_id, part="members", page=page, count=len(rows))
    return {"members": _masked(request, caller, rows), "total": total, "page": page, "size": size}


@router.post("/segments/{segment_id}/recompute", summary="Recompute the members now (admins and managers)")
def recompute_now(segment_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    if not may_define(caller.viewer):
        raise Forbidden("recomputing a segment needs the admin or manager role")
    change = recompute(db, segment_id, now=request.app.state.clock(), settings=request.app.state.settings)
    _audit(request, caller, "recompute", segment_id, entered=change.entered, exited=change.exited)
    return {
        "segment_id": segment_id,
        "entered": change.entered,
        "exited": change.exited,
        "members": change.members,
    }
