"""Segment pages: the list with member counts, the builder (conditions edited with selects and inputs by
static/segments.js, or as JSON; a live count and sample through htmx), and the 360 page's panel of the
segments a customer is in. Thin: threadline.segments decides, validates and scopes."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, Viewer, viewer_for
from threadline.config import CHANNELS
from threadline.errors import Conflict, Forbidden, Invalid
from threadline.privacy import CHANNELS as CONSENT_CHANNELS
from threadline.privacy import PURPOSES, disclosure_for, record
from threadline.profiles import ProfileNotFound
from threadline.segments import (
    COMPUTED,
    COUNT_CAP,
    LEAF_TYPES,
    LOYALTY_FIELDS,
    NUMBER_OPS,
    PORTRAIT_TAGS,
    TRAIT_OPS,
    SegmentNotFound,
    SegmentView,
    create_segment,
    get_segment,
    list_segments,
    may_define,
    preview,
    recompute,
    segments_of,
    update_segment,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_, localization
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
EMPTY: dict[str, list[Any]] = {"all": []}
# The builder's words (static/segments.js reads them from the page, so they are translated here).
LABELS = {
    "all": N_("All of"),
    "any": N_("Any of"),
    "not": N_("None of"),
    "add_condition": N_("Add condition"),
    "add_group": N_("Add group"),
    "remove": N_("Remove"),
    "key": N_("Key"),
    "value": N_("Value"),
    "name": N_("Name"),
    "days": N_("within days"),
    "at_least": N_("at least"),
    "did": N_("did"),
    "did_not": N_("did not"),
    "allowed": N_("may be contacted"),
    "not_allowed": N_("may not be contacted"),
    "invalid_json": N_("Not valid JSON"),
}
TYPE_NAMES = {
    "trait": N_("Trait"),
    "identity": N_("Identifier"),
    "channel": N_("Channel used"),
    "event": N_("Event"),
    "computed": N_("Computed trait"),
    "rfm": N_("RFM score"),
    "score": N_("Profile score"),
    "consent": N_("Consent"),
    "tag": N_("Tag"),
    "owner": N_("Owner"),
    "loyalty": N_("Loyalty"),
    "portrait": N_("Portrait tag"),
    "segment": N_("In segment"),
}
PORTRAIT_NAMES = {
    "favourite_channel": N_("Favourite channel"),
    "price_sensitivity": N_("Price sensitivity"),
    "purchase_frequency": N_("Purchase frequency"),
    "value_tier": N_("Value tier"),
    "lifecycle_stage": N_("Lifecycle stage"),
}
COMPUTED_NAMES = {
    "total_spend": N_("Total spend"),
    "order_count": N_("Order count"),
    "days_since_last_purchase": N_("Days since last purchase"),
    "days_since_last_contact": N_("Days since last contact"),
    "favourite_channel": N_("Favourite channel"),
}


def _scope(request: Request, user: UserInfo) -> tuple[Database, Viewer]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user.id, user.role)


def _forbidden(request: Request, user: UserInfo) -> Response:
    db, viewer = _scope(request, user)
    rows = list_segments(db, viewer)
    error = N_("Defining segments needs the admin or manager role.")
    return render(
        request, "segments.html", 403, user=user, rows=rows, cap=COUNT_CAP, can_define=False, error=error
    )


def _builder_words(request: Request, user: UserInfo) -> str:
    l10n = localization(request, user)
    words = {
        "labels": {k: l10n.gettext(v) for k, v in LABELS.items()},
        "types": {k: l10n.gettext(TYPE_NAMES[k]) for k in LEAF_TYPES},
        "computed": {k: l10n.gettext(COMPUTED_NAMES[k]) for k in COMPUTED},
        "trait_ops": TRAIT_OPS,
        "number_ops": NUMBER_OPS,
        "channels": CHANNELS,
        "purposes": PURPOSES,
        "consent_channels": CONSENT_CHANNELS,
        "loyalty_fields": LOYALTY_FIELDS,
        "portrait_tags": {k: l10n.gettext(PORTRAIT_NAMES[k]) for k in PORTRAIT_TAGS},
    }
    return json.dumps(words, ensure_ascii=False)


def _builder(
    request: Request,
    user: UserInfo,
    viewer: Viewer,
    *,
    segment: SegmentView | None,
    name: str,
    description: str,
    definition: str,
    error: str | None = None,
    field: str | None = None,
    status: int = 200,
) -> Response:
    db: Database = request.app.state.db
    others = [(v.id, v.name) for v, _ in list_segments(db, viewer) if segment is None or v.id != segment.id]
    return render(
        request,
        "segment.html",
        status,
        user=user,
        segment=segment,
        name=name,
        description=description,
        definition=definition,
        error=error,
        field=field,
        editable=may_define(viewer),
        words=_builder_words(request, user),
        others=others,
    )


@router.get("/segments")
def segments_page(request: Request, user: WebUser) -> Response:
    db, viewer = _scope(request, user)
    rows = list_segments(db, viewer)
    return render(
        request, "segments.html", user=user, rows=rows, cap=COUNT_CAP, can_define=may_define(viewer)
    )


@router.get("/segments/new")
def new_segment(request: Request, user: WebUser) -> Response:
    _, viewer = _scope(request, user)
    if not may_define(viewer):
        return _forbidden(request, user)
    text = json.dumps(EMPTY, indent=2)
    return _builder(request, user, viewer, segment=None, name="", description="", definition=text)


def _parsed(definition: str) -> Any:
    try:
        return json.loads(definition)
    except json.JSONDecodeError as error:
        raise Invalid(f"definition: not valid JSON ({error.msg})", details={"field": "definition"}) from error


def _save(
    request: Request,
    user: UserInfo,
    segment_id: int | None,
    name: str,
    description: str,
    definition: str,
) -> Response:
    db, viewer = _scope(request, user)
    now = request.app.state.clock()
    existing = get_segment(db, segment_id) if segment_id is not None else None
    try:
        parsed = _parsed(definition)
        if segment_id is None:
            view = create_segment(
                db, viewer, name=name, definition=parsed, description=description or None, now=now
            )
            action = "create"
        else:
            view = update_segment(
                db, viewer, segment_id, now=now, name=name, definition=parsed, description=description
            )
            action = "update"
    except (Invalid, Conflict) as error:
        details = error.details if isinstance(error.details, dict) else {}
        return _builder(
            request, user, viewer, segment=existing, name=name, description=description,
            definition=definition, error=str(error), field=details.get("field"), status=400,
        )  # fmt: skip
    except Forbidden:
        return _forbidden(request, user)
    details = {"via": "web", "name": view.name}
    record(db, actor_of(request, user.id), action, "segment", str(view.id), at=now, details=details)
    return RedirectResponse(f"/segments/{view.id}", status_code=303)


@router.post("/segments/new")
def create_page(
    request: Request,
    user: WebUser,
    csrf: str = Form(""),
    name: str = Form(""),
    description: str = Form(""),
    definition: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    return _save(request, user, None, name, description, definition)


@router.post("/segments/preview")
def preview_page(
    request: Request, user: WebUser, csrf: str = Form(""), definition: str = Form("")
) -> Response:
    """The builder's live count and sample (a fragment), as the definition is edited."""
    check_csrf(request, csrf)
    db, viewer = _scope(request, user)
    try:
        count, sample = preview(db, viewer, _parsed(definition), 10, now=request.app.state.clock())
    except Invalid as error:
        return render(request, "segment_preview.html", user=user, error=str(error), count=None, sample=[])
    disclosure = disclosure_for(request.app.state.settings, reveal=viewer.can("pii"))
    rows = [disclosure.customer(row) for row in sample]
    return render(
        request, "segment_preview.html", user=user, error=None, count=count, cap=COUNT_CAP, sample=rows
    )


