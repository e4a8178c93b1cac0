"""REST: sources and the quarantine (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from threadline.api.deps import AdminUser, DatabaseDep
from threadline.ingest import (
    SourceInfo,
    activate_source,
    create_source,
    list_quarantine,
    list_sources,
    revoke_source,
    rotate_write_key,
    source_activity,
)

router = APIRouter(prefix="/api/v1", tags=["sources"])


class SourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    channel: str


@router.get("/sources", summary="Sources with their channel and write key")
def get_sources(db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    return {"sources": [_public(s) for s in list_sources(db)]}


@router.post("/sources", status_code=201, summary="Create a source; answers with its write key")
def post_source(body: SourceCreate, request: Request, db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    source = create_source(db, body.name, body.channel, now=request.app.state.clock())
    return {"name": source.name, "channel": source.channel, "write_key": source.write_key}


def _public(source: SourceInfo) -> dict[str, Any]:
    return {
        "name": source.name,
        "channel": source.channel,
        "write_key": source.write_key,
        "revoked": source.revoked,
    }


@router.post("/sources/{name}/rotate", summary="Give a source a new write key; the old one stops working")
def post_rotate(name: str, request: Request, db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    source, old_key = rotate_write_key(db, name)
    request.app.state.write_keys.forget(old_key)
    return _public(source)


@router.post("/sources/{name}/revoke", summary="Refuse a source's write key (its data stays)")
def post_revoke(name: str, request: Request, db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    source = revoke_source(db, name, now=request.app.state.clock())
    request.app.state.write_keys.forget(source.write_key)
    return _public(source)


@router.post("/sources/{name}/activate", summary="Accept a revoked source's write key again")
def post_activate(name: str, request: Request, db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    source = activate_source(db, name)
    request.app.state.write_keys.forget(source.write_key)
    return _public(source)


@router.get("/sources/activity", summary="Per source: events received per UTC day, totals, quarantined")
def get_activity(
    request: Request, db: DatabaseDep, _: AdminUser, days: int = Query(14, ge=1, le=90)
) -> dict[str, Any]:
    return {
        "sources": [
            {
                **_public(a.source),
                "days": [{"date": d.isoformat(), "events": n} for d, n in a.days],
                "events": a.total,
                "last_event_at": a.last_event_at.isoformat() + "Z" if a.last_event_at else None,
                "quarantined": a.quarantined,
            }
            for a in source_activity(db, days=days, now=request.app.state.clock())
        ]
    }


@router.get("/quarantine", summary="Rejected messages with the reason, newest first")
def get_quarantine(
    db: DatabaseDep, _: AdminUser, limit: int = 50, source: str | None = None
) -> dict[str, Any]:
    return {
        "messages": [
            {
                "id": q.id,
                "source": q.source,
                "received_at": q.received_at.isoformat() + "Z",
                "message_id": q.message_id,
                "type": q.type,
                "field": q.field,
                "reason": q.reason,
                "payload": q.payload,
            }
            for q in list_quarantine(db, limit=min(max(limit, 1), 500), source=source)
        ]
    }
