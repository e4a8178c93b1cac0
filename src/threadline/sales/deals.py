"""A deal's way through its pipeline: moving between stages (each move in the stage history), winning
or losing it (a lost deal says why), and the pipeline board, open deals in columns by stage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from threadline.accounts import Viewer
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.sales.pipelines import default_pipeline, pipeline_in, record_stage_change
from threadline.sales.records import get_record
from threadline.sales.scope import sales_filter
from threadline.storage import Database
from threadline.storage.models import Deal, SalesAccount

OUTCOMES = ("won", "lost", "open")
MAX_REASON = 300


def _deal(session: Any, viewer: Viewer, deal_id: int) -> Deal:
    row = session.scalar(select(Deal).where(Deal.id == deal_id, sales_filter(viewer, "deal")))
    if row is None:
        exists = session.scalar(select(Deal.id).where(Deal.id == deal_id)) is not None
        raise NotFound(f"deal {deal_id} does not exist", details={"out_of_scope": exists})
    return row  # type: ignore[no-any-return]


def move_deal(db: Database, viewer: Viewer, deal_id: int, stage: str, *, now: datetime) -> dict[str, Any]:
    """Put an open deal in another stage of its pipeline (by key or name)."""
    if not viewer.can("edit"):
        raise Forbidden("moving a deal needs the edit permission")
    with db.write() as session:
        row = _deal(session, viewer, deal_id)
        if row.status != "open":
            raise Invalid(f"stage: the deal is {row.status}; reopen it first", details={"field": "stage"})
        pipeline = pipeline_in(session, row.pipeline_id)
        found = pipeline.stage(stage or "")
        if found is None:
            keys = ", ".join(s["key"] for s in pipeline.stages)
            raise Invalid(
                f"stage: {stage!r} is not a stage of pipeline {pipeline.name!r} ({keys})",
                details={"field": "stage"},
            )
        if found["key"] != row.stage:
            record_stage_change(session, row.id, row.stage, found["key"], viewer.user_id, now)
            row.stage, row.updated_at = found["key"], now
    return get_record(db, viewer, "deal", deal_id)


def close_deal(
    db: Database, viewer: Viewer, deal_id: int, outcome: str, *, reason: str | None = None, now: datetime
) -> dict[str, Any]:
    """Mark a deal won or lost (lost needs a reason), or open again."""
    if not viewer.can("edit"):
        raise Forbidden("closing a deal needs the edit permission")
    if outcome not in OUTCOMES:
        raise Invalid(f"status: must be one of {', '.join(OUTCOMES)}", details={"field": "status"})
    text = (reason or "").strip()
    if outcome == "lost" and not text:
        raise Invalid("lost_reason: is required when a deal is lost", details={"field": "lost_reason"})
    if len(text) > MAX_REASON:
        raise Invalid(f"lost_reason: longer than {MAX_REASON} characters", details={"field": "lost_reason"})
    with db.write() as session:
        row = _deal(session, viewer, deal_id)
        row.status = outcome
        row.lost_reason = text if outcome == "lost" else None
        row.closed_at = None if outcome == "open" else now
        row.updated_at = now
    return get_record(db, viewer, "deal", deal_id)


def pipeline_board(db: Database, viewer: Viewer, pipeline_id: int | None = None) -> dict[str, Any]:
    """Open deals in the viewer's scope, a column per stage with its count, total and weighted total
    (amount × the stage's win probability)."""
    with db.write() as session:  # write: the default pipeline may be made now
        pipeline = default_pipeline(session) if pipeline_id is None else pipeline_in(session, pipeline_id)
        rows = session.execute(
            select(
                Deal.id,
                Deal.name,
                Deal.stage,
                Deal.amount,
                Deal.currency,
                Deal.expected_close,
                SalesAccount.name,
            )
            .join(SalesAccount, SalesAccount.id == Deal.account_id)
            .where(Deal.pipeline_id == pipeline.id, Deal.status == "open", sales_filter(viewer, "deal"))
            .order_by(Deal.expected_close, Deal.id)
        ).all()
    columns = []
    for stage in pipeline.stages:
        deals = [r for r in rows if r[2] == stage["key"]]
        total = sum((r[3] or Decimal(0) for r in deals), Decimal(0))
        columns.append(
            {
                **stage,
                "count": len(deals),
                "total": float(total),
                "weighted": float(total * stage["probability"] / 100),
                "deals": [
                    {
                        "id": r[0],
                        "name": r[1],
                        "amount": None if r[3] is None else float(r[3]),
                        "currency": r[4],
                        "expected_close": r[5],
                        "account_name": r[6],
                    }
                    for r in deals
                ],
            }
        )
    return {"pipeline": pipeline.as_dict(), "columns": columns}
