"""The 360 page's insight panel: 12-month CLV, expected purchases, P(alive) and churn risk with its main
reasons, from the scores the daily `analytics.scores` run writes (threadline.analytics), and the
customer's portrait tags (客户画像) as of now.

Like the consent panel, it loads with htmx after the page (customer_insight.html); without JavaScript its
link opens the panel as a page of its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from threadline.accounts import viewer_for
from threadline.analytics import (
    CHURN_RISK,
    CLV_12M,
    EXPECTED_PURCHASES_12M,
    P_ALIVE,
    portrait_of,
    profile_scores,
)
from threadline.privacy import record
from threadline.profiles import ProfileNotFound
from threadline.web.auditing import actor_of, customer_not_found
from threadline.web.i18n import N_
from threadline.web.insight_pages import TITLES, VALUE_NAMES
from threadline.web.render import render
from threadline.web.session import WebUser

router = APIRouter(include_in_schema=False)
HIGH_RISK = 0.5  # shown as high from here: the model's probability, not a tuned business threshold
# The churn model's features (threadline.analytics.churn_features.FEATURES) as a reason reads.
REASON_NAMES = {
    "days_since_last_purchase": N_("Days since the last purchase"),
    "purchases_365d": N_("Purchases in the last year"),
    "avg_order_value": N_("Average order value"),
    "tenure_days": N_("Days since the first purchase"),
    "days_since_last_activity": N_("Days since last seen"),
    "events_30d": N_("Activity in the last 30 days"),
    "events_31_90d": N_("Activity 31-90 days ago"),
    "page_views_30d": N_("Page views in the last 30 days"),
    "email_engagement_90d": N_("Emails opened or clicked in 90 days"),
    "web_events_90d": N_("Web activity in 90 days"),
    "app_events_90d": N_("App activity in 90 days"),
    "store_events_90d": N_("Store activity in 90 days"),
    "email_events_90d": N_("Email events in 90 days"),
    "sms_events_90d": N_("SMS events in 90 days"),
    "chat_events_90d": N_("Chat activity in 90 days"),
    "call_center_events_90d": N_("Calls in 90 days"),
    "social_events_90d": N_("Social activity in 90 days"),
    "complaints_90d": N_("Complaints in 90 days"),
    "low_survey_scores_180d": N_("Low survey scores in 180 days"),
}


@router.get("/customers/{profile_id}/insight")
def customer_insight(request: Request, profile_id: str, user: WebUser) -> Response:
    db = request.app.state.db
    viewer = viewer_for(db, user.id, user.role)
    try:
        live, scores = profile_scores(db, profile_id, viewer=viewer)
    except ProfileNotFound as problem:
        return customer_not_found(request, user, actor_of(request, user.id), profile_id, problem)
    at = request.app.state.clock()
    tags = portrait_of(db, viewer, live, as_of=at) or {}
    by_name = {s.name: s for s in scores}
    churn = by_name.get(CHURN_RISK)
    shown: dict[str, Any] = {
        "clv": by_name.get(CLV_12M),
        "expected": by_name.get(EXPECTED_PURCHASES_12M),
        "alive": by_name.get(P_ALIVE),
        "churn": churn,
        "reasons": (churn.details.get("reasons", []) if churn else []),
        "high_risk": bool(churn and churn.value is not None and churn.value >= HIGH_RISK),
        "computed_at": max((s.computed_at for s in scores), default=None),
        "portrait": [(TITLES[f"portrait_{tag}"], tag, VALUE_NAMES.get(v, v)) for tag, v in tags.items()],
    }
    record(
        db,
        actor_of(request, user.id),
        "view",
        "profile",
        live,
        at=at,
        details={"via": "web", "part": "insight"},
    )
    page = request.headers.get("HX-Request") != "true"  # a browser without htmx asked for a page
    return render(
        request,
        "customer_insight_page.html" if page else "customer_insight_panel.html",
        user=user,
        profile_id=live,
        reason_names=REASON_NAMES,
        **shown,
    )
