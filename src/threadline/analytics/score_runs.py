"""The daily `analytics.scores` run: refit CLV and churn on the timeline as it is now and rewrite their
scores, and store every customer's portrait tags (portrait.py) for segments; then the portrait page's
and the new customers' daily snapshots (portrait_snapshots.py, first_seen.py). Each model is fitted and
written on its own: one without enough data (a new workspace, a shop with no repeat buyers yet) keeps
its previous scores and does not stop the other.

Safe to run again (the worker may): each run replaces its scores' rows in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from threadline.analytics.churn import MODEL_NAME as CHURN_MODEL
from threadline.analytics.churn import ChurnDefinition, NotEnoughHistory, score_churn
from threadline.analytics.churn_features import LOOKBACK_DAYS, read_activity, read_survey_answers
from threadline.analytics.clv import NotEnoughPurchases, customer_value, fit_bgnbd, fit_gamma_gamma
from threadline.analytics.first_seen import store_first_seen
from threadline.analytics.portrait import PORTRAIT_MODEL, SCORE_NAMES, portrait_scores
from threadline.analytics.portrait_snapshots import store_portrait_snapshot
from threadline.analytics.purchases import DAY, PurchaseRule, read_purchases, summarise
from threadline.analytics.scores import (
    CHURN_RISK,
    CLV_12M,
    CLV_SCORES,
    EXPECTED_PURCHASES_12M,
    P_ALIVE,
    Score,
    replace_scores,
)
from threadline.storage import Database

CLV_MODEL = "bgnbd-gg-v1"
DAYS_PER_YEAR = 365.25
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScoreSettings:
    purchases: PurchaseRule = field(default_factory=PurchaseRule)
    churn: ChurnDefinition = field(default_factory=ChurnDefinition)
    monthly_discount: float = 0.01


def refresh_scores(
    db: Database, *, now: datetime, settings: ScoreSettings = ScoreSettings()
) -> dict[str, int]:
    """Refit both models and rewrite their scores; answers customers scored per model (0 when a model had
    too little data, its previous scores kept) and nothing personal."""
    purchases = list(read_purchases(db, settings.purchases, until=now))
    counts = {"purchases": len(purchases), "clv_customers": 0, "churn_customers": 0}
    tags = portrait_scores(db, as_of=now)
    replace_scores(db, SCORE_NAMES, tags, model=PORTRAIT_MODEL, now=now)
    counts["portrait_customers"] = len(tags) // len(SCORE_NAMES)
    counts["portrait_charts"] = store_portrait_snapshot(db, now=now)
    summaries = summarise(purchases, until=now, unit=DAY)
    try:
        bgnbd = fit_bgnbd(summaries.frequency, summaries.recency, summaries.age)
        spend = fit_gamma_gamma(summaries.frequency, summaries.monetary)
    except NotEnoughPurchases as reason:
        log.info("CLV not refitted: %s", reason)
    else:
        x, t_x, age, money = summaries.frequency, summaries.recency, summaries.age, summaries.monetary
        value = customer_value(bgnbd, spend, x, t_x, age, money, monthly_discount=settings.monthly_discount)
        expected = bgnbd.expected_purchases(DAYS_PER_YEAR, x, t_x, age)
        alive = bgnbd.p_alive(x, t_x, age)
        params = {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b}
        scores = []
        for i, pid in enumerate(summaries.profile_ids):
            basis = {"repeat_purchases": int(x[i]), "days_observed": round(float(age[i]), 1)}
            scores += [
                Score(
                    pid, CLV_12M, round(float(value[i]), 2), {**basis, "discount": settings.monthly_discount}
                ),
                Score(pid, EXPECTED_PURCHASES_12M, round(float(expected[i]), 4), basis),
                Score(pid, P_ALIVE, round(float(alive[i]), 4), basis),
            ]
        replace_scores(db, CLV_SCORES, scores, model=CLV_MODEL, now=now)
        counts["clv_customers"] = len(summaries)
        log.info("CLV refitted: BG/NBD %s, Gamma-Gamma p=%.3g q=%.3g", params, spend.p, spend.q)
    # After CLV: the new customers' stored days hold their fresh average CLV (first_seen.py).
    counts["first_seen_days"] = store_first_seen(db, now=now)

    definition = settings.churn
    since = now - timedelta(days=definition.horizon_days + LOOKBACK_DAYS)
    activity = list(read_activity(db, since=since, until=now))
    surveys = read_survey_answers(db, since=since, until=now)
    try:
        churn = score_churn(purchases, activity, surveys, now=now, definition=definition)
    except NotEnoughHistory as reason:
        log.info("churn not refitted: %s", reason)
        return counts
    rows = [
        Score(pid, CHURN_RISK, round(float(churn.risk[i]), 4), churn.details(i, definition))
        for i, pid in enumerate(churn.profile_ids)
    ]
    replace_scores(db, (CHURN_RISK,), rows, model=CHURN_MODEL, now=now)
    counts["churn_customers"] = len(rows)
    return counts
