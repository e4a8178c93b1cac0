"""Settings → Customer pool: the rules that return neglected accounts to the pool (公海), as a form.

Admins only, like `PUT /api/v1/pool/rules`; both go through threadline.sales' set_pool_rules, so the page
and the API check the same way and name the same field. A level's row left empty is no rule; the level
"*" applies to accounts whose level has no row of its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo
from threadline.errors import Invalid
from threadline.privacy import record
from threadline.sales import get_pool_rules, set_pool_rules
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PATH = "/settings/pool"
BLANK_ROWS = 3  # room for new levels; more after saving


def _refused(request: Request, user: UserInfo) -> Response | None:
    return None if user.role == "admin" else render(request, "account_forbidden.html", 403, user=user)


def _rows_of(rules: dict[str, Any]) -> list[dict[str, str]]:
    rows = [
        {
            "level": name,
            "no_follow_up_days": "" if rule["no_follow_up_days"] is None else str(rule["no_follow_up_days"]),
            "no_won_deal_days": "" if rule["no_won_deal_days"] is None else str(rule["no_won_deal_days"]),
        }
        for name, rule in rules["levels"].items()
    ]
    return rows + [{"level": "", "no_follow_up_days": "", "no_won_deal_days": ""}] * BLANK_ROWS


def _page(
    request: Request, user: UserInfo, status: int = 200, *, entered: dict[str, Any] | None = None,
    error: str | None = None, saved: bool = False,
) -> Response:  # fmt: skip
    db: Database = request.app.state.db
    if entered is None:
        rules = get_pool_rules(db).as_json()
        entered = {
            "rows": _rows_of(rules),
            "warning_days": str(rules["warning_days"]),
            "cooldown_days": str(rules["cooldown_days"]),
            "cap": "" if rules["cap"] is None else str(rules["cap"]),
        }
    return render(request, "pool_settings.html", status, user=user, entered=entered, error=error, saved=saved)


@router.get(PATH)
def pool_settings_page(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _page(request, user, saved=request.query_params.get("done") == "saved")


def _number(text: str) -> Any:
    """A typed number as the rules' value; anything else stays text for the rules' check to name."""
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


@router.post(PATH)
async def save_pool_settings(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    levels, follow, won = (form.getlist(k) for k in ("level", "no_follow_up_days", "no_won_deal_days"))
    rows = [
        {"level": str(n).strip(), "no_follow_up_days": str(f), "no_won_deal_days": str(w)}
        for n, f, w in zip(levels, follow, won, strict=False)
    ]
    typed = {k: str(form.get(k, "")) for k in ("warning_days", "cooldown_days", "cap")}
    entered: dict[str, Any] = {"rows": rows, **typed}
    value: dict[str, Any] = {
        "levels": {
            row["level"]: {
                "no_follow_up_days": _number(row["no_follow_up_days"]),
                "no_won_deal_days": _number(row["no_won_deal_days"]),
            }
            for row in rows
            if row["level"]
        },
        "warning_days": _number(typed["warning_days"]),
        "cooldown_days": _number(typed["cooldown_days"]),
        "cap": _number(typed["cap"]),
    }
    # Empty warning/cooldown fields mean the defaults, as in the API where they are left out.
    value = {k: v for k, v in value.items() if v is not None or k == "cap"}
    db: Database = request.app.state.db
    now = request.app.state.clock()
    try:
        saved = set_pool_rules(db, value, by=user.id, now=now)
    except Invalid as problem:
        return _page(request, user, 400, entered=entered, error=problem.message)
    details = {"action": "pool_rules_update", "via": "web", "rules": saved.as_json()}
    record(db, actor_of(request, user.id), "change", "setting", "sales.pool", at=now, details=details)
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)
