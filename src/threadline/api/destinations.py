"""REST: destinations, the webhooks that receive events and segment changes (docs/destinations.md).

Admins only: a destination sends customers' events out of Threadline. The signing secret is answered
once, by the create call; afterwards only masked. Changes are audited with the destination's id and
name and the fields changed, never the secret.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep
from threadline.destinations import (
    create_destination,
    delete_destination,
    get_destination,
    list_destinations,
    recent_deliveries,
    resume_pending,
    retry_dead_letters,
    send_test_event,
    update_destination,
)
from threadline.errors import Forbidden
from threadline.privacy import record

router = APIRouter(prefix="/api/v1", tags=["destinations"])
FILTER_FIELDS = ("events", "event_types", "segments", "segment_changes")


class DestinationIn(BaseModel):
    name: Any = Field(description="Unique, 1 to 100 characters.")
    url: Any = Field(description="The webhook: an http or https URL.")
    enabled: bool = Field(True, description="A disabled destination receives nothing.")
    events: Any = Field("all", description='"all", "none", or a list of event names.')
    event_types: Any = Field(None, description="Message types (track, identify, page...); empty: every type.")
    segments: Any = Field("all", description='"all", "none", or a list of segment ids.')
    segment_changes: Any = Field(None, description='"entered", "left" or both (the default).')


class DestinationChange(BaseModel):
    name: Any = None
    url: Any = None
    enabled: bool | None = None
    events: Any = None
    event_types: Any = None
    segments: Any = None
    segment_changes: Any = None


def _admin(caller: CallerDep) -> None:
    if caller.user.role != "admin":
        raise Forbidden("destinations need the admin role")


def _audit(request: Request, caller: CallerDep, action: str, destination_id: int, **details: Any) -> None:
    at = request.app.state.clock()
    record(
        request.app.state.db, caller.actor, action, "destination", str(destination_id), at=at, details=details
    )


def _filters(body: BaseModel) -> dict[str, Any]:
    given = body.model_dump()
    return {k: given[k] for k in FILTER_FIELDS if given[k] is not None}


@router.get("/destinations", summary="Every destination with its delivery counts (admins)")
def destinations(db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    _admin(caller)
    return {"destinations": [view.as_dict() for view in list_destinations(db)]}


@router.post("/destinations", status_code=201, summary="Add a destination; answers its signing secret once")
def create(body: DestinationIn, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    _admin(caller)
    view, secret = create_destination(
        db,
        name=body.name,
        url=body.url,
        enabled=body.enabled,
        filters=_filters(body),
        created_by=caller.user.id,
        now=request.app.state.clock(),
    )
    _audit(request, caller, "create", view.id, name=view.name, enabled=view.enabled)
    return {**view.as_dict(), "signing_secret": secret}


@router.get("/destinations/{destination_id}", summary="One destination (the secret masked)")
def destination(destination_id: int, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    _admin(caller)
    return get_destination(db, destination_id).as_dict()


@router.patch("/destinations/{destination_id}", summary="Change, enable or disable a destination")
def change(
    destination_id: int, body: DestinationChange, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    _admin(caller)
    now = request.app.state.clock()
    was_enabled = get_destination(db, destination_id).enabled
    view = update_destination(
        db,
        destination_id,
        now=now,
        name=body.name,
        url=body.url,
        enabled=body.enabled,
        filters=_filters(body),
    )
    resumed = resume_pending(db, destination_id, now=now) if view.enabled and not was_enabled else 0
    changed = sorted(k for k, v in body.model_dump().items() if v is not None)
    _audit(request, caller, "update", destination_id, name=view.name, fields=changed)
    return {**view.as_dict(), "resumed": resumed}


@router.delete("/destinations/{destination_id}", status_code=204, summary="Delete a destination and its log")
def remove(destination_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> Response:
    _admin(caller)
    name = delete_destination(db, destination_id)
    _audit(request, caller, "delete", destination_id, name=name)
    return Response(status_code=204)


@router.get("/destinations/{destination_id}/deliveries", summary="Recent deliveries, newest first")
def deliveries(
    destination_id: int,
    db: DatabaseDep,
    caller: CallerDep,
    status: str | None = Query(None, description="pending, sending, delivered, failed or dead"),
    limit: int = Query(20, ge=1, le=200),
) -> dict[str, Any]:
    _admin(caller)
    rows = recent_deliveries(db, destination_id, status=status, limit=limit)
    return {"deliveries": [row.as_dict() for row in rows]}


@router.post("/destinations/{destination_id}/test", status_code=202, summary="Queue a test event to it")
def test_event(destination_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    _admin(caller)
    delivery_id = send_test_event(db, destination_id, now=request.app.state.clock())
    _audit(request, caller, "test", destination_id, delivery=delivery_id)
    return {"delivery_id": delivery_id}


@router.post("/destinations/{destination_id}/retry", summary="Try its dead letters again now")
def retry(destination_id: int, request: Request, db: DatabaseDep, caller: CallerDep) -> dict[str, Any]:
    _admin(caller)
    count = retry_dead_letters(db, destination_id, now=request.app.state.clock())
    _audit(request, caller, "retry", destination_id, deliveries=count)
    return {"retried": count}
