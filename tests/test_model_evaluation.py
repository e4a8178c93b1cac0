"""The models on the data `threadline demo` loads: each is refitted before a cutoff and judged on what
came after it, and the figures are the held-out truth (counted here again, straight from the events)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest
from typer.testing import CliRunner

from threadline.analytics import evaluate_models, read_purchases
from threadline.cli.main import app
from threadline.clock import utcnow
from threadline.config import Settings, get_settings
from threadline.demo import generate_demo
from threadline.storage import Database


@pytest.fixture
def demo_db(db: Database, settings: Settings) -> Database:
    generate_demo(db, settings, customers=400, seed=7, locale="en_US", progress=False)
    return db


def test_held_out_figures_on_the_demo_data(demo_db: Database) -> None:
    now = utcnow()
    result = evaluate_models(demo_db, now=now)

    churn = result.churn
    assert "skipped" not in churn, churn
    assert churn["train_as_of"] < churn["test_as_of"] < now  # the test labels come after the training's
    assert churn["train_customers"] >= 20 and churn["test_customers"] >= 20
    assert 0.0 <= churn["auc"] <= 1.0 and 0.0 <= churn["brier"] <= 1.0

    clv = result.clv
    assert "skipped" not in clv, clv
    # The actual holdout figure, counted again: purchase days after the cutoff of customers who had
    # bought before it (the BG/NBD convention: one purchase per customer and day).
    before: set[str] = set()
    after: dict[str, set[date]] = defaultdict(set)
    for purchase in read_purchases(demo_db, until=now):
        if purchase.at < clv["cutoff"]:
            before.add(purchase.profile_id)
        else:
            after[purchase.profile_id].add(purchase.at.date())
    assert clv["customers"] == len(before)
    assert clv["actual_repeat_purchases"] == sum(len(after[p]) for p in before)
    assert clv["predicted_repeat_purchases"] > 0 and clv["mae"] >= 0

    recs = result.recommendations
    assert "skipped" not in recs, recs
    assert recs["test_customers"] > 0
    assert 0 < recs["precision_at_10"] <= 1 and 0 < recs["popularity_precision_at_10"] <= 1


def test_the_command_prints_each_model(
    demo_db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(app, ["analytics", "evaluate", "--churn-horizon", "30"])
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    for expected in ("churn risk", "auc:", "CLV (BG/NBD)", "actual repeat purchases:", "precision at 10:"):
        assert expected in out.output
