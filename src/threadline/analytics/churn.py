"""Churn risk: the probability that a customer who has bought makes no purchase in the next `horizon_days`
(90 by default), from what they did before today (churn_features.py).

The model is a logistic regression on log(1 + feature), standardised, from scikit-learn. It is trained on
a time split: features as of `horizon_days` ago and, as labels, whether each customer then bought in the
`horizon_days` since; the fitted model then scores today's features. A logistic regression rather than
boosted trees because its reasons are exact: on the log-odds scale a customer's risk is the average
customer's plus one term per feature, coefficient x (the customer's standardised value - the average's,
which is 0). The main reasons stored with a score are the terms that raise that customer's risk most.
bench/churn.py compares it with gradient boosting on generated histories, and reports its calibration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from threadline.analytics.churn_features import (
    FEATURES,
    Activity,
    FeatureTable,
    SurveyAnswer,
    churned,
    features_as_of,
)
from threadline.analytics.purchases import Purchase
from threadline.errors import Invalid

if TYPE_CHECKING:  # scikit-learn loads in a second: only a run that trains pays for it
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

MODEL_NAME = "churn-logit-v1"
MIN_TRAINING_CUSTOMERS = 50
MIN_PER_CLASS = 10  # churned and retained customers each: fewer and the model learns nothing
REASONS = 3


class NotEnoughHistory(Invalid):
    """Too few customers with history (or no churn, or no retention) to train on: nothing is scored."""


@dataclass(frozen=True, slots=True)
class ChurnDefinition:
    horizon_days: int = 90  # churned: no purchase in this many days after the as-of date
    min_tenure_days: int = 30  # scored only with a first purchase at least this long before it
    active_days: int = 365  # and a purchase within this many days: longer gone has already left

    def eligibility(self) -> dict[str, int]:
        return {"min_tenure_days": self.min_tenure_days, "active_days": self.active_days}


@dataclass(frozen=True, slots=True)
class Reason:
    feature: str
    value: float
    contribution: float  # to the log-odds, against the average customer


@dataclass(slots=True)
class ChurnModel:
    scaler: StandardScaler
    classifier: LogisticRegression
    trained_on: int
    churn_rate: float

    def _scaled(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(self.scaler.transform(np.log1p(values)), dtype=np.float64)

    def risk(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        if len(values) == 0:
            return np.zeros(0)
        return np.asarray(self.classifier.predict_proba(self._scaled(values))[:, 1], dtype=np.float64)

    def reasons(self, values: NDArray[np.float64], top: int = REASONS) -> list[list[Reason]]:
        """Per customer, the features that raise their risk most (positive contributions only)."""
        if len(values) == 0:
            return []
        contributions = self._scaled(values) * self.classifier.coef_[0]
        found = []
        for row, terms in zip(values, contributions, strict=True):
            order = np.argsort(-terms)[:top]
            found.append(
                [Reason(FEATURES[i], float(row[i]), round(float(terms[i]), 3)) for i in order if terms[i] > 0]
            )
        return found

    def coefficients(self) -> dict[str, float]:
        return {name: float(c) for name, c in zip(FEATURES, self.classifier.coef_[0], strict=True)}


def train_churn(features: FeatureTable, labels: NDArray[np.int64]) -> ChurnModel:
    """Fit on features as of a past date and whether each customer churned after it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    churners = int(labels.sum())
    if len(labels) < MIN_TRAINING_CUSTOMERS or min(churners, len(labels) - churners) < MIN_PER_CLASS:
        raise NotEnoughHistory(
            f"{len(labels)} customers to learn from, {churners} of them churned; the model needs "
            f"{MIN_TRAINING_CUSTOMERS}, with {MIN_PER_CLASS} churned and {MIN_PER_CLASS} retained"
        )
    scaler = StandardScaler().fit(np.log1p(features.values))
    classifier = LogisticRegression(C=1.0, max_iter=2000)
    classifier.fit(scaler.transform(np.log1p(features.values)), labels)
    return ChurnModel(scaler, classifier, len(labels), churners / len(labels))


@dataclass(slots=True)
class ChurnScores:
    profile_ids: list[str]
    risk: NDArray[np.float64]
    reasons: list[list[Reason]]
    model: ChurnModel

    def details(self, index: int, definition: ChurnDefinition) -> dict[str, Any]:
        return {
            "horizon_days": definition.horizon_days,
            "reasons": [
                {"feature": r.feature, "value": round(r.value, 2), "contribution": r.contribution}
                for r in self.reasons[index]
            ],
        }


def score_churn(
    purchases: Sequence[Purchase],
    activity: Sequence[Activity],
    surveys: Sequence[SurveyAnswer],
    *,
    now: datetime,
    definition: ChurnDefinition = ChurnDefinition(),
) -> ChurnScores:
    """Train on the split `horizon_days` ago, then score every customer eligible today."""
    cutoff = now - timedelta(days=definition.horizon_days)
    past = features_as_of(cutoff, purchases, activity, surveys, **definition.eligibility())
    labels = churned(past.profile_ids, purchases, start=cutoff, horizon_days=definition.horizon_days)
    model = train_churn(past, labels)
    today = features_as_of(now, purchases, activity, surveys, **definition.eligibility())
    return ChurnScores(today.profile_ids, model.risk(today.values), model.reasons(today.values), model)
