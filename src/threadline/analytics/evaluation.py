"""Held-out figures for the models on this workspace's own data (`threadline analytics evaluate`).

Each model is refitted on the timeline up to a cutoff and judged on what happened after it, which it
never saw; nothing here is stored or changes a score. On the data `threadline demo` loads (histories of
20 to 180 days), the default windows are short: churn over a 30-day horizon (train on features as of 60
days ago and who bought in the next 30, test on features as of 30 days ago and who bought since), CLV
with the last 60 days held out, recommendations with the last 30. A model without enough data in its
window says why instead of giving a figure.

- Churn: ROC AUC and Brier score of the shipped logistic regression, beside the Brier score of
  forecasting the training churn rate for everyone (a model must beat it).
- CLV (BG/NBD): predicted against actual repeat purchases in the holdout, in total and per customer
  (mean absolute error), beside the naive forecast "the same rate as in calibration".
- Recommendations: precision@10 and recall@10 of the item-item model and of the popularity baseline on
  the products customers bought after the cutoff that they had not bought before.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from threadline.analytics.churn import ChurnDefinition, NotEnoughHistory, train_churn
from threadline.analytics.churn_features import (
    LOOKBACK_DAYS,
    churned,
    features_as_of,
    read_activity,
    read_survey_answers,
)
from threadline.analytics.clv import NotEnoughPurchases, fit_bgnbd
from threadline.analytics.purchases import DAY, read_purchases, summarise
from threadline.analytics.recommendations import (
    PURCHASE,
    ItemItemModel,
    Recommendation,
    RecommendationSettings,
    read_interactions,
)
from threadline.storage import Database

K = 10


@dataclass(frozen=True, slots=True)
class Windows:
    churn_horizon_days: int = 30
    clv_holdout_days: int = 60
    recommendations_holdout_days: int = 30


@dataclass(slots=True)
class Evaluation:
    """Per model, its figures or why there are none (`skipped`)."""

    as_of: datetime
    windows: Windows
    churn: dict[str, Any] = field(default_factory=dict)
    clv: dict[str, Any] = field(default_factory=dict)
    recommendations: dict[str, Any] = field(default_factory=dict)


def evaluate_churn(db: Database, *, now: datetime, horizon_days: int) -> dict[str, Any]:
    from sklearn.metrics import brier_score_loss, roc_auc_score

    definition = ChurnDefinition(horizon_days=horizon_days)
    train_at = now - timedelta(days=2 * horizon_days)
    test_at = now - timedelta(days=horizon_days)
    purchases = list(read_purchases(db, until=now))
    since = train_at - timedelta(days=LOOKBACK_DAYS)
    activity = list(read_activity(db, since=since, until=now))
    surveys = read_survey_answers(db, since=since, until=now)
    eligibility = definition.eligibility()
    # features_as_of reads only what happened before its date, so the labels after it stay unseen.
    train = features_as_of(train_at, purchases, activity, surveys, **eligibility)
    test = features_as_of(test_at, purchases, activity, surveys, **eligibility)
    y_train = churned(train.profile_ids, purchases, start=train_at, horizon_days=horizon_days)
    y_test = churned(test.profile_ids, purchases, start=test_at, horizon_days=horizon_days)
    try:
        model = train_churn(train, y_train)
    except NotEnoughHistory as reason:
        return {"skipped": reason.message}
    if len(set(y_test.tolist())) < 2:
        return {"skipped": f"the {len(y_test)} test customers all had the same outcome: AUC is undefined"}
    risk = model.risk(test.values)
    base = np.full(len(y_test), y_train.mean())
    return {
        "train_as_of": train_at,
        "test_as_of": test_at,
        "train_customers": len(y_train),
        "test_customers": len(y_test),
        "test_churn_rate": float(y_test.mean()),
        "auc": float(roc_auc_score(y_test, risk)),
        "brier": float(brier_score_loss(y_test, risk)),
        "brier_base_rate": float(brier_score_loss(y_test, base)),
    }


def evaluate_clv(db: Database, *, now: datetime, holdout_days: int) -> dict[str, Any]:
    cutoff = now - timedelta(days=holdout_days)
    purchases = list(read_purchases(db, until=now))
    calibration = summarise(purchases, until=cutoff, unit=DAY)
    try:
        model = fit_bgnbd(calibration.frequency, calibration.recency, calibration.age)
    except NotEnoughPurchases as reason:
        return {"skipped": reason.message}
    # Repeat purchases in the holdout: purchase days after the cutoff of customers known before it.
    known = set(calibration.profile_ids)
    days: dict[str, set[Any]] = defaultdict(set)
    for p in purchases:
        if p.at >= cutoff and p.profile_id in known:
            days[p.profile_id].add(p.at.date())
    actual = np.array([len(days[pid]) for pid in calibration.profile_ids], dtype=np.float64)
    x, t_x, age = calibration.frequency, calibration.recency, calibration.age
    predicted = model.expected_purchases(float(holdout_days), x, t_x, age)
    # The naive forecast: each customer keeps their calibration-period rate of repeat purchases.
    naive = np.where(age > 0, x / np.maximum(age, 1e-9), 0.0) * holdout_days
    return {
        "cutoff": cutoff,
        "customers": len(calibration),
        "params": {"r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b},
        "actual_repeat_purchases": int(actual.sum()),
        "predicted_repeat_purchases": float(predicted.sum()),
        "mae": float(np.abs(predicted - actual).mean()),
        "mae_naive": float(np.abs(naive - actual).mean()),
    }


def precision_recall_at_k(
    picks: dict[str, list[Recommendation]], truth: dict[str, set[str]]
) -> tuple[float, float]:
    """Mean precision@K and recall@K over the customers in `truth` (what each bought after the cutoff
    that they had not bought before); bench/recommendations.py reports the same measure."""
    precision = recall = 0.0
    for profile_id, bought in truth.items():
        hits = len({p.product for p in picks[profile_id][:K]} & bought)
        precision += hits / K
        recall += hits / len(bought)
    return precision / len(truth), recall / len(truth)


def evaluate_recommendations(db: Database, *, now: datetime, holdout_days: int) -> dict[str, Any]:
    cutoff = now - timedelta(days=holdout_days)
    interactions = read_interactions(db, until=now)
    train = [i for i in interactions if i.at < cutoff]
    before: dict[str, set[str]] = defaultdict(set)
    for i in train:
        if i.kind == PURCHASE:
            before[i.profile_id].add(i.product)
    truth: dict[str, set[str]] = defaultdict(set)
    for i in interactions:
        if i.at >= cutoff and i.kind == PURCHASE and i.product not in before[i.profile_id]:
            truth[i.profile_id].add(i.product)
    if not train or not truth:
        return {"skipped": "no purchases of new products after the cutoff, or nothing before it"}
    settings = RecommendationSettings()
    customers = sorted(truth)
    model = ItemItemModel(train, now=cutoff, settings=settings)
    popular = ItemItemModel([i for i in train if i.kind == PURCHASE], now=cutoff, settings=settings)
    # The baseline: the same most-bought list for everyone, less what each already bought.
    baseline = {p: popular.popular_for(p, K) for p in customers}
    precision, recall = precision_recall_at_k(model.recommend(customers, K), truth)
    base_precision, base_recall = precision_recall_at_k(baseline, truth)
    return {
        "cutoff": cutoff,
        "test_customers": len(customers),
        "products": len(model.products),
        "precision_at_10": precision,
        "recall_at_10": recall,
        "popularity_precision_at_10": base_precision,
        "popularity_recall_at_10": base_recall,
    }


def evaluate_models(db: Database, *, now: datetime, windows: Windows = Windows()) -> Evaluation:
    return Evaluation(
        as_of=now,
        windows=windows,
        churn=evaluate_churn(db, now=now, horizon_days=windows.churn_horizon_days),
        clv=evaluate_clv(db, now=now, holdout_days=windows.clv_holdout_days),
        recommendations=evaluate_recommendations(
            db, now=now, holdout_days=windows.recommendations_holdout_days
        ),
    )
