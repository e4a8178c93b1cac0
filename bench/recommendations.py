"""Recommendations on generated shoppers: precision@10 and recall@10 of the item-item model against a
popularity baseline, on a time split.

Shoppers come from `shopper_generator.py` (deterministic by seed). The models learn from every event
before the cutoff (the last 30 of 240 days are held out) and are tested on what each customer bought
after it that they had not bought before (both models leave out what was already bought). Timings are
compared with a floor in the same run: fitting the popularity baseline, which reads the same rows.

    .venv/bin/python bench/recommendations.py [--customers 5000] [--seed 11] [--no-results]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from threadline.analytics.evaluation import precision_recall_at_k
from threadline.analytics.recommendations import (
    PURCHASE,
    ItemItemModel,
    RecommendationSettings,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_facts, table, write_section
from shopper_generator import START, generate_shoppers

DAYS, HELD_OUT_DAYS, K = 240, 30, 10


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--customers", type=int, default=5000)
    args.add_argument("--seed", type=int, default=11)
    args.add_argument("--no-results", action="store_true")
    options = args.parse_args()
    interactions = generate_shoppers(options.customers, days=DAYS, seed=options.seed)
    cutoff = START + timedelta(days=DAYS - HELD_OUT_DAYS)
    train = [i for i in interactions if i.at < cutoff]
    before: dict[str, set[str]] = defaultdict(set)
    for i in train:
        if i.kind == PURCHASE:
            before[i.profile_id].add(i.product)
    truth: dict[str, set[str]] = defaultdict(set)
    for i in interactions:
        if i.at >= cutoff and i.kind == PURCHASE and i.product not in before[i.profile_id]:
            truth[i.profile_id].add(i.product)
    customers = sorted(truth)

    settings = RecommendationSettings()
    started = time.perf_counter()
    popular = ItemItemModel([i for i in train if i.kind == PURCHASE], now=cutoff, settings=settings)
    floor = time.perf_counter() - started
    started = time.perf_counter()
    model = ItemItemModel(train, now=cutoff, settings=settings)
    fit = time.perf_counter() - started
    started = time.perf_counter()
    picks = model.recommend(customers, K)
    answer = time.perf_counter() - started
    # The baseline: the same most-bought list for everyone, less what each already bought.
    baseline = {p: popular.popular_for(p, K) for p in customers}
    no_decay = ItemItemModel(train, now=cutoff, settings=replace(settings, half_life_days=1e9)).recommend(
        customers, K
    )
    results = [
        ("popularity (most bought, last 90 days)", precision_recall_at_k(baseline, truth)),
        ("item-item cosine, no recency decay", precision_recall_at_k(no_decay, truth)),
        ("item-item cosine (shipped)", precision_recall_at_k(picks, truth)),
    ]
    base_precision = results[0][1][0]
    rows = [(name, f"{p:.4f}", f"{r:.4f}", f"{p / base_precision:.2f}x") for name, (p, r) in results]
    print(table(("model", "precision@10", "recall@10", "vs popularity"), rows))
    body = f"""## Recommendations: generated shoppers, time split

{options.customers:,} generated customers (seed {options.seed}) in 8 taste segments, 480 products in 12
categories (Zipf popularity within each), views on web/app and purchases on web/app/store over {DAYS}
days: {len(train):,} interactions before the cutoff train both models; tested on the {len(customers):,}
customers who bought something new in the last {HELD_OUT_DAYS} days (what they had bought before is
left out by both models and by the test). `bench/recommendations.py`; goal: 1.3x popularity's
precision@10.

{table(("model", "precision@10", "recall@10", "vs popularity"), rows)}

Timings (same run; floor: fitting popularity on the same rows): floor {floor * 1000:.0f} ms, item-item
fit {fit * 1000:.0f} ms ({fit / max(floor, 1e-9):.1f}x floor), top-10 for {len(customers):,} customers
{answer * 1000:.0f} ms.

{machine_facts([])}
"""
    if not options.no_results:
        write_section("recommendations", body)


if __name__ == "__main__":
    main()
