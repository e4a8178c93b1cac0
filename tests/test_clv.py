"""CLV: BG/NBD and Gamma-Gamma recover the parameters of populations simulated from them, predictions
behave as the model says, purchases are read from the timeline, and the daily job writes and replaces
the scores. Real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.factories import lookup_profile, make_source, send
from threadline.analytics import (
    CLV_12M,
    EXPECTED_PURCHASES_12M,
    P_ALIVE,
    BgNbd,
    NotEnoughPurchases,
    Purchase,
    PurchaseRule,
    Score,
    ScoreSettings,
    customer_value,
    fit_bgnbd,
    fit_gamma_gamma,
    read_purchases,
    refresh_scores,
    replace_scores,
    summarise,
)
from threadline.config import Settings
from threadline.jobs import DONE, Worker, handlers, list_jobs, schedules_for
from threadline.storage import Database
from threadline.storage.models import ProfileScore

NOW = datetime(2026, 6, 1, 12, 0)


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, *, seed: int, weeks: tuple[float, float] = (20, 60)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) for n customers drawn from the BG/NBD story, observed `weeks` from their first
    purchase: Poisson buying at lambda ~ Gamma(r, alpha) while alive, death with p ~ Beta(a, b) after each
    repeat purchase."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(*weeks, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < p[i]:
                break
    return x, t_x, T


def test_bgnbd_recovers_the_parameters_of_a_simulated_population() -> None:
    truth = {"r": 0.6, "alpha": 5.0, "a": 0.8, "b": 2.5}
    x, t_x, T = simulate_bgnbd(6000, **truth, seed=11)
    fitted = fit_bgnbd(x, t_x, T)
    for name, value in truth.items():
        assert getattr(fitted, name) == pytest.approx(value, rel=0.25), name
    # The population's mean purchase rate r/alpha is pinned far more tightly than r and alpha apart.
    assert fitted.r / fitted.alpha == pytest.approx(truth["r"] / truth["alpha"], rel=0.08)


def test_bgnbd_predictions_follow_the_model() -> None:
    model = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)  # CDNOW, weeks (Fader, Hardie & Lee 2005)
    x = np.array([0.0, 3.0, 3.0, 10.0])
    t_x = np.array([0.0, 30.0, 5.0, 35.0])
    T = np.array([38.0, 38.0, 38.0, 38.0])
    alive = model.p_alive(x, t_x, T)
    assert alive[0] == 1.0  # no repeat purchase, no chance yet to drop out
    assert alive[1] > alive[2]  # the same three purchases, the last one recent rather than long ago
    expected = model.expected_purchases(52, x, t_x, T)
    assert expected[3] > expected[1] > expected[2] > 0
    assert np.all(model.expected_purchases(104, x, t_x, T) > expected)
    # The closed form of E[X(t)] agrees with customers simulated from the same story.
    simulated, _, _ = simulate_bgnbd(20_000, 0.243, 4.414, 0.793, 2.426, seed=4, weeks=(78, 78))
    assert float(model.expected_purchases_new(78.0)) == pytest.approx(simulated.mean(), rel=0.05)


def test_gamma_gamma_recovers_spend_and_shrinks_towards_the_mean() -> None:
    rng = np.random.default_rng(5)
    p, q, gamma = 6.0, 4.0, 15.0
    n = 3000
    x = rng.integers(1, 8, n).astype(float)
    nu = rng.gamma(q, 1 / gamma, n)
    monetary = np.array([rng.gamma(p, 1 / nu[i], int(x[i])).mean() for i in range(n)])
    fitted = fit_gamma_gamma(x, monetary)
    assert fitted.p == pytest.approx(p, rel=0.2)
    assert fitted.q == pytest.approx(q, rel=0.2)
    assert fitted.gamma == pytest.approx(gamma, rel=0.3)
    population = fitted.p * fitted.gamma / (fitted.q - 1)
    assert float(fitted.expected_spend(np.array([0.0]), np.array([0.0]))[0]) == pytest.approx(population)
    # One big purchase says less than ten: the estimate sits between the customer's mean and everyone's.
    one, ten = fitted.expected_spend(np.array([1.0, 10.0]), np.array([200.0, 200.0]))
    assert population < one < ten < 200
    with pytest.raises(NotEnoughPurchases):
        fit_gamma_gamma(x[:3], monetary[:3])


def test_customer_value_discounts_expected_purchases_times_spend() -> None:
    model = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
    x, t_x, T = np.array([2.0]), np.array([30.0]), np.array([38.0])
    spend = fit_gamma_gamma(*_spend_population())
    undiscounted = customer_value(model, spend, x, t_x, T, np.array([40.0]), unit=7, monthly_discount=0)
    per_purchase = spend.expected_spend(x, np.array([40.0]))
    year = model.expected_purchases(12 * 365.25 / 12 / 7, x, t_x, T)
    assert undiscounted == pytest.approx(year * per_purchase)
    discounted = customer_value(model, spend, x, t_x, T, np.array([40.0]), unit=7, monthly_discount=0.01)
    assert 0.93 * undiscounted < discounted < undiscounted


def _spend_population() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.integers(1, 6, 500).astype(float)
    return x, rng.gamma(5, 10, 500)


def test_purchases_count_days_with_a_positive_amount() -> None:
    day = datetime(2026, 1, 1, 9)
    rule = PurchaseRule()
    assert rule.value_of({"revenue": 12.5, "total": 99}) == 12.5
    assert rule.value_of({"total": "30.00"}) == 30.0
    assert rule.value_of({"total": 0}) is None and rule.value_of({"revenue": True}) is None
    purchases = [
        Purchase("a", day, 10.0),
        Purchase("a", day + timedelta(hours=2), 5.0),  # the same day: one purchase of 15
        Purchase("a", day + timedelta(days=10), 20.0),
        Purchase("a", day + timedelta(days=30), 40.0),
        Purchase("a", day + timedelta(days=90), 1000.0),  # after the end: ignored
        Purchase("b", day + timedelta(days=20), 8.0),
    ]
    summary = summarise(purchases, until=day + timedelta(days=40))
    assert summary.profile_ids == ["a", "b"]
    assert list(summary.frequency) == [2, 0]
    assert list(summary.recency) == [30, 0]
    assert list(summary.age) == [40, 20]
    assert list(summary.monetary) == [30, 0]  # the mean of the repeat purchases only
    assert list(summary.first_value) == [15, 8]


def _order(user: str, at: datetime, total: float, n: int) -> dict[str, object]:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "messageId": f"{user}-order-{n}",
        "timestamp": at.isoformat() + "Z",
        "properties": {"order_id": f"{user}-{n}", "total": total},
    }


def buyers(db: Database, settings: Settings, customers: int = 40, *, seed: int = 2) -> list[str]:
    """Customers with BG/NBD-like histories over the last 40 weeks, sent through the real write path."""
    x, t_x, T = simulate_bgnbd(customers, 0.8, 4.0, 0.6, 3.0, seed=seed)
    rng = np.random.default_rng(seed)
    source = make_source(db, "shop")
    messages = []
    for i in range(customers):
        first = NOW - timedelta(weeks=float(T[i]))
        between = rng.uniform(0, t_x[i], max(int(x[i]) - 1, 0)).tolist()
        times = sorted([0.0, *between, *([t_x[i]] if x[i] else [])])
        for n, week in enumerate(times):
            messages.append(_order(f"buyer-{i}", first + timedelta(weeks=week), float(rng.gamma(4, 10)), n))
    send(db, settings, source, *messages)
    return [lookup_profile(db, "user_id", f"buyer-{i}") for i in range(customers)]


def clv_worker(db: Database, settings: Settings, clock: dict[str, datetime]) -> Worker:
    [daily] = [s for s in schedules_for(settings) if s.kind == "analytics.scores"]
    kinds = {"analytics.scores": handlers()["analytics.scores"]}
    return Worker(db, settings, clock=lambda: clock["at"], kinds=kinds, schedules=[daily])


def scores_named(db: Database, name: str) -> dict[str, ProfileScore]:
    with db.read() as session:
        return {
            s.profile_id: s for s in session.scalars(select(ProfileScore).where(ProfileScore.name == name))
        }


def test_the_daily_job_writes_clv_scores_from_the_timeline_and_replaces_them(
    db: Database, settings: Settings
) -> None:
    ids = buyers(db, settings)
    assert len({p.profile_id for p in read_purchases(db, until=NOW)}) == len(ids)
    clock = {"at": NOW}
    worker = clv_worker(db, settings, clock)
    [outcome] = worker.run_until_idle()
    assert (outcome.kind, outcome.status) == ("analytics.scores", DONE)
    [job] = list_jobs(db, kind="analytics.scores")
    assert job.dedupe_key == "analytics.scores:2026-06-01T04:00"

    clv, expected, alive = (scores_named(db, n) for n in (CLV_12M, EXPECTED_PURCHASES_12M, P_ALIVE))
    assert set(clv) == set(expected) == set(alive) == set(ids)
    assert all(s.value is not None and s.value >= 0 for s in clv.values())
    assert all(0 <= (s.value or 0) <= 1 for s in alive.values())
    assert clv[ids[0]].model == "bgnbd-gg-v1" and clv[ids[0]].computed_at == NOW
    assert clv[ids[0]].details["discount"] == 0.01

    # The next day's run replaces every row: one per customer and score (three CLV scores and five
    # portrait tags), never a second.
    clock["at"] = NOW + timedelta(days=1)
    assert [o.status for o in worker.run_until_idle()] == [DONE]
    again = scores_named(db, CLV_12M)
    assert set(again) == set(ids) and {s.computed_at for s in again.values()} == {clock["at"]}
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ProfileScore)) == (3 + 5) * len(ids)


def test_a_run_replaces_a_score_wholesale_and_too_few_buyers_change_nothing(
    db: Database, settings: Settings
) -> None:
    ids = buyers(db, settings, 25)
    replace_scores(db, [P_ALIVE], [Score(pid, P_ALIVE, 0.5) for pid in ids], model="test", now=NOW)
    replace_scores(db, [P_ALIVE], [Score(ids[0], P_ALIVE, 0.9)], model="test", now=NOW)
    assert {pid: s.value for pid, s in scores_named(db, P_ALIVE).items()} == {ids[0]: 0.9}
    with pytest.raises(ValueError, match="not among"):
        replace_scores(db, [P_ALIVE], [Score(ids[0], CLV_12M, 1.0)], model="test", now=NOW)
    with pytest.raises(NotEnoughPurchases):
        fit_bgnbd(np.zeros(5), np.zeros(5), np.ones(5))
    # Purchases under another event name: the rule finds none, nothing is fitted and the scores stay.
    rule = PurchaseRule(events=("Checkout Finished",))
    assert list(read_purchases(db, rule, until=NOW)) == []
    counts = refresh_scores(db, now=NOW, settings=ScoreSettings(purchases=rule))
    assert counts["clv_customers"] == 0 and counts["churn_customers"] == 0
    assert {pid: s.value for pid, s in scores_named(db, P_ALIVE).items()} == {ids[0]: 0.9}
    assert refresh_scores(db, now=NOW)["clv_customers"] == len(ids)
