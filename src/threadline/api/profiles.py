"""REST: unified profiles, their timeline and trait history, within the caller's data scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from threadline.api.deps import CallerDep, DatabaseDep, SettingsDep
from threadline.errors import Forbidden, NotFound
from threadline.identity import BUILT_IN_KINDS, MergeInfo, get_merge, merge_profiles, unmerge
from threadline.privacy import Disclosure, disclosure_for, record
from threadline.profiles import (
    CustomerQuery,
    ProfileNotFound,
    assign_owner,
    change_tags,
    count_cap,
    list_customers,
    lookup_profile,
    may_change,
    profile_view,
    share_customer,
    timeline_page,
    trait_history,
)
from threadline.storage import Database

# Profiles, and the merges between them (/api/v1/merges/...), which is why the prefix stops at /api/v1.
router = APIRouter(prefix="/api/v1", tags=["profiles"])
T = TypeVar("T")


def disclosure(request: Request, caller: CallerDep) -> Disclosure:
    """Personal data in clear for callers with the pii permission, masked for the others."""
    return disclosure_for(request.app.state.settings, reveal=caller.viewer.can("pii"))


def audited(request: Request, db: Database, caller: CallerDep, profile_id: str, read: Callable[[], T]) -> T:
    """Run a read of one customer, auditing it; a refused or unknown ID is audited as denied."""
    now = request.app.state.clock()
    try:
        result = read()
    except ProfileNotFound as error:
        details = {
            "out_of_scope": bool(isinstance(error.details, dict) and error.details.get("out_of_scope"))
        }
        record(db, caller.actor, "denied", "profile", profile_id, at=now, details=details)
        raise ProfileNotFound(f"profile {profile_id} does not exist") from None
    record(db, caller.actor, "view", "profile", profile_id, at=now, details={"via": "api"})
    return result


@router.get("/profiles", summary="Search and list customers in your data scope")
def search(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    q: str = Query("", description="Name, email, phone (or its last digits) or any identifier"),
    channel: str | None = None,
    owner: str | None = Query(None, description="me, none, or a user id"),
    source: str | None = None,
    tag: str | None = None,
    seen_within_days: int | None = None,
    sort: str = "last_seen",
    page: int = 1,
    limit: int = 20,
) -> dict[str, Any]:
    query = CustomerQuery(q, channel, owner, source, tag, seen_within_days, sort, page, limit)
    now = request.app.state.clock()
    rows, total = list_customers(db, caller.viewer, query, region=settings.default_region, now=now)
    # Past the cap (10,000; 1,000 for a search) the count stops: "total" is then a lower bound.
    cap = count_cap(query)
    return {
        "profiles": [disclosure(request, caller).customer(row) for row in rows],
        "total": min(total, cap),
        "total_is_lower_bound": total > cap,
        "page": page,
    }


@router.get(
    "/profiles/lookup",
    summary="Find the profile holding an identifier: ?email=, ?phone=, ?user_id=, ?<kind>=",
)
def lookup(request: Request, db: DatabaseDep, settings: SettingsDep, caller: CallerDep) -> dict[str, Any]:
    kinds = (*BUILT_IN_KINDS, *settings.identifier_kinds)
    asked = [(k, v) for k, v in request.query_params.items() if k in kinds]
    if len(asked) != 1:
        raise HTTPException(
            400, f"give exactly one identifier as a query parameter: one of {', '.join(kinds)}"
        )
    kind, value = asked[0]
    found = lookup_profile(db, kind, value, region=settings.default_region, viewer=caller.viewer)
    view = audited(request, db, caller, found, lambda: profile_view(db, found, viewer=caller.viewer))
    return disclosure(request, caller).profile(view)


@router.get(
    "/profiles/{profile_id}", summary="The unified profile (a merged-away ID answers with its survivor)"
)
def get_profile(
    profile_id: str, request: Request, response: Response, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    view = audited(
        request, db, caller, profile_id, lambda: profile_view(db, profile_id, viewer=caller.viewer)
    )
    if view["id"] != profile_id:
        response.headers["Content-Location"] = f"/api/v1/profiles/{view['id']}"
    return disclosure(request, caller).profile(view)


@router.get("/profiles/{profile_id}/events", summary="The cross-channel timeline, newest first, keyset-paged")
def get_events(
    profile_id: str,
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    limit: int = 50,
    cursor: str | None = None,
    channel: str | None = None,
    type: str | None = None,
) -> dict[str, Any]:
    page = audited(
        request,
        db,
        caller,
        profile_id,
        lambda: timeline_page(
            db, profile_id, limit=limit, cursor=cursor, channel=channel, type=type, viewer=caller.viewer
        ),
    )
    return disclosure(request, caller).timeline(page)


@router.get("/profiles/{profile_id}/traits/history", summary="Every observed value of the profile's traits")
def get_trait_history(
    profile_id: str, request: Request, db: DatabaseDep, caller: CallerDep, key: str | None = None
) -> dict[str, Any]:
    history = audited(
        request, db, caller, profile_id, lambda: trait_history(db, profile_id, key, viewer=caller.viewer)
    )
    return {"history": disclosure(request, caller).history(history)}


class OwnerChange(BaseModel):
    owner_id: int | None = Field(
        description="The new owner's user id; null returns the customer to the pool."
    )


class TagChange(BaseModel):
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)


class Membership(BaseModel):
    access: Literal["read", "write"]


def _changed(
    request: Request, db: Database, caller: CallerDep, profile_id: str, changed: int, **details: Any
) -> None:
    if not changed:
        raise ProfileNotFound(f"profile {profile_id} does not exist")
    now = request.app.state.clock()
    record(db, caller.actor, "change", "profile", profile_id, at=now, details=details)


@router.put(
    "/profiles/{profile_id}/owner", summary="Give the customer to a user (needs the transfer permission)"
)
def put_owner(
    profile_id: str, body: OwnerChange, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    changed = assign_owner(db, caller.viewer, [profile_id], body.owner_id)
    _changed(request, db, caller, profile_id, changed, action="assign_owner", owner_id=body.owner_id)
    return {"id": profile_id, "owner_id": body.owner_id}


@router.patch("/profiles/{profile_id}/tags", summary="Add and remove tags")
def patch_tags(
    profile_id: str, body: TagChange, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    profile_view(db, profile_id, viewer=caller.viewer)  # 404 when out of scope
    if not may_change(db, caller.viewer, profile_id):
        raise Forbidden("this customer is shared with you read-only")
    change_tags(db, caller.viewer, [profile_id], add=body.add, remove=body.remove)
    view = profile_view(db, profile_id, viewer=caller.viewer)
    _changed(request, db, caller, profile_id, 1, action="tags", add=body.add, remove=body.remove)
    return {"id": profile_id, "tags": view["tags"]}


@router.put(
    "/profiles/{profile_id}/members/{user_id}", summary="Share the customer with a colleague, read or write"
)
def put_member(
    profile_id: str, user_id: int, body: Membership, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    share_customer(db, caller.viewer, profile_id, user_id, body.access)
    _changed(request, db, caller, profile_id, 1, action="share", user_id=user_id, access=body.access)
    return {"id": profile_id, "user_id": user_id, "access": body.access}


@router.delete(
    "/profiles/{profile_id}/members/{user_id}", summary="Stop sharing the customer with a colleague"
)
def delete_member(
    profile_id: str, user_id: int, request: Request, db: DatabaseDep, caller: CallerDep
) -> dict[str, Any]:
    share_customer(db, caller.viewer, profile_id, user_id, None)
    _changed(request, db, caller, profile_id, 1, action="unshare", user_id=user_id)
    return {"id": profile_id, "user_id": user_id, "access": None}


class MergeRequest(BaseModel):
    other_id: str = Field(description="The customer merged into this one; this one keeps its ID.")
    reason: str = Field(description="Why they are one person; the lineage shows it.")
    force: bool = Field(
        False, description="Merge even past merge protection's limits (e.g. two user ids on one profile)."
    )


class UnmergeRequest(BaseModel):
    reason: str | None = Field(None, description="Why they are two people; the lineage shows it.")


def _may_change(request: Request, db: Database, caller: CallerDep, profile_id: str, refusal: str) -> None:
    """A customer the caller may change: 404 (`refusal`, audited) outside their scope, 403 when it is
    only shared with them read-only. A merged-away customer is checked as it was (its own owner)."""
    try:
        profile_view(db, profile_id, viewer=caller.viewer)
    except ProfileNotFound as error:
        details = {
            "out_of_scope": bool(isinstance(error.details, dict) and error.details.get("out_of_scope"))
        }
        now = request.app.state.clock()
        record(db, caller.actor, "denied", "profile", profile_id, at=now, details=details)
        raise NotFound(refusal) from None
    if not may_change(db, caller.viewer, profile_id):
        raise Forbidden("this customer is shared with you read-only")


def _merge_json(info: MergeInfo) -> dict[str, Any]:
    def iso(moment: Any) -> str | None:
        return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"

    return {
        "id": info.id,
        "status": info.status,
        "survivor_id": info.survivor_id,
        "merged_id": info.merged_id,
        "trigger": info.trigger,
        "reason": info.reason,
        "actor_user_id": info.actor_user_id,
        "rule": info.rule,
        "match_probability": info.match_probability,
        "at": iso(info.created_at),
        "unmerged_at": iso(info.unmerged_at),
        "unmerged_by": info.unmerged_by,
        "unmerge_reason": info.unmerge_reason,
    }


@router.post(
    "/profiles/{profile_id}/merge",
    summary="Merge another customer into this one, which keeps its ID (needs the edit permission)",
)
def post_merge(
    profile_id: str,
    body: MergeRequest,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> dict[str, Any]:
    if not caller.viewer.can("edit"):
        raise Forbidden("merging customers needs the edit permission")
    for party in (profile_id, body.other_id):
        _may_change(request, db, caller, party, f"profile {party} does not exist")
    now = request.app.state.clock()
    info = merge_profiles(
        db,
        profile_id,
        body.other_id,
        trigger="steward",
        actor_user_id=caller.user.id,
        rule=None,
        reason=body.reason,
        now=now,
        force=body.force,
        settings=settings,
    )
    details = {"action": "merge", "merge_id": info.id, "survivor_id": profile_id, "merged_id": body.other_id}
    for party in (profile_id, body.other_id):
        record(db, caller.actor, "change", "profile", party, at=now, details={**details, "force": body.force})
    return {"merge": _merge_json(info)}


@router.post(
    "/merges/{merge_id}/unmerge",
    summary="Undo a merge: both customers come back as they were (needs the edit permission)",
)
def post_unmerge(
    merge_id: int,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    body: UnmergeRequest | None = None,
) -> dict[str, Any]:
    if not caller.viewer.can("edit"):
        raise Forbidden("unmerging customers needs the edit permission")
    merge, live = get_merge(db, merge_id)
    refusal = f"merge_id: no merge {merge_id}"  # the same answer whether it exists or is out of scope
    for party in (live or merge.survivor_id, merge.merged_id):
        _may_change(request, db, caller, party, refusal)
    now = request.app.state.clock()
    reason = body.reason if body else None
    done = unmerge(db, merge_id, actor_user_id=caller.user.id, now=now, reason=reason, settings=settings)
    details = {
        "action": "unmerge",
        "merge_id": merge_id,
        "survivor_id": done.live_survivor_id,
        "restored_id": done.restored_id,
    }
    for party in (done.live_survivor_id, done.restored_id):
        record(db, caller.actor, "change", "profile", party, at=now, details=details)
    return {
        "unmerge": {
            "merge_id": merge_id,
            "survivor_id": done.live_survivor_id,
            "restored_id": done.restored_id,
            "moved": {
                "identities": done.identities,
                "events": done.events,
                "trait_history": done.trait_history,
            },
        }
    }
