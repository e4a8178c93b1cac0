"""Next-best products per customer: item-item collaborative filtering on purchases and views.

Every channel's product events count (web, app, store...). Each customer x product cell adds up the
customer's interactions, a view weighing less than an add-to-cart and both less than a purchase, each
halved every `half_life_days` of age so recent taste counts most. Two products are alike when the same
customers touched both (cosine of their columns); a customer's score for a product is the sum of its
likeness to what they touched, weighted by the cells. Products already bought are left out (unless
`exclude_purchased` is off); a customer with no history, or too little to fill the list, gets the most
popular products (recent purchases, same decay).

The daily `analytics.recommendations` job stores the top 10 as the profile score "recommendations",
`{"items": [{"product": id, "score": s}, ...]}`; `recommend_for` reads it (journey messages, agents).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy import sparse
from sqlalchemy import select

from threadline.analytics.scores import Score, replace_scores
from threadline.storage import Database
from threadline.storage.models import Event, ProfileScore

RECOMMENDATIONS = "recommendations"
MODEL = "item-item-cosine-1"
TOP = 10
VIEW, CART, PURCHASE = "view", "cart", "purchase"
# Segment's ecommerce spec names. "Product List Viewed" is left out: a list shown is not interest in one.
EVENT_KINDS = {
    "Product Viewed": VIEW,
    "Product Clicked": VIEW,
    "Product Added": CART,
    "Order Completed": PURCHASE,
}
_PRODUCT_KEYS = ("product_id", "sku", "id")


@dataclass(frozen=True, slots=True)
class Interaction:
    profile_id: str
    product: str
    kind: str  # view | cart | purchase
    at: datetime


@dataclass(frozen=True, slots=True)
class RecommendationSettings:
    weights: tuple[tuple[str, float], ...] = ((VIEW, 1.0), (CART, 2.0), (PURCHASE, 5.0))
    half_life_days: float = 90.0
    exclude_purchased: bool = True
    # Popularity counts purchases of this recent past only: last year's bestseller is not this month's.
    popular_days: int = 90


@dataclass(frozen=True, slots=True)
class Recommendation:
    product: str
    score: float


def products_of(properties: dict[str, Any] | None) -> list[str]:
    """The product IDs an event is about: its own product, or every line of its `products`."""
    props = properties or {}
    lines = props.get("products")
    if isinstance(lines, list):
        return [p for line in lines if isinstance(line, dict) and (p := _product_id(line))]
    product = _product_id(props)
    return [product] if product else []


def _product_id(values: dict[str, Any]) -> str | None:
    for key in _PRODUCT_KEYS:
        value = values.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def read_interactions(db: Database, *, until: datetime | None = None) -> list[Interaction]:
    query = select(Event.profile_id, Event.name, Event.properties, Event.timestamp).where(
        Event.type == "track", Event.name.in_(list(EVENT_KINDS))
    )
    if until is not None:
        query = query.where(Event.timestamp < until)
    out: list[Interaction] = []
    with db.read() as session:
        for profile_id, name, properties, at in session.execute(query.execution_options(yield_per=5000)):
            kind = EVENT_KINDS[name]
            out.extend(Interaction(profile_id, product, kind, at) for product in products_of(properties))
    return out


class ItemItemModel:
    """Fitted on interactions up to `now`; answers top-k products per customer."""

    def __init__(
        self, interactions: Iterable[Interaction], *, now: datetime, settings: RecommendationSettings
    ) -> None:
        self.settings = settings
        weights = dict(settings.weights)
        rows = list(interactions)
        self.customers = {p: i for i, p in enumerate(sorted({r.profile_id for r in rows}))}
        self.products = sorted({r.product for r in rows})
        index = {p: i for i, p in enumerate(self.products)}
        age_days = np.array([max((now - r.at) / timedelta(days=1), 0.0) for r in rows])
        decay = 0.5 ** (age_days / settings.half_life_days)
        value = np.array([weights[r.kind] for r in rows]) * decay
        shape = (len(self.customers), len(self.products))
        user = np.array([self.customers[r.profile_id] for r in rows], dtype=np.int64)
        item = np.array([index[r.product] for r in rows], dtype=np.int64)
        # Summed per cell, then dampened: ten views of one product are interest, not ten times the proof.
        self.matrix = sparse.csr_matrix((value, (user, item)), shape=shape)
        self.matrix.data = np.log1p(self.matrix.data)
        bought = np.array([r.kind == PURCHASE for r in rows])
        self.purchased = sparse.csr_matrix(
            (np.ones(int(bought.sum())), (user[bought], item[bought])), shape=shape
        )
        recent = bought & (age_days <= settings.popular_days)
        self.popularity = np.bincount(item[recent], weights=decay[recent], minlength=len(self.products))
        norms = np.sqrt(np.asarray(self.matrix.multiply(self.matrix).sum(axis=0)).ravel())
        normalised = self.matrix @ sparse.diags(1 / np.where(norms > 0, norms, 1))
        similarity = (normalised.T @ normalised).tocsr()
        similarity.setdiag(0)  # a product is not its own recommendation
        self.similarity = similarity

    def recommend(self, profile_ids: list[str], k: int = TOP) -> dict[str, list[Recommendation]]:
        out: dict[str, list[Recommendation]] = {}
        known = [p for p in profile_ids if p in self.customers]
        rows = [self.customers[p] for p in known]
        scores = np.asarray((self.matrix[rows] @ self.similarity).todense()) if rows else np.zeros((0, 0))
        for n, profile_id in enumerate(known):
            out[profile_id] = self._top(scores[n], self.customers[profile_id], k)
        for profile_id in profile_ids:
            if profile_id not in out:
                out[profile_id] = self._top(np.zeros(len(self.products)), None, k)
        return out

    def _top(self, scores: np.ndarray[Any, Any], row: int | None, k: int) -> list[Recommendation]:
        excluded = np.zeros(len(self.products), dtype=bool)
        if row is not None and self.settings.exclude_purchased:
            excluded[self.purchased[row].indices] = True
        ranked = [i for i in np.argsort(-scores, kind="stable") if scores[i] > 0 and not excluded[i]][:k]
        picks = [Recommendation(self.products[i], round(float(scores[i]), 6)) for i in ranked]
        if len(picks) < k:  # too little history: fill with what sells, below every personal pick
            taken = set(ranked)
            for i in np.argsort(-self.popularity, kind="stable"):
                if len(picks) == k or self.popularity[i] <= 0:
                    break
                if i not in taken and not excluded[i]:
                    picks.append(Recommendation(self.products[i], 0.0))
        return picks

    def popular(self, k: int = TOP) -> list[Recommendation]:
        return self._top(np.zeros(len(self.products)), None, k)

    def popular_for(self, profile_id: str, k: int = TOP) -> list[Recommendation]:
        """The most bought products less what this customer bought: the baseline a model must beat."""
        return self._top(np.zeros(len(self.products)), self.customers.get(profile_id), k)


def fit_recommendations(
    db: Database, *, now: datetime, settings: RecommendationSettings | None = None
) -> ItemItemModel:
    return ItemItemModel(
        read_interactions(db, until=now), now=now, settings=settings or RecommendationSettings()
    )


def refresh_recommendations(
    db: Database, *, now: datetime, settings: RecommendationSettings | None = None, chunk: int = 2000
) -> dict[str, int]:
    """Recompute every known customer's top 10 and replace the stored ones; answers counts."""
    model = fit_recommendations(db, now=now, settings=settings)
    customers = list(model.customers)
    scores = []
    for start in range(0, len(customers), chunk):
        for profile_id, picks in model.recommend(customers[start : start + chunk], TOP).items():
            scores.append(
                Score(profile_id, RECOMMENDATIONS, picks[0].score if picks else None, _details(picks))
            )
    replace_scores(db, [RECOMMENDATIONS], scores, model=MODEL, now=now)
    return {"customers": len(customers), "products": len(model.products)}


