"""Recommendations: item-item collaborative filtering on purchases and views across channels."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from tests.factories import lookup_profile, make_source, send
from threadline.analytics import RECOMMENDATIONS, recommend_for, refresh_recommendations
from threadline.analytics.recommendations import (
    PURCHASE,
    VIEW,
    Interaction,
    ItemItemModel,
    RecommendationSettings,
    products_of,
)
from threadline.config import Settings
from threadline.jobs import Worker, handlers, schedules_for
from threadline.storage import Database
from threadline.storage.models import ProfileScore

NOW = datetime(2025, 6, 1)


def shoppers(customers: int, seed: int) -> list[Interaction]:
    """Four taste groups, each liking one category of 30 products; some buy across."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(customers):
        taste = "abcd"[c % 4]
        for n in range(12):
            at = NOW - timedelta(days=float(rng.uniform(1, 120)))
            own = rng.random() < 0.85
            category = taste if own else "abcd"[int(rng.integers(4))]
            product = f"{category}{int(rng.zipf(1.3)) % 30}"
            out.append(Interaction(f"c{c}", product, VIEW, at))
            if n % 2 == 0:
                out.append(Interaction(f"c{c}", product, PURCHASE, at + timedelta(minutes=5)))
    return out


def precision_at_10(model: ItemItemModel, picks: dict[str, Any], truth: dict[str, set[str]]) -> float:
    return float(np.mean([len({p.product for p in picks[c]} & bought) / 10 for c, bought in truth.items()]))


def test_item_item_beats_popularity_on_a_time_split() -> None:
    events = shoppers(400, seed=3)
    cutoff = NOW - timedelta(days=20)
    train = [e for e in events if e.at < cutoff]
    bought = {(e.profile_id, e.product) for e in train if e.kind == PURCHASE}
    truth: dict[str, set[str]] = {}
    for e in events:
        if e.at >= cutoff and e.kind == PURCHASE and (e.profile_id, e.product) not in bought:
            truth.setdefault(e.profile_id, set()).add(e.product)
    settings = RecommendationSettings()
    model = ItemItemModel(train, now=cutoff, settings=settings)
    popular = ItemItemModel([e for e in train if e.kind == PURCHASE], now=cutoff, settings=settings)
    baseline = {c: popular._top(np.zeros(len(popular.products)), popular.customers.get(c), 10) for c in truth}
    ours = precision_at_10(model, model.recommend(sorted(truth)), truth)
    assert ours > 1.3 * precision_at_10(popular, baseline, truth)


def test_bought_products_are_left_out_unless_configured() -> None:
    events = [
        Interaction("ann", "tea", PURCHASE, NOW - timedelta(days=3)),
        Interaction("bob", "tea", PURCHASE, NOW - timedelta(days=3)),
        Interaction("bob", "cups", PURCHASE, NOW - timedelta(days=2)),
        Interaction("cat", "cups", VIEW, NOW - timedelta(days=1)),
    ]
    picks = ItemItemModel(events, now=NOW, settings=RecommendationSettings()).recommend(["ann"])["ann"]
    assert [p.product for p in picks] == ["cups"]
    keep = RecommendationSettings(exclude_purchased=False)
    assert "tea" in [
        p.product for p in ItemItemModel(events, now=NOW, settings=keep).recommend(["ann"])["ann"]
    ]


def test_a_customer_without_history_gets_the_bestsellers() -> None:
    events = [
        Interaction(f"c{n}", "tea" if n < 3 else "cups", PURCHASE, NOW - timedelta(days=n)) for n in range(5)
    ]
    events.append(Interaction("c9", "socks", VIEW, NOW))  # viewed, never bought: not popular
    picks = ItemItemModel(events, now=NOW, settings=RecommendationSettings()).recommend(["new"])["new"]
    assert [p.product for p in picks] == ["tea", "cups"]


def test_products_come_from_the_event_or_its_lines() -> None:
    assert products_of({"product_id": "p1"}) == ["p1"]
    assert products_of({"sku": 42}) == ["42"]
    assert products_of({"products": [{"product_id": "a"}, {"sku": "b"}, {"name": "no id"}]}) == ["a", "b"]
    assert products_of({"name": "nothing"}) == []


def _order(user: str, n: int, at: datetime, *products: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "messageId": f"o-{user}-{n}",
        "timestamp": at.isoformat() + "Z",
        "properties": {"total": 10, "products": [{"product_id": p} for p in products]},
    }


def _view(user: str, n: int, at: datetime, product: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "userId": user,
        "messageId": f"v-{user}-{n}",
        "timestamp": at.isoformat() + "Z",
        "properties": {"product_id": product},
    }


def test_the_daily_job_writes_and_replaces_each_customers_top_10(db: Database, settings: Settings) -> None:
    web, store = make_source(db), make_source(db, "store", "store")
    day = NOW - timedelta(days=10)
    send(db, settings, store, _order("u1", 1, day, "tea", "cups"), _order("u2", 1, day, "tea", "cups"))
    send(db, settings, web, _view("u3", 1, day, "tea"), _order("u4", 1, day, "tea"))
    [daily] = [s for s in schedules_for(settings) if s.kind == "analytics.recommendations"]
    clock = {"at": NOW}
    kinds = {"analytics.recommendations": handlers()["analytics.recommendations"]}
    worker = Worker(db, settings, clock=lambda: clock["at"], kinds=kinds, schedules=[daily])
    [outcome] = worker.run_until_idle()
    assert outcome.status == "done"
    u3, u4 = lookup_profile(db, "user_id", "u3"), lookup_profile(db, "user_id", "u4")
    # Viewed tea, and those who bought tea bought cups: cups first, tea (viewed, not bought) still offered.
    assert [r.product for r in recommend_for(db, u3, now=NOW)] == ["cups", "tea"]
    assert [r.product for r in recommend_for(db, u4, now=NOW)] == ["cups"]  # bought tea already
    with db.read() as session:
        assert session.query(ProfileScore).filter_by(name=RECOMMENDATIONS).count() == 4
    # A customer unknown to the last run gets what sells.
    assert [r.product for r in recommend_for(db, "nobody", now=NOW)][:2] == ["tea", "cups"]

    send(db, settings, web, _order("u3", 2, NOW - timedelta(days=1), "cups"))
    assert refresh_recommendations(db, now=NOW) == {"customers": 4, "products": 2}
    with db.read() as session:
        row = session.get(ProfileScore, (u3, RECOMMENDATIONS))
        assert row is not None and [i["product"] for i in row.details["items"]] == ["tea"]  # bought cups
        assert session.query(ProfileScore).filter_by(name=RECOMMENDATIONS).count() == 4
