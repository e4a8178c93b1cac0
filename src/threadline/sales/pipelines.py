"""Deal pipelines: named, ordered stages with a win probability each, one of them the default.

The default pipeline is made on first use (like the internal sources), so a fresh workspace can take a
deal at once and an admin renames or reshapes it later. Won and lost are a deal's status, not stages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.errors import Conflict, Forbidden, Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import Deal, DealStageChange, Pipeline

DEFAULT_NAME = "Sales"
DEFAULT_STAGES: tuple[dict[str, Any], ...] = (
    {"key": "prospecting", "name": "Prospecting", "probability": 10},
    {"key": "qualification", "name": "Qualification", "probability": 25},
    {"key": "proposal", "name": "Proposal", "probability": 50},
    {"key": "negotiation", "name": "Negotiation", "probability": 75},
)
_STAGE_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True, slots=True)
class PipelineInfo:
    id: int
    name: str
    stages: tuple[dict[str, Any], ...]
    is_default: bool

    def stage(self, text: str) -> dict[str, Any] | None:
        """The stage a key or a name (any case) stands for: imports write names, forms send keys."""
        wanted = text.strip().lower()
        for stage in self.stages:
            if stage["key"] == wanted or str(stage["name"]).lower() == wanted:
                return stage
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "stages": list(self.stages), "is_default": self.is_default}


def _info(row: Pipeline) -> PipelineInfo:
    return PipelineInfo(row.id, row.name, tuple(row.stages), row.is_default)


def default_pipeline(session: Session) -> PipelineInfo:
    row = session.scalar(select(Pipeline).where(Pipeline.is_default.is_(True)).limit(1))
    if row is None:
        row = session.scalar(select(Pipeline).order_by(Pipeline.id).limit(1))
    if row is None:
        row = Pipeline(name=DEFAULT_NAME, stages=[dict(s) for s in DEFAULT_STAGES], is_default=True)
        session.add(row)
        session.flush()
    return _info(row)


def pipeline_in(session: Session, pipeline_id: int | None) -> PipelineInfo:
    if pipeline_id is None:
        return default_pipeline(session)
    row = session.get(Pipeline, pipeline_id)
    if row is None:
        raise Invalid(f"pipeline_id: no pipeline {pipeline_id}", details={"field": "pipeline_id"})
    return _info(row)


def list_pipelines(db: Database) -> list[PipelineInfo]:
    with db.write() as session:  # write: the default pipeline may be made now
        default_pipeline(session)
        return [_info(r) for r in session.scalars(select(Pipeline).order_by(Pipeline.id))]


def get_pipeline(db: Database, pipeline_id: int | None = None) -> PipelineInfo:
    with db.write() as session:
        if pipeline_id is None:
            return default_pipeline(session)
        row = session.get(Pipeline, pipeline_id)
        if row is None:
            raise NotFound(f"pipeline {pipeline_id} does not exist")
        return _info(row)


def check_stages(stages: Any) -> list[dict[str, Any]]:
    """Stages as stored; errors name the item (`stages[2].probability`)."""
    if not isinstance(stages, list) or not stages:
        raise Invalid("stages: a pipeline needs at least one stage", details={"field": "stages"})
    out: list[dict[str, Any]] = []
    for i, stage in enumerate(stages):
        where = f"stages[{i}]"
        if not isinstance(stage, dict):
            raise Invalid(
                f"{where}: must be an object with key, name and probability", details={"field": where}
            )
        name = str(stage.get("name") or "").strip()
        key = str(stage.get("key") or re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")).strip()
        if not _STAGE_KEY.match(key):
            raise Invalid(
                f"{where}.key: lower-case letters, digits, _ and -", details={"field": f"{where}.key"}
            )
        if not name or len(name) > 100:
            raise Invalid(f"{where}.name: is required", details={"field": f"{where}.name"})
        probability = stage.get("probability", 0)
        if isinstance(probability, str) and probability.strip().isdigit():
            probability = int(probability)
        if isinstance(probability, bool) or not isinstance(probability, int) or not 0 <= probability <= 100:
            raise Invalid(
                f"{where}.probability: a whole number from 0 to 100",
                details={"field": f"{where}.probability"},
            )
        if any(s["key"] == key for s in out):
            raise Invalid(f"{where}.key: {key!r} appears twice", details={"field": f"{where}.key"})
        out.append({"key": key, "name": name, "probability": probability})
    return out


def save_pipeline(
    db: Database,
    viewer: Viewer,
    name: str,
    stages: Sequence[Any],
    *,
    is_default: bool = False,
    pipeline_id: int | None = None,
) -> PipelineInfo:
    """Create or change a pipeline (admins). A stage that open deals are in cannot be removed."""
    if viewer.role not in ("admin", "system"):
        raise Forbidden("pipelines are managed by admins")
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("name: is required (at most 100 characters)", details={"field": "name"})
    checked = check_stages(list(stages))
    with db.write() as session:
        clash = select(Pipeline.id).where(func.lower(Pipeline.name) == name.lower())
        if pipeline_id is not None:
            clash = clash.where(Pipeline.id != pipeline_id)
        if session.scalar(clash) is not None:
            raise Invalid(f"name: a pipeline named {name!r} exists", details={"field": "name"})
        if pipeline_id is None:
            row = Pipeline(name=name, stages=checked, is_default=False)
            session.add(row)
            session.flush()
        else:
            found = session.get(Pipeline, pipeline_id)
            if found is None:
                raise NotFound(f"pipeline {pipeline_id} does not exist")
            row = found
            keys = {s["key"] for s in checked}
            in_use = session.scalars(
                select(Deal.stage).where(Deal.pipeline_id == row.id, Deal.stage.not_in(keys)).distinct()
            ).all()
            if in_use:
                raise Conflict(
                    f"stages: deals are still in stage {sorted(in_use)[0]!r}; move them first",
                    details={"field": "stages"},
                )
            row.name, row.stages = name, checked
        if is_default or session.scalar(select(func.count()).select_from(Pipeline)) == 1:
            session.execute(update(Pipeline).where(Pipeline.id != row.id).values(is_default=False))
            row.is_default = True
        session.flush()
        return _info(row)


def delete_pipeline(db: Database, viewer: Viewer, pipeline_id: int) -> None:
    """Remove a pipeline no deal uses (admins); the default one stays (deals without a pipeline use it)."""
    if viewer.role not in ("admin", "system"):
        raise Forbidden("pipelines are managed by admins")
    with db.write() as session:
        row = session.get(Pipeline, pipeline_id)
        if row is None:
            raise NotFound(f"pipeline {pipeline_id} does not exist")
        if row.is_default:
            raise Conflict("pipeline: the default pipeline stays; make another the default first",
                           details={"field": "pipeline"})  # fmt: skip
        used = session.scalar(select(func.count()).select_from(Deal).where(Deal.pipeline_id == pipeline_id))
        if used:
            raise Conflict(f"pipeline: {used} deals use it; move them first", details={"field": "pipeline"})
        session.delete(row)


def record_stage_change(
    session: Session, deal_id: int, from_stage: str | None, to_stage: str, user_id: int | None, now: datetime
) -> None:
    """One row of the deal's stage history; the first has no `from_stage`."""
    session.add(
        DealStageChange(
            deal_id=deal_id, from_stage=from_stage, to_stage=to_stage, changed_at=now, user_id=user_id
        )
    )