def _details(picks: list[Recommendation]) -> dict[str, Any]:
    return {"items": [{"product": p.product, "score": p.score} for p in picks]}


def recommend_for(db: Database, profile_id: str, k: int = TOP, *, now: datetime) -> list[Recommendation]:
    """The stored next-best products of a customer; for one the last run did not know (new since),
    the products most bought recently."""
    with db.read() as session:
        details = session.scalar(
            select(ProfileScore.details).where(
                ProfileScore.profile_id == profile_id, ProfileScore.name == RECOMMENDATIONS
            )
        )
    if details:
        return [Recommendation(str(i["product"]), float(i["score"])) for i in details.get("items", [])][:k]
    return popular_products(db, k, now=now)


def popular_products(
    db: Database, k: int = TOP, *, now: datetime, settings: RecommendationSettings | None = None
) -> list[Recommendation]:
    settings = settings or RecommendationSettings()
    since = now - timedelta(days=settings.popular_days)
    query = select(Event.profile_id, Event.properties, Event.timestamp).where(
        Event.type == "track",
        Event.name == "Order Completed",
        Event.timestamp >= since,
        Event.timestamp < now,
    )
    with db.read() as session:
        purchases = [
            Interaction(pid, product, PURCHASE, at)
            for pid, props, at in session.execute(query)
            for product in products_of(props)
        ]
    return ItemItemModel(purchases, now=now, settings=settings).popular(k)
