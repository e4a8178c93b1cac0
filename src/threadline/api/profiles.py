"""REST: unified profiles, their timeline and trait history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from threadline.api.deps import CurrentUser, DatabaseDep, SettingsDep
from threadline.identity import BUILT_IN_KINDS
from threadline.profiles import find_profiles, lookup_profile, profile_view, timeline_page, trait_history

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])


@router.get("", summary="Search profiles by name or identifier")
def search(
    db: DatabaseDep, settings: SettingsDep, _: CurrentUser, q: str = Query(min_length=1), limit: int = 20
) -> dict[str, Any]:
    return {"profiles": find_profiles(db, q, region=settings.default_region, limit=limit)}


@router.get(
    "/lookup", summary="Find the profile holding an identifier: ?email=, ?phone=, ?user_id=, ?<kind>="
)
def lookup(request: Request, db: DatabaseDep, settings: SettingsDep, _: CurrentUser) -> dict[str, Any]:
    kinds = (*BUILT_IN_KINDS, *settings.identifier_kinds)
    asked = [(k, v) for k, v in request.query_params.items() if k in kinds]
    if len(asked) != 1:
        raise HTTPException(
            400, f"give exactly one identifier as a query parameter: one of {', '.join(kinds)}"
        )
    kind, value = asked[0]
    return profile_view(db, lookup_profile(db, kind, value, region=settings.default_region))


@router.get("/{profile_id}", summary="The unified profile (a merged-away ID answers with its survivor)")
def get_profile(profile_id: str, response: Response, db: DatabaseDep, _: CurrentUser) -> dict[str, Any]:
    view = profile_view(db, profile_id)
    if view["id"] != profile_id:
        response.headers["Content-Location"] = f"/api/v1/profiles/{view['id']}"
    return view


@router.get("/{profile_id}/events", summary="The cross-channel timeline, newest first, keyset-paged")
def get_events(
    profile_id: str,
    db: DatabaseDep,
    _: CurrentUser,
    limit: int = 50,
    cursor: str | None = None,
    channel: str | None = None,
    type: str | None = None,
) -> dict[str, Any]:
    return timeline_page(db, profile_id, limit=limit, cursor=cursor, channel=channel, type=type)


@router.get("/{profile_id}/traits/history", summary="Every observed value of the profile's traits")
def get_trait_history(
    profile_id: str, db: DatabaseDep, _: CurrentUser, key: str | None = None
) -> dict[str, Any]:
    return {"history": trait_history(db, profile_id, key)}
