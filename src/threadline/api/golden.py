"""REST: the golden record's survivorship rules and source trust order (admins only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.api.deps import AdminUser, CallerDep, DatabaseDep
from threadline.privacy import record
from threadline.profiles import GOLDEN_RULES_KEY, GoldenSetting, get_golden_rules, set_golden_rules

router = APIRouter(prefix="/api/v1", tags=["golden record"])


class GoldenRecordBody(BaseModel):
    rules: dict[str, str] = Field(
        default_factory=dict,
        description="Trait key -> recent | trusted | frequent; a key not named shows its most recent value.",
        examples=[{"email": "trusted", "name": "frequent"}],
    )
    source_trust: list[str] = Field(
        default_factory=list,
        description="Source names, most trusted first; the `trusted` rule ranks sources by it.",
        examples=[["store-pos", "website"]],
    )


def _json(setting: GoldenSetting) -> dict[str, Any]:
    return {
        **setting.rules.as_json(),
        "updated_at": setting.updated_at.isoformat() + "Z" if setting.updated_at else None,
        "updated_by": setting.updated_by,
    }


@router.get("/golden-record", summary="The survivorship rules per trait and the source trust order")
def get_golden_record(db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    return _json(get_golden_rules(db))


@router.put(
    "/golden-record",
    summary="Replace the survivorship rules (admins); they apply to new messages, "
    "`threadline profiles recompute-traits` to what customers show now",
)
def put_golden_record(
    request: Request, db: DatabaseDep, caller: CallerDep, _: AdminUser, body: GoldenRecordBody
) -> dict[str, Any]:
    now = request.app.state.clock()
    saved = set_golden_rules(db, body.model_dump(), user_id=caller.user.id, now=now)
    details = {"action": "golden_record_rules", **saved.as_json(), "via": "api"}
    record(db, caller.actor, "change", "workspace_settings", GOLDEN_RULES_KEY, at=now, details=details)
    return _json(get_golden_rules(db))
