"""REST: sources and the quarantine (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.api.deps import AdminUser, DatabaseDep
from threadline.ingest import create_source, list_quarantine, list_sources

router = APIRouter(prefix="/api/v1", tags=["sources"])


class SourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    channel: str


@router.get("/sources", summary="Sources with their channel and write key")
def get_sources(db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    return {
        "sources": [
            {"name": s.name, "channel": s.channel, "write_key": s.write_key, "revoked": s.revoked}
            for s in list_sources(db)
        ]
    }


@router.post("/sources", status_code=201, summary="Create a source; answers with its write key")
def post_source(body: SourceCreate, request: Request, db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    source = create_source(db, body.name, body.channel, now=request.app.state.clock())
    return {"name": source.name, "channel": source.channel, "write_key": source.write_key}


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
