"""The customer list and the customer 360 page, within the signed-in user's data scope."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from threadline.accounts import UserInfo, Viewer, list_users, viewer_for
from threadline.analytics import event_scores
from threadline.config import CHANNELS
from threadline.errors import Conflict, Forbidden, Invalid, NotFound
from threadline.identity import get_merge, unmerge
from threadline.ingest import MESSAGE_TYPES, list_sources
from threadline.privacy import Actor, Disclosure, disclosure_for, record
from threadline.profiles import (
    CustomerQuery,
    ProfileNotFound,
    assign_owner,
    change_tags,
    count_cap,
    export_customers,
    list_customers,
    list_views,
    may_change,
    profile_view,
    save_view,
    share_customer,
    timeline_page,
    view_query,
)
from threadline.service import at_risk_among
from threadline.storage import Database
from threadline.web.auditing import actor_of, customer_not_found
from threadline.web.golden_pages import RULE_NAMES
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
# The built-in saved views' names (threadline.profiles.BUILT_IN_VIEWS), marked for translation here.
VIEW_NAMES = (N_("My customers"), N_("Seen this week"), N_("Unowned"))
FILTERS = ("q", "channel", "owner", "source", "tag", "seen_within_days", "sort")


def _scope(request: Request, user: UserInfo) -> tuple[Database, Viewer, Actor]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user.id, user.role), actor_of(request, user.id)


def _disclosure(request: Request, viewer: Viewer) -> Disclosure:
    """Personal data in clear for viewers with the pii permission, masked for the others."""
    return disclosure_for(request.app.state.settings, reveal=viewer.can("pii"))


def _query(
    request: Request, user: UserInfo, page: int = 1, size: int = PAGE_SIZE
) -> tuple[CustomerQuery, dict[str, Any]]:
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k in FILTERS and v}
    if "view" in request.query_params:
        params = {**view_query(request.app.state.db, user.id, request.query_params["view"]), **params}
    seen = params.get("seen_within_days")
    try:
        days = int(seen) if seen not in (None, "") else None
    except ValueError:
        raise Invalid(
            "seen_within_days: must be a number of days", details={"field": "seen_within_days"}
        ) from None
    query = CustomerQuery(
        q=str(params.get("q", "")),
        channel=params.get("channel") or None,
        owner=str(params["owner"]) if params.get("owner") else None,
        source=params.get("source") or None,
        tag=params.get("tag") or None,
        seen_within_days=days,
        sort=str(params.get("sort", "last_seen")),
        page=max(page, 1),
        size=size,
    )
    return query, params


@router.get("/")
def home(_: WebUser) -> Response:
    return RedirectResponse("/customers", status_code=303)


@router.get("/customers")
def customers(request: Request, user: WebUser, page: int = 1) -> Response:
    settings = request.app.state.settings
    db, viewer, _ = _scope(request, user)
    try:
        query, params = _query(request, user, page)
        rows, total = list_customers(
            db, viewer, query, region=settings.default_region, now=request.app.state.clock()
        )
        rows = [_disclosure(request, viewer).customer(row) for row in rows]
        error = None
    except Invalid as problem:
        query, params, rows, total, error = CustomerQuery(), {}, [], 0, problem.message
    # The weakest-link badges of the listed customers, in one query (threadline.service).
    at_risk = at_risk_among(db, [str(row["id"]) for row in rows])
    return render(
        request,
        "customers.html",
        user=user,
        q=query.q,
        rows=rows,
        total=total,
        page=query.page,
        size=query.size,
        filters=params,
        filter_string=urlencode(params),
        views=list_views(db, user.id),
        channels=CHANNELS,
        count_cap=count_cap(query),
        sources=[s.name for s in list_sources(db)],
        can_export=viewer.can("export"),
        can_transfer=viewer.can("transfer"),
        can_edit=viewer.can("edit"),
        masked=not viewer.can("pii"),
        error=error,
        at_risk=at_risk,
    )


@router.get("/customers/export.csv")
def export(request: Request, user: WebUser) -> Response:
    settings = request.app.state.settings
    db, viewer, actor = _scope(request, user)
    query, params = _query(request, user, 1, 200)
    now = request.app.state.clock()
    rows = export_customers(db, viewer, query, region=settings.default_region, now=now)
    first = next(rows, None)  # raises Forbidden before anything is streamed
    disclosure = _disclosure(request, viewer)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        count = 0
        if first is not None:
            writer = csv.DictWriter(buffer, fieldnames=list(first))
            writer.writeheader()
            for row in (first, *rows):
                writer.writerow(disclosure.export_row(row))
                count += 1
                if buffer.tell() > 64_000:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()
        # The search text may itself be personal data (a phone number): only the filter names go in.
        details = {"count": count, "filters": sorted(params), "masked": not disclosure.reveal}
        record(db, actor, "export", "customers", None, at=now, details=details)

    headers = {"Content-Disposition": 'attachment; filename="customers.csv"'}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/customers/bulk")
async def bulk(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    db, viewer, actor = _scope(request, user)
    ids = [str(v) for v in form.getlist("ids")]
    action = str(form.get("action", ""))
    back = "/customers?" + str(form.get("filters", ""))
    if not ids:
        return RedirectResponse(back, status_code=303)
    value = str(form.get("value", "")).strip()
    if action == "assign_owner":
        owner = None if value in ("", "none") else int(value) if value.isdigit() else -1
        if owner == -1:
            raise Invalid("owner: must be a user id or none", details={"field": "owner"})
        changed = assign_owner(db, viewer, ids, owner)
    elif action in ("add_tag", "remove_tag"):
        tags = [value] if value else []
        adding = action == "add_tag"
        changed = change_tags(db, viewer, ids, add=tags if adding else [], remove=[] if adding else tags)
    else:
        raise Invalid("action: must be assign_owner, add_tag or remove_tag", details={"field": "action"})
    details = {"action": action, "asked": len(ids), "changed": changed, "ids": ids[:200]}
    record(db, actor, "change", "customers", None, at=request.app.state.clock(), details=details)
    return RedirectResponse(back, status_code=303)


@router.post("/customers/views")
def save_current_view(
    request: Request, user: WebUser, name: str = Form(""), filters: str = Form(""), csrf: str = Form("")
) -> Response:
    check_csrf(request, csrf)
    query = dict(parse_qsl(filters))
    view_id = save_view(request.app.state.db, user.id, name, query, now=request.app.state.clock())
    return RedirectResponse(f"/customers?view={view_id}", status_code=303)


TIMELINE_PAGE = 50
BROKEN_CURSOR = N_("This link to older events is broken. Start again from the newest events.")


def _timeline_query(channel: str, type: str, cursor: str | None = None) -> str:
    """The query string of a timeline page: the page's filters, plus where the next page starts."""
    return urlencode({k: v for k, v in (("channel", channel), ("type", type), ("cursor", cursor)) if v})


