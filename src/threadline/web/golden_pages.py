"""Settings → Golden record: the survivorship rule of each trait and the trust order of sources.

Admins only; other roles get the readable 403 page (a fixed part of the workspace, nothing to hide). The
rules apply to messages from the moment they are saved; `threadline profiles recompute-traits` applies
them to what customers already show (threadline.profiles.recompute_golden).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import UserInfo
from threadline.errors import Invalid
from threadline.ingest import list_sources
from threadline.privacy import record
from threadline.profiles import GOLDEN_RULES_KEY, RULES, GoldenRules, get_golden_rules, set_golden_rules
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.i18n import N_
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
PATH = "/settings/golden-record"
BLANK_ROWS = 3  # empty rows for new rules under the saved ones
# The rules as the settings page and the 360 page's traits panel name them.
RULE_NAMES = {
    "recent": N_("most recent"),
    "trusted": N_("most trusted source"),
    "frequent": N_("most frequent"),
}


def _refused(request: Request, user: UserInfo) -> Response | None:
    if user.role == "admin":
        return None
    return render(request, "account_forbidden.html", 403, user=user)


def _page(
    request: Request,
    user: UserInfo,
    status: int = 200,
    *,
    rows: list[tuple[str, str]] | None = None,
    trust: list[str] | None = None,
    error: str | None = None,
) -> Response:
    db: Database = request.app.state.db
    saved = get_golden_rules(db)
    if rows is None:
        rows = sorted(saved.rules.rules.items())
    return render(
        request,
        "golden_record.html",
        status,
        user=user,
        rows=[*rows, *[("", "recent")] * BLANK_ROWS],
        trust="\n".join(saved.rules.source_trust if trust is None else trust),
        sources=[s.name for s in list_sources(db)],
        setting=saved,
        rule_choices=RULES,
        rule_names=RULE_NAMES,
        error=error,
        done=request.query_params.get("done") == "saved",
    )


@router.get(PATH)
def golden_record(request: Request, user: WebUser) -> Response:
    return _refused(request, user) or _page(request, user)


@router.post(PATH)
async def save_golden_record(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    if refused := _refused(request, user):
        return refused
    keys = [str(k).strip() for k in form.getlist("key")]
    chosen = [str(r) for r in form.getlist("rule")]
    rows = [(key, rule) for key, rule in zip(keys, chosen, strict=False) if key]
    trust = [line.strip() for line in str(form.get("source_trust", "")).splitlines() if line.strip()]
    db: Database = request.app.state.db
    now = request.app.state.clock()
    try:
        rules = set_golden_rules(db, _asked(rows, trust), user_id=user.id, now=now)
    except Invalid as problem:
        return _page(request, user, 400, rows=rows, trust=trust, error=problem.message)
    actor = actor_of(request, user.id)
    record(db, actor, "change", "workspace_settings", GOLDEN_RULES_KEY, at=now, details=_details(rules))
    return RedirectResponse(f"{PATH}?done=saved", status_code=303)


def _asked(rows: list[tuple[str, str]], trust: list[str]) -> dict[str, Any]:
    """The form as the rules' JSON; a key on two rows is refused as check_rules names fields."""
    rules: dict[str, str] = {}
    for key, rule in rows:
        if key in rules:
            raise Invalid(f"rules.{key}: is named twice", details={"field": f"rules.{key}"})
        rules[key] = rule
    return {"rules": rules, "source_trust": trust}


def _details(rules: GoldenRules) -> dict[str, Any]:
    return {"action": "golden_record_rules", **rules.as_json(), "via": "web"}
