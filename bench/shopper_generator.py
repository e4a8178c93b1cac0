"""Generated shoppers for bench/recommendations.py: latent taste segments, products in categories,
views and purchases on web, app and store over time. The same seed gives the same data.

Each customer belongs to a taste segment that favours two of the categories; most of what they look at
and buy comes from those, the rest from anywhere. Within a category a few products are much more popular
than the others (Zipf), so a popularity baseline is not a straw man. On the web and the app customers
view before they buy; in the store they buy without a recorded view.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from threadline.analytics.recommendations import PURCHASE, VIEW, Interaction

START = datetime(2025, 1, 1)


def generate_shoppers(
    customers: int = 5000,
    *,
    categories: int = 12,
    per_category: int = 40,
    segments: int = 8,
    days: int = 240,
    seed: int = 11,
) -> list[Interaction]:
    """Views and purchases over `days` from START, in no particular order."""
    rng = np.random.default_rng(seed)
    favourites = [rng.choice(categories, size=2, replace=False) for _ in range(segments)]
    zipf = 1 / np.arange(1, per_category + 1) ** 1.1
    within = zipf / zipf.sum()
    interactions: list[Interaction] = []
    for c in range(customers):
        profile = f"c{c:06d}"
        segment = int(rng.integers(segments))
        channel = str(rng.choice(["web", "app", "store"], p=[0.45, 0.35, 0.2]))
        visits = int(rng.poisson(6)) + 1
        for _ in range(visits):
            at = START + timedelta(days=float(rng.uniform(0, days)))
            in_taste = rng.random() < 0.8
            category = int(rng.choice(favourites[segment])) if in_taste else int(rng.integers(categories))
            seen = rng.choice(per_category, size=int(rng.integers(1, 5)), replace=False, p=within)
            products = [f"p{category:02d}-{int(i):03d}" for i in seen]
            if channel != "store":
                for n, product in enumerate(products):
                    interactions.append(Interaction(profile, product, VIEW, at + timedelta(minutes=n)))
            if rng.random() < 0.45:
                interactions.append(Interaction(profile, products[0], PURCHASE, at + timedelta(minutes=30)))
    return interactions