def _timeline(db: Database, viewer: Viewer, profile_id: str, channel: str, type: str, cursor: str) -> Any:
    """One page of the 360 timeline as the page's filters ask for it (empty means no filter)."""
    return timeline_page(
        db,
        profile_id,
        limit=TIMELINE_PAGE,
        cursor=cursor or None,
        channel=channel or None,
        type=type or None,
        viewer=viewer,
    )


@router.get("/customers/{profile_id}")
def customer(
    request: Request, profile_id: str, user: WebUser, channel: str = "", type: str = "", cursor: str = ""
) -> Response:
    db, viewer, actor = _scope(request, user)
    now = request.app.state.clock()
    try:
        view = profile_view(db, profile_id, viewer=viewer)
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem)
    if view["id"] != profile_id:
        # Temporary: a merge can be undone, and a browser keeps a permanent redirect for good.
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/customers/{quote(view['id'])}{query}", status_code=307)
    record(db, actor, "view", "profile", profile_id, at=now, details={"via": "web"})
    status, error = 200, None
    can_change = may_change(db, viewer, view["id"])
    disclosure = _disclosure(request, viewer)
    try:
        timeline = disclosure.timeline(_timeline(db, viewer, profile_id, channel, type, cursor))
    except Invalid:
        timeline, status, error = {"events": [], "next_cursor": None}, 400, BROKEN_CURSOR
    return render(
        request,
        "customer.html",
        status,
        user=user,
        p=disclosure.profile(view),
        masked=not disclosure.reveal,
        rule_names=RULE_NAMES,
        timeline=timeline,
        sentiments=event_scores(db, [e["id"] for e in timeline["events"]]),
        channel=channel,
        type=type,
        cursor=cursor,
        event_types=MESSAGE_TYPES,
        next_query=_timeline_query(channel, type, timeline["next_cursor"]),
        first_query=_timeline_query(channel, type),
        error=error,
        can_transfer=viewer.can("transfer"),
        can_change=can_change,
        can_unmerge=can_change and viewer.can("edit"),
        colleagues=[u for u in list_users(db) if u.is_active and not u.invited],
    )


