"""The 360 page's loyalty panel (tier, balance, progress, history; redeem and adjust for users who may
change the customer) and Settings → Loyalty, where admins edit the program.

The panel loads with htmx after the 360 page (customer_loyalty.html), like the consent panel; without
JavaScript its link opens the same panel as a page of its own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from threadline.accounts import UserInfo, Viewer, viewer_for
from threadline.api.loyalty import program_audit
from threadline.config import CHANNELS
from threadline.errors import Conflict, Forbidden, Invalid
from threadline.loyalty import PROGRAM_KEY, TIER_BASES, adjust, get_program, loyalty_view, redeem, set_program
from threadline.privacy import Actor, record
from threadline.profiles import ProfileNotFound, may_change
from threadline.storage import Database
from threadline.web.auditing import actor_of, customer_not_found
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
SETTINGS_PATH = "/settings/loyalty"
PANEL_HISTORY = 20  # ledger lines the panel lists; the REST API gives more
BLANK_ROWS = 2  # empty rows for a new earn rule or tier under the saved ones
KIND_NAMES = {
    "earn": N_("earned"),
    "redeem": N_("redeemed"),
    "expire": N_("expired"),
    "adjust": N_("adjusted"),
}
BASIS_NAMES = {
    "lifetime_points": N_("lifetime points"),
    "points_12m": N_("points in the last 12 months"),
    "spend_12m": N_("spend in the last 12 months"),
}


def _scope(request: Request, user: UserInfo) -> tuple[Database, Viewer, Actor]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user.id, user.role), actor_of(request, user.id)


def _panel(
    request: Request,
    user: UserInfo,
    db: Database,
    viewer: Viewer,
    profile_id: str,
    status: int = 200,
    *,
    error: str | None = None,
    done: str | None = None,
) -> Response:
    view = loyalty_view(db, profile_id, viewer=viewer, now=request.app.state.clock(), limit=PANEL_HISTORY)
    page = request.headers.get("HX-Request") != "true"  # a browser without htmx asked for a page
    return render(
        request,
        "customer_loyalty_page.html" if page else "customer_loyalty_panel.html",
        status,
        user=user,
        profile_id=view["profile_id"],
        loyalty=view,
        kind_names=KIND_NAMES,
        basis_names=BASIS_NAMES,
        can_change=viewer.can("edit") and may_change(db, viewer, view["profile_id"]),
        error=error,
        done=done,
    )


@router.get("/customers/{profile_id}/loyalty")
def customer_loyalty(request: Request, profile_id: str, user: WebUser) -> Response:
    db, viewer, actor = _scope(request, user)
    try:
        response = _panel(request, user, db, viewer, profile_id)
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem, part="loyalty")
    details = {"via": "web", "part": "loyalty"}
    record(db, actor, "view", "profile", profile_id, at=request.app.state.clock(), details=details)
    return response


def _change(
    request: Request, user: UserInfo, profile_id: str, kind: str, points: str, reason: str
) -> Response:
    db, viewer, actor = _scope(request, user)
    now = request.app.state.clock()
    try:
        amount: Any = int(points.strip())
    except ValueError:
        amount = points  # the domain names the field
    try:
        act = redeem if kind == "redeem" else adjust
        change = act(db, viewer, profile_id, amount, reason, now=now, settings=request.app.state.settings)
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor, profile_id, problem, part="loyalty")
    except (Invalid, Conflict, Forbidden) as problem:
        code = 400 if isinstance(problem, Invalid) else 409 if isinstance(problem, Conflict) else 403
        return _panel(request, user, db, viewer, profile_id, code, error=problem.message)
    details = {"action": f"loyalty_{kind}", "points": change.points, "via": "web"}
    record(db, actor, "change", "profile", change.profile_id, at=now, details=details)
    if request.headers.get("HX-Request") == "true":
        return _panel(request, user, db, viewer, change.profile_id, done=kind)
    return RedirectResponse(f"/customers/{quote(change.profile_id)}#loyalty", status_code=303)


@router.post("/customers/{profile_id}/loyalty/redeem")
def customer_loyalty_redeem(
    request: Request,
    profile_id: str,
    user: WebUser,
    csrf: str = Form(""),
    points: str = Form(""),
    reason: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    return _change(request, user, profile_id, "redeem", points, reason)


@router.post("/customers/{profile_id}/loyalty/adjust")
def customer_loyalty_adjust(
    request: Request,
    profile_id: str,
    user: WebUser,
    csrf: str = Form(""),
    points: str = Form(""),
    reason: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    return _change(request, user, profile_id, "adjust", points, reason)


# -- Settings → Loyalty ------------------------------------------------------------------------------


def _refused(request: Request, user: UserInfo) -> Response | None:
    if user.role == "admin":
        return None
    return render(request, "account_forbidden.html", 403, user=user)


def _settings_page(
    request: Request,
    user: UserInfo,
    status: int = 200,
    *,
    asked: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:
    saved = get_program(request.app.state.db)
    program = asked if asked is not None else saved.program.as_json()
    return render(
        request,
        "loyalty_settings.html",
        status,
        user=user,
        program=program,
        rules=[*program.get("earn_rules", []), *[{}] * BLANK_ROWS],
        tiers=[*program.get("tiers", []), *[{}] * BLANK_ROWS],
        channels=CHANNELS,
        bases=TIER_BASES,
        basis_names=BASIS_NAMES,
        setting=saved,
        error=error,
        done=request.query_params.get("done") == "saved",
    )


@router.get(SETTINGS_PATH)
def loyalty_settings(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _settings_page(request, user)


@router.post(SETTINGS_PATH)
async def save_loyalty_settings(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    asked = program_from_form(form)
    db: Database = request.app.state.db
    now = request.app.state.clock()
    try:
        program = set_program(db, asked, user_id=user.id, now=now)
    except Invalid as problem:
        return _settings_page(request, user, 400, asked=asked, error=problem.message)
    details = program_audit(program, "web")
    record(
        db, actor_of(request, user.id), "change", "workspace_settings", PROGRAM_KEY, at=now, details=details
    )
    return RedirectResponse(f"{SETTINGS_PATH}?done=saved", status_code=303)


def _number(text: str) -> Any:
    """A form's number, or the text itself so that the program's check names the field."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def program_from_form(form: FormData) -> dict[str, Any]:
    """The settings form as the program's JSON; rows left empty are dropped."""
    rules = []
    for event, mode, value, properties in zip(
        form.getlist("rule_event"),
        form.getlist("rule_mode"),
        form.getlist("rule_value"),
        form.getlist("rule_properties"),
        strict=False,
    ):
        if not str(event).strip():
            continue
        rule: dict[str, Any] = {"event": str(event).strip()}
        if mode == "per_unit":
            rule["points_per_unit"] = _number(str(value))
            rule["properties"] = [p.strip() for p in str(properties).split(",") if p.strip()]
        else:
            rule["points"] = _number(str(value))
        rules.append(rule)
    channels = {}
    for channel in CHANNELS:
        multiplier = str(form.get(f"multiplier_{channel}", "") or "").strip()
        bonus = str(form.get(f"bonus_{channel}", "") or "").strip()
        if multiplier or bonus:
            channels[channel] = {"multiplier": _number(multiplier or "1"), "bonus": _number(bonus or "0")}
    tiers = [
        {"name": str(name).strip(), "threshold": _number(str(threshold)), "benefits": str(benefits).strip()}
        for name, threshold, benefits in zip(
            form.getlist("tier_name"),
            form.getlist("tier_threshold"),
            form.getlist("tier_benefits"),
            strict=False,
        )
        if str(name).strip()
    ]
    return {
        "earn_rules": rules,
        "channels": channels,
        "expiry_months": _number(str(form.get("expiry_months", "0"))),
        "tier_basis": str(form.get("tier_basis", "")),
        "keep_tier_months": _number(str(form.get("keep_tier_months", "0"))),
        "tiers": tiers,
    }
