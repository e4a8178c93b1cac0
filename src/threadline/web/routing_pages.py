"""Settings -> Routing (admins): the rules that give a new conversation its team and agent, and the
inbox's toggle by which an agent marks themself away. Thin over threadline.service (routing.py)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo, list_teams, viewer_for
from threadline.errors import Invalid
from threadline.privacy import record
from threadline.segments import list_segments
from threadline.service import (
    ROUTING_KEY,
    SERVICE_CHANNELS,
    STRATEGIES,
    routing_rules,
    set_away,
    set_routing_rules,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
ROUTING_PATH = "/settings/routing"
STRATEGY_NAMES = {"round_robin": N_("Round-robin"), "least_loaded": N_("Least loaded")}
# Lists are typed comma-separated; a Chinese comma or a new line separates too.
_SEPARATORS = re.compile(r"[,，\n]")
_TEXT_FIELDS = ("languages", "tiers", "keywords")


def _words(value: Any) -> list[str]:
    return [w.strip() for w in _SEPARATORS.split(str(value or "")) if w.strip()]


def _form_rules(form: Any) -> list[dict[str, Any]]:
    """The form's rows as the rules' values, by position (then as listed); removed and empty rows left
    out. Rows are `rule{n}_{field}`; `count` says how many were shown."""
    count = int(form.get("count", "0")) if str(form.get("count", "0")).isdigit() else 0
    rows: list[tuple[float, int, dict[str, Any]]] = []
    for n in range(min(count, 500)):
        prefix = f"rule{n}_"
        if form.get(prefix + "remove"):
            continue
        rule: dict[str, Any] = {
            "name": str(form.get(prefix + "name", "")).strip(),
            "channels": [str(c) for c in form.getlist(prefix + "channels")],
            "segment_ids": [str(s) for s in form.getlist(prefix + "segment_ids")],
            "team_id": str(form.get(prefix + "team_id", "")).strip() or None,
            "strategy": str(form.get(prefix + "strategy", "")) or "round_robin",
            "active": form.get(prefix + "active") == "on",
        }
        for field in _TEXT_FIELDS:
            rule[field] = _words(form.get(prefix + field))
        lists = ("channels", "segment_ids", *_TEXT_FIELDS)
        filled = rule["team_id"] or rule["name"] or any(rule[f] for f in lists)
        if not filled:  # the blank row for a new rule, left blank
            continue
        position = str(form.get(prefix + "position", "")).strip()
        rows.append((float(position) if position.isdigit() else float(n + 1), n, rule))
    return [rule for _, _, rule in sorted(rows, key=lambda r: (r[0], r[1]))]


def _page(
    request: Request,
    user: UserInfo,
    status: int = 200,
    *,
    rules: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> Response:
    db: Database = request.app.state.db
    segments = [view for view, _ in list_segments(db, viewer_for(db, user.id, user.role))]
    shown = rules if rules is not None else [r.as_dict() for r in routing_rules(db)]
    return render(
        request,
        "routing.html",
        status,
        user=user,
        rules=shown,
        teams=list_teams(db),
        segments=segments,
        channels=SERVICE_CHANNELS,
        strategies=STRATEGIES,
        strategy_names=STRATEGY_NAMES,
        error=error,
        saved=request.query_params.get("done") == "saved",
    )


def _refused(request: Request, user: UserInfo) -> Response | None:
    if user.role == "admin":
        return None
    return render(request, "account_forbidden.html", 403, user=user)


@router.get(ROUTING_PATH)
def routing_settings(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _page(request, user)


@router.post(ROUTING_PATH)
async def save_routing(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    rules = _form_rules(form)
    db: Database = request.app.state.db
    at = request.app.state.clock()
    try:
        saved = set_routing_rules(db, rules, user_id=user.id, now=at)
    except Invalid as problem:
        # The rows as typed, so nothing is lost; the message names the rule by its place in the list.
        return _page(request, user, 400, rules=rules, error=problem.message)
    details = {"action": "routing", "rules": len(saved), "via": "web"}
    actor = actor_of(request, user.id)
    record(db, actor, "change", "workspace_settings", ROUTING_KEY, at=at, details=details)
    return RedirectResponse(f"{ROUTING_PATH}?done=saved", status_code=303)


@router.post("/inbox/availability")
def availability(request: Request, user: WebUser, csrf: str = Form(""), away: str = Form("")) -> Response:
    """The agent themself: away (routing passes them over) or available again."""
    check_csrf(request, csrf)
    set_away(request.app.state.db, user.id, away == "1", now=request.app.state.clock())
    return RedirectResponse("/inbox", status_code=303)