@router.post("/customers/{profile_id}/sharing")
def customer_sharing(
    request: Request,
    profile_id: str,
    user: WebUser,
    csrf: str = Form(""),
    action: str = Form(""),
    user_id: str = Form(""),
    access: str = Form("read"),
) -> Response:
    """Owner changes and sharing from the 360 page; the same domain rules as the list and the API."""
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user)
    if not user_id.isdigit() and not (action == "owner" and user_id == "none"):
        raise Invalid("user_id: choose a colleague", details={"field": "user_id"})
    target = int(user_id) if user_id.isdigit() else None
    if action == "owner":
        if not assign_owner(db, viewer, [profile_id], target):
            return render(request, "not_found.html", 404, user=user)
    elif action in ("share", "unshare") and target is not None:
        share_customer(db, viewer, profile_id, target, access if action == "share" else None)
    else:
        raise Invalid("action: must be owner, share or unshare", details={"field": "action"})
    details = {"action": action, "user_id": target, "access": access if action == "share" else None}
    record(db, actor, "change", "profile", profile_id, at=request.app.state.clock(), details=details)
    return RedirectResponse(f"/customers/{quote(profile_id)}", status_code=303)


@router.post("/customers/{profile_id}/merges/{merge_id}/unmerge")
def customer_unmerge(
    request: Request, profile_id: str, merge_id: int, user: WebUser, csrf: str = Form("")
) -> Response:
    """The lineage's "Undo this merge" button, by the REST API's rules (the edit permission, both
    customers in the user's write scope); then back to the page, which lists the undone merge."""
    check_csrf(request, csrf)
    db, viewer, actor = _scope(request, user)
    if not viewer.can("edit"):  # the page shows no button then: only a forged form gets here
        raise Forbidden("undoing a merge needs the edit permission")
    try:
        merge, live = get_merge(db, merge_id)
    except NotFound:
        return render(request, "not_found.html", 404, user=user)
    for party in (live or merge.survivor_id, merge.merged_id):
        if not may_change(db, viewer, party):
            return customer_not_found(
                request, user, actor, party, ProfileNotFound(party, details={"out_of_scope": True})
            )
    now = request.app.state.clock()
    try:
        done = unmerge(db, merge_id, actor_user_id=user.id, now=now, settings=request.app.state.settings)
    except (Conflict, Invalid):  # undone already (another tab, a colleague): the page shows it
        return RedirectResponse(f"/customers/{quote(profile_id)}", status_code=303)
    details = {
        "action": "unmerge",
        "merge_id": merge_id,
        "survivor_id": done.live_survivor_id,
        "restored_id": done.restored_id,
        "via": "web",
    }
    for party in (done.live_survivor_id, done.restored_id):
        record(db, actor, "change", "profile", party, at=now, details=details)
    return RedirectResponse(f"/customers/{quote(profile_id)}", status_code=303)


@router.get("/customers/{profile_id}/timeline")
def customer_timeline(
    request: Request, profile_id: str, user: WebUser, channel: str = "", type: str = "", cursor: str = ""
) -> Response:
    """The next page of the 360 page's timeline as list items, which htmx appends as one scrolls."""
    db, viewer, actor = _scope(request, user)
    try:
        timeline = _disclosure(request, viewer).timeline(
            _timeline(db, viewer, profile_id, channel, type, cursor)
        )
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem)
    except Invalid:
        return render(request, "customer_timeline_error.html", 400, user=user, error=BROKEN_CURSOR)
    # Every read of a customer's events is audited, as the REST API's /events is, not only the first page.
    details = {"via": "web", "part": "timeline"}
    record(db, actor, "view", "profile", profile_id, at=request.app.state.clock(), details=details)
    return render(
        request,
        "customer_timeline_events.html",
        user=user,
        profile_id=timeline["profile_id"],
        timeline=timeline,
        sentiments=event_scores(db, [e["id"] for e in timeline["events"]]),
        channel=channel,
        type=type,
        cursor=cursor,
        next_query=_timeline_query(channel, type, timeline["next_cursor"]),
    )