@router.get("/segments/{segment_id}")
def segment_page(request: Request, segment_id: int, user: WebUser) -> Response:
    db, viewer = _scope(request, user)
    try:
        view = get_segment(db, segment_id)
    except SegmentNotFound:
        return render(request, "not_found.html", 404, user=user)
    return _builder(
        request,
        user,
        viewer,
        segment=view,
        name=view.name,
        description=view.description or "",
        definition=json.dumps(view.definition, indent=2, ensure_ascii=False),
    )


@router.post("/segments/{segment_id}")
def update_page(
    request: Request,
    segment_id: int,
    user: WebUser,
    csrf: str = Form(""),
    name: str = Form(""),
    description: str = Form(""),
    definition: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    try:
        return _save(request, user, segment_id, name, description, definition)
    except SegmentNotFound:
        return render(request, "not_found.html", 404, user=user)


@router.post("/segments/{segment_id}/recompute")
def recompute_page(request: Request, segment_id: int, user: WebUser, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    db, viewer = _scope(request, user)
    if not may_define(viewer):
        return _forbidden(request, user)
    now = request.app.state.clock()
    try:
        change = recompute(db, segment_id, now=now, settings=request.app.state.settings)
    except SegmentNotFound:
        return render(request, "not_found.html", 404, user=user)
    details = {"via": "web", "entered": change.entered, "exited": change.exited}
    record(db, actor_of(request, user.id), "recompute", "segment", str(segment_id), at=now, details=details)
    return RedirectResponse(f"/segments/{segment_id}", status_code=303)


@router.get("/customers/{profile_id}/segments")
def customer_segments(request: Request, profile_id: str, user: WebUser) -> Response:
    """The 360 page's panel (customer_segments.html loads it with htmx); a page of its own without."""
    db, viewer = _scope(request, user)
    try:
        live, rows = segments_of(db, viewer, profile_id)
    except ProfileNotFound:
        return render(request, "not_found.html", 404, user=user)
    page = request.headers.get("HX-Request") != "true"
    return render(
        request,
        "customer_segments_page.html" if page else "customer_segments_panel.html",
        user=user,
        profile_id=live,
        memberships=rows,
    )
