"""The review queue ("Duplicates"): pairs of customers the resolver thinks are one person.

A data steward compares the two side by side with the evidence for and against (each comparison's match
weight, drawn as a waterfall from the prior to the total), then approves (merge) or rejects (never
suggested again), one by one with the keyboard or in bulk. Everything is within the steward's data scope.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from threadline.accounts import Viewer, viewer_for
from threadline.errors import Invalid, NotFound
from threadline.privacy import record
from threadline.resolution import (
    PENDING,
    Candidate,
    Thresholds,
    approve,
    decide_many,
    get_candidate,
    get_thresholds,
    list_candidates,
    list_runs,
    reject,
    set_thresholds,
)
from threadline.storage import Database
from threadline.web.auditing import actor_of
from threadline.web.render import render
from threadline.web.session import WebUser, check_csrf

router = APIRouter(include_in_schema=False)
STATUSES = ("pending", "merged", "rejected", "obsolete")


def _viewer(request: Request, user_id: int, role: str) -> tuple[Database, Viewer]:
    db: Database = request.app.state.db
    return db, viewer_for(db, user_id, role)


def waterfall(candidate: Candidate) -> dict[str, Any]:
    """The evidence as waterfall steps on a shared scale: where each bar starts and ends, in percent."""
    prior = float(candidate.evidence.get("prior", 0.0))
    steps: list[dict[str, Any]] = [
        {"label": None, "level": None, "weight": prior, "start": 0.0, "end": prior, "kind": "prior"}
    ]
    total = prior
    for item in candidate.evidence.get("comparisons", []):
        weight = float(item.get("weight", 0.0))
        steps.append(
            {
                "label": item.get("comparison"),
                "level": item.get("level"),
                "left": item.get("left"),
                "right": item.get("right"),
                "weight": weight,
                "start": total,
                "end": total + weight,
                "kind": "for" if weight > 0 else "against" if weight < 0 else "neutral",
            }
        )
        total += weight
    steps.append({"label": None, "level": None, "weight": total, "start": 0.0, "end": total, "kind": "total"})
    low = min(0.0, *(min(s["start"], s["end"]) for s in steps))
    high = max(0.0, *(max(s["start"], s["end"]) for s in steps))
    span = (high - low) or 1.0
    for step in steps:
        a, b = sorted((step["start"], step["end"]))
        step["left_pct"] = round((a - low) / span * 100, 2)
        step["width_pct"] = max(round((b - a) / span * 100, 2), 0.4)
    return {"steps": steps, "zero_pct": round(-low / span * 100, 2), "total": total}


@router.get("/duplicates")
def duplicates(request: Request, user: WebUser, status: str = PENDING, page: int = 1) -> Response:
    if status not in STATUSES:
        raise Invalid(f"status: must be one of {', '.join(STATUSES)}", details={"field": "status"})
    db, viewer = _viewer(request, user.id, user.role)
    if not viewer.can("pii"):
        return render(request, "account_forbidden.html", 403, user=user)
    rows, total = list_candidates(db, viewer, status=status, page=page)
    return render(
        request,
        "duplicates.html",
        user=user,
        rows=rows,
        total=total,
        shown_status=status,  # not `status`: render() takes that as the HTTP status
        statuses=STATUSES,
        page=page,
        size=50,
        thresholds=get_thresholds(db),
        runs=list_runs(db, limit=5) if user.role == "admin" else [],
        can_decide=viewer.can("edit"),
        done=request.query_params.get("done"),
    )


def _next_pending(db: Database, viewer: Viewer, after: int) -> int | None:
    rows, _ = list_candidates(db, viewer, status=PENDING, size=2)
    return next((r.id for r in rows if r.id != after), None)


@router.get("/duplicates/{candidate_id}")
def duplicate(request: Request, user: WebUser, candidate_id: int) -> Response:
    db, viewer = _viewer(request, user.id, user.role)
    if not viewer.can("pii"):
        return render(request, "account_forbidden.html", 403, user=user)
    try:
        candidate, left, right = get_candidate(db, viewer, candidate_id)
    except NotFound:
        return render(request, "not_found.html", 404, user=user)
    at = request.app.state.clock()
    for profile_id in (candidate.left_id, candidate.right_id):
        record(
            db, actor_of(request, user.id), "view", "profile", profile_id, at=at, details={"via": "review"}
        )
    return render(
        request,
        "duplicate.html",
        user=user,
        c=candidate,
        left=left,
        right=right,
        chart=waterfall(candidate),
        can_decide=viewer.can("edit") and candidate.status == PENDING,
        next_id=_next_pending(db, viewer, candidate_id),
    )


@router.post("/duplicates/{candidate_id}/{decision}")
def decide(
    request: Request, user: WebUser, candidate_id: int, decision: str, csrf: str = Form("")
) -> Response:
    check_csrf(request, csrf)
    if decision not in ("approve", "reject"):
        raise Invalid("decision: must be approve or reject", details={"field": "decision"})
    db, viewer = _viewer(request, user.id, user.role)
    now = request.app.state.clock()
    if decision == "approve":
        merge_id = approve(db, viewer, candidate_id, now=now)
        details: dict[str, Any] = {"action": "approve_match", "candidate": candidate_id, "merge": merge_id}
    else:
        reject(db, viewer, candidate_id, now=now)
        details = {"action": "reject_match", "candidate": candidate_id}
    record(
        db,
        actor_of(request, user.id),
        "change",
        "match_candidate",
        str(candidate_id),
        at=now,
        details=details,
    )
    following = _next_pending(db, viewer, candidate_id)
    target = f"/duplicates/{following}" if following else "/duplicates"
    return RedirectResponse(f"{target}?done={decision}", status_code=303)


@router.post("/duplicates")
async def decide_bulk(request: Request, user: WebUser) -> Response:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    action = str(form.get("action", ""))
    if action not in ("approve", "reject"):
        raise Invalid("action: must be approve or reject", details={"field": "action"})
    ids = [int(str(v)) for v in form.getlist("ids") if str(v).isdigit()]
    db, viewer = _viewer(request, user.id, user.role)
    now = request.app.state.clock()
    outcome = decide_many(db, viewer, ids, approve_them=action == "approve", now=now)
    details = {"action": f"{action}_matches", "done": outcome.done[:200], "failed": len(outcome.failed)}
    record(db, actor_of(request, user.id), "change", "match_candidate", None, at=now, details=details)
    return RedirectResponse(f"/duplicates?done={action}", status_code=303)


@router.post("/duplicates-settings")
def save_settings(
    request: Request,
    user: WebUser,
    auto_merge: float = Form(...),
    review: float = Form(...),
    csrf: str = Form(""),
) -> Response:
    check_csrf(request, csrf)
    if user.role != "admin":
        return render(request, "account_forbidden.html", 403, user=user)
    db: Database = request.app.state.db
    now = request.app.state.clock()
    saved = set_thresholds(db, Thresholds(auto_merge=auto_merge, review=review), user_id=user.id, now=now)
    details = {"action": "resolution_thresholds", "auto_merge": saved.auto_merge, "review": saved.review}
    record(db, actor_of(request, user.id), "change", "workspace_settings", None, at=now, details=details)
    return RedirectResponse("/duplicates?done=settings", status_code=303)
