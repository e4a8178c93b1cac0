"""REST: a customer's loyalty standing and ledger, redemptions and adjustments (within the caller's data
scope), and the program (admins). Audited; the audit details name no reason text (it can quote the
customer), only the kind of change and its points."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.api.deps import AdminUser, CallerDep, DatabaseDep, SettingsDep
from threadline.errors import NotFound
from threadline.loyalty import (
    PROGRAM_KEY,
    LedgerChange,
    Program,
    ProgramSetting,
    adjust,
    get_program,
    loyalty_view,
    redeem,
    set_program,
)
from threadline.privacy import record
from threadline.profiles import ProfileNotFound

router = APIRouter(prefix="/api/v1", tags=["loyalty"])


class Redemption(BaseModel):
    points: int = Field(description="Points to spend; refused (409) above the balance.", gt=0)
    reason: str = Field(description="What they were spent on; the customer's history shows it.")


class Adjustment(BaseModel):
    points: int = Field(description="Points to add (positive) or take away (negative).")
    reason: str = Field(description="Why; the customer's history shows it.")


def _denied(request: Request, caller: CallerDep, profile_id: str, error: ProfileNotFound) -> NotFound:
    scoped = bool(isinstance(error.details, dict) and error.details.get("out_of_scope"))
    record(
        request.app.state.db,
        caller.actor,
        "denied",
        "profile",
        profile_id,
        at=request.app.state.clock(),
        details={"out_of_scope": scoped, "part": "loyalty"},
    )
    return ProfileNotFound(f"profile {profile_id} does not exist")


@router.get("/profiles/{profile_id}/loyalty", summary="The customer's points, tier and ledger, newest first")
def get_loyalty(
    profile_id: str, request: Request, db: DatabaseDep, caller: CallerDep, limit: int = 50
) -> dict[str, Any]:
    now = request.app.state.clock()
    try:
        view = loyalty_view(db, profile_id, viewer=caller.viewer, now=now, limit=limit)
    except ProfileNotFound as error:
        raise _denied(request, caller, profile_id, error) from None
    details = {"via": "api", "part": "loyalty"}
    record(db, caller.actor, "view", "profile", profile_id, at=now, details=details)
    return view


def _changed(request: Request, caller: CallerDep, kind: str, change: LedgerChange) -> dict[str, Any]:
    now = request.app.state.clock()
    details = {"action": f"loyalty_{kind}", "points": change.points, "via": "api"}
    record(
        request.app.state.db, caller.actor, "change", "profile", change.profile_id, at=now, details=details
    )
    return {
        "profile_id": change.profile_id,
        "entry_id": change.entry_id,
        "points": change.points,
        "balance": change.balance,
        "tier_change": None
        if change.tier_change is None
        else {"from": change.tier_change.old, "to": change.tier_change.new},
    }


@router.post(
    "/profiles/{profile_id}/loyalty/redeem",
    status_code=201,
    summary="Spend points (needs the edit permission; 409 above the balance)",
)
def post_redeem(
    profile_id: str,
    body: Redemption,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> dict[str, Any]:
    now = request.app.state.clock()
    try:
        change = redeem(db, caller.viewer, profile_id, body.points, body.reason, now=now, settings=settings)
    except ProfileNotFound as error:
        raise _denied(request, caller, profile_id, error) from None
    return _changed(request, caller, "redeem", change)


@router.post(
    "/profiles/{profile_id}/loyalty/adjust",
    status_code=201,
    summary="Add or take away points with a reason (needs the edit permission)",
)
def post_adjust(
    profile_id: str,
    body: Adjustment,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> dict[str, Any]:
    now = request.app.state.clock()
    try:
        change = adjust(db, caller.viewer, profile_id, body.points, body.reason, now=now, settings=settings)
    except ProfileNotFound as error:
        raise _denied(request, caller, profile_id, error) from None
    return _changed(request, caller, "adjust", change)


def _program_json(setting: ProgramSetting) -> dict[str, Any]:
    return {
        **setting.program.as_json(),
        "updated_at": setting.updated_at.isoformat() + "Z" if setting.updated_at else None,
        "updated_by": setting.updated_by,
    }


def program_audit(program: Program, via: str) -> dict[str, Any]:
    """What the audit log keeps of a program change (the pages use it too)."""
    return {
        "action": "loyalty_program",
        "earn_rules": len(program.earn_rules),
        "tiers": [tier.name for tier in program.tiers],
        "via": via,
    }


@router.get("/loyalty/program", summary="The loyalty program: earn rules, channel bonuses, expiry, tiers")
def get_loyalty_program(db: DatabaseDep, _: AdminUser) -> dict[str, Any]:
    return _program_json(get_program(db))


@router.put(
    "/loyalty/program",
    summary="Replace the loyalty program (admins); earning uses it from its next run",
)
def put_loyalty_program(
    request: Request, db: DatabaseDep, caller: CallerDep, _: AdminUser, body: dict[str, Any]
) -> dict[str, Any]:
    now = request.app.state.clock()
    saved = set_program(db, body, user_id=caller.user.id, now=now)
    details = program_audit(saved, "api")
    record(db, caller.actor, "change", "workspace_settings", PROGRAM_KEY, at=now, details=details)
    return _program_json(get_program(db))
