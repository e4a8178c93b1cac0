"""Churn risk: features see only the past, the model beats a trivial baseline on a time split of generated
histories, each score carries its main reasons, customers with too little history get none, the daily
job scores customers sent through the real write path, and the 360 panel and the REST API show the
scores within the data scope. Real SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score
from sqlalchemy import select

from tests.factories import lookup_profile, make_source, make_token, send
from tests.test_web_pages import sign_in
from threadline.accounts import viewer_for
from threadline.analytics import (
    CHURN_FEATURES,
    CHURN_RISK,
    CLV_12M,
    P_ALIVE,
    Activity,
    NotEnoughHistory,
    Purchase,
    Score,
    SurveyAnswer,
    churned,
    features_as_of,
    replace_scores,
    train_churn,
)
from threadline.analytics.synthetic import Histories, generate_histories
from threadline.config import Settings
from threadline.jobs import DONE, Worker, handlers
from threadline.privacy import search_audit
from threadline.profiles import assign_owner
from threadline.storage import Database
from threadline.storage.models import ProfileScore, User

H = 90
ELIGIBILITY = {"min_tenure_days": 30, "active_days": 365}


def test_features_see_only_the_past_and_skip_customers_with_too_little_history() -> None:
    now = datetime(2026, 6, 1)
    purchases = [
        Purchase("old", now - timedelta(days=200), 50.0),
        Purchase("old", now - timedelta(days=40), 30.0),
        Purchase("old", now + timedelta(days=5), 999.0),  # the future: invisible
        Purchase("new", now - timedelta(days=10), 20.0),  # a first purchase 10 days ago: too little
        Purchase("gone", now - timedelta(days=500), 20.0),  # nothing for over a year: already gone
    ]
    activity = [
        Activity("old", "web", "page", None, now - timedelta(days=3)),
        Activity("old", "call_center", "track", "Complaint Filed", now - timedelta(days=20)),
        Activity("old", "email", "track", "Email Opened", now - timedelta(days=60)),
        Activity("old", "app", "track", "Application Opened", now + timedelta(days=1)),
    ]
    surveys = [SurveyAnswer("old", now - timedelta(days=30), 0.3), SurveyAnswer("old", now, 0.1)]
    table = features_as_of(now, purchases, activity, surveys, **ELIGIBILITY)
    assert table.profile_ids == ["old"]
    row = dict(zip(CHURN_FEATURES, table.values[0], strict=True))
    assert row["days_since_last_purchase"] == 40 and row["purchases_365d"] == 2
    assert row["avg_order_value"] == 40 and row["tenure_days"] == 200
    assert row["days_since_last_activity"] == 3 and row["events_30d"] == 2 and row["page_views_30d"] == 1
    assert row["events_31_90d"] == 1 and row["email_engagement_90d"] == 1 and row["app_events_90d"] == 0
    assert row["complaints_90d"] == 1 and row["call_center_events_90d"] == 1
    assert row["low_survey_scores_180d"] == 1  # the answer at `now` is not before it
    assert list(churned(["old", "new"], purchases, start=now, horizon_days=H)) == [0, 1]


def split(histories: Histories) -> tuple[Any, Any, Any, Any]:
    """Train on features as of 180 days before the end, test on those as of 90 days before: later."""
    h = histories
    train_at, test_at = h.end - timedelta(days=2 * H), h.end - timedelta(days=H)
    train = features_as_of(train_at, h.purchases, h.activity, h.surveys, **ELIGIBILITY)
    test = features_as_of(test_at, h.purchases, h.activity, h.surveys, **ELIGIBILITY)
    return (
        train,
        churned(train.profile_ids, h.purchases, start=train_at, horizon_days=H),
        test,
        churned(test.profile_ids, h.purchases, start=test_at, horizon_days=H),
    )


def test_the_model_beats_a_trivial_baseline_on_a_later_period_and_explains_itself() -> None:
    train, y_train, test, y_test = split(generate_histories(1500, seed=3))
    model = train_churn(train, y_train)
    risk = model.risk(test.values)
    assert roc_auc_score(y_test, risk) > 0.7
    baseline = np.full(len(y_test), y_train.mean())  # everyone at the training churn rate: AUC 0.5
    assert brier_score_loss(y_test, risk) < 0.7 * brier_score_loss(y_test, baseline)
    # A model of noise learns nothing: labels shuffled, the same features, no better than the base rate.
    shuffled = np.random.default_rng(0).permutation(y_train)
    noise = train_churn(train, shuffled).risk(test.values)
    assert brier_score_loss(y_test, noise) > 0.98 * brier_score_loss(y_test, baseline)

    # Reasons are exact terms of the log-odds: intercept + every feature's term = the score's logit.
    scaled = model.scaler.transform(np.log1p(test.values))
    terms = scaled * model.classifier.coef_[0]
    logit = np.log(risk / (1 - risk))
    assert np.allclose(model.classifier.intercept_[0] + terms.sum(axis=1), logit)
    riskiest = int(np.argmax(risk))
    reasons = model.reasons(test.values)[riskiest]
    assert 1 <= len(reasons) <= 3 and all(r.contribution > 0 for r in reasons)
    assert [r.contribution for r in reasons] == sorted((r.contribution for r in reasons), reverse=True)
    assert reasons[0].contribution == pytest.approx(terms[riskiest].max(), abs=1e-3)


def test_too_few_customers_train_nothing() -> None:
    train, y_train, _, _ = split(generate_histories(30, seed=1))
    with pytest.raises(NotEnoughHistory):
        train_churn(train, y_train)


def _messages(h: Histories, sources: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The generated histories as the Segment messages each channel would send, per channel."""
    out: dict[str, list[dict[str, Any]]] = {channel: [] for channel in sources}

    def stamp(at: datetime) -> str:
        return at.isoformat(timespec="seconds") + "Z"

    for n, p in enumerate(h.purchases):
        out["web"].append(
            {
                "type": "track",
                "event": "Order Completed",
                "userId": p.profile_id,
                "messageId": f"o{n}",
                "timestamp": stamp(p.at),
                "properties": {"total": p.value},
            }
        )
    for n, s in enumerate(h.surveys):
        out["email"].append(
            {
                "type": "track",
                "event": "Survey Answered",
                "userId": s.profile_id,
                "messageId": f"s{n}",
                "timestamp": stamp(s.at),
                "properties": {"score": round(s.share * 10), "scale": 10},
            }
        )
    for n, a in enumerate(h.activity):
        if a.name == "Order Completed":
            continue  # sent above, with its amount
        message: dict[str, Any] = {"userId": a.profile_id, "messageId": f"a{n}", "timestamp": stamp(a.at)}
        if a.type == "page":
            message |= {"type": "page", "name": "Home"}
        else:
            message |= {"type": "track", "event": a.name, "properties": {}}
        out[a.channel].append(message)
    return out


def sent_histories(db: Database, settings: Settings, customers: int, seed: int) -> Histories:
    h = generate_histories(customers, days=360, seed=seed)
    sources = {c: make_source(db, f"syn-{c}", c) for c in ("web", "app", "email", "call_center")}
    for channel, messages in _messages(h, sources).items():
        for start in range(0, len(messages), 500):
            send(db, settings, sources[channel], *messages[start : start + 500])
    return h


def test_the_daily_job_scores_churn_with_reasons_and_skips_short_histories(
    db: Database, settings: Settings
) -> None:
    h = sent_histories(db, settings, 120, seed=21)
    now = h.end
    newcomer = {
        "type": "track",
        "event": "Order Completed",
        "userId": "newcomer",
        "timestamp": (now - timedelta(days=10)).isoformat() + "Z",
        "properties": {"total": 80},
    }
    send(db, settings, make_source(db, "shop"), newcomer)
    worker = Worker(
        db,
        settings,
        clock=lambda: now,
        kinds={"analytics.scores": handlers()["analytics.scores"]},
        schedules=[],
    )
    from threadline.jobs import enqueue

    enqueue(db, "analytics.scores", {}, now=now)
    [outcome] = worker.run_until_idle()
    assert outcome.status == DONE, outcome
    with db.read() as session:
        rows = session.scalars(select(ProfileScore).where(ProfileScore.name == CHURN_RISK)).all()
    expected = features_as_of(now, h.purchases, h.activity, h.surveys, **ELIGIBILITY).profile_ids
    live = {lookup_profile(db, "user_id", pid): pid for pid in expected}
    assert {r.profile_id for r in rows} == set(live)
    assert all(0 < (r.value or 0) < 1 for r in rows)
    assert all(r.details["horizon_days"] == H and r.model == "churn-logit-v1" for r in rows)
    assert any(r.details["reasons"] for r in rows)
    for row in rows:
        for reason in row.details["reasons"]:
            assert reason["feature"] in CHURN_FEATURES and reason["contribution"] > 0
    # A customer whose only purchase was ten days ago gets no risk rather than an invented one.
    assert lookup_profile(db, "user_id", "newcomer") not in {r.profile_id for r in rows}


class World:
    """Two agents with a customer each and an admin (as in test_scopes.py), each customer scored."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.tokens = {
            name: make_token(db, f"{name}@example.com", name.rstrip("0123456789"))
            for name in ("admin", "agent1", "agent2")
        }
        with db.read() as session:
            self.ids = {u.email.split("@")[0]: u.id for u in session.scalars(select(User))}
        source = make_source(db, "crm")
        self.customers = {}
        for n in (1, 2):
            send(db, settings, source, {"type": "identify", "userId": f"c{n}", "traits": {"name": f"C {n}"}})
            self.customers[n] = lookup_profile(db, "user_id", f"c{n}")
        admin = viewer_for(db, self.ids["admin"], "admin")
        assign_owner(db, admin, [self.customers[1]], self.ids["agent1"])
        assign_owner(db, admin, [self.customers[2]], self.ids["agent2"])
        at = datetime(2026, 6, 1, 4, 0)
        reasons = [
            {"feature": "days_since_last_purchase", "value": 120.0, "contribution": 0.9},
            {"feature": "complaints_90d", "value": 2.0, "contribution": 0.4},
        ]
        churn = [Score(self.customers[1], CHURN_RISK, 0.82, {"horizon_days": 90, "reasons": reasons})]
        replace_scores(db, [CHURN_RISK], churn, model="churn-logit-v1", now=at)
        clv = [Score(self.customers[n], CLV_12M, 123.45 * n) for n in (1, 2)]
        clv += [Score(self.customers[n], P_ALIVE, 0.6) for n in (1, 2)]
        replace_scores(db, [CLV_12M, P_ALIVE], clv, model="bgnbd-gg-v1", now=at)

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def test_rest_scores_within_the_data_scope(db: Database, settings: Settings, http: httpx.Client) -> None:
    world = World(db, settings)
    mine, theirs = world.customers[1], world.customers[2]
    read = http.get(f"/api/v1/profiles/{mine}/scores", headers=world.bearer("agent1"))
    assert read.status_code == 200
    body = read.json()
    assert body["profile_id"] == mine
    assert body["scores"][CHURN_RISK]["value"] == 0.82
    assert body["scores"][CHURN_RISK]["details"]["reasons"][0]["feature"] == "days_since_last_purchase"
    assert body["scores"][CLV_12M] == {
        "value": 123.45,
        "details": {},
        "computed_at": "2026-06-01T04:00:00Z",
        "model": "bgnbd-gg-v1",
    }
    assert http.get(f"/api/v1/profiles/{theirs}/scores", headers=world.bearer("agent1")).status_code == 404
    assert http.get(f"/api/v1/profiles/{mine}/scores").status_code == 401
    assert http.get(f"/api/v1/profiles/{theirs}/scores", headers=world.bearer("admin")).status_code == 200
    views = search_audit(db, user_email="agent1@example.com", action="view")
    assert [(e.object_id, e.details["via"]) for e in views] == [(mine, "api")]
    [denied] = search_audit(db, user_email="agent1@example.com", action="denied")
    assert denied.object_id == theirs and denied.details["out_of_scope"] is True


def test_the_360_panel_shows_value_risk_and_reasons_within_the_data_scope(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    world = World(db, settings)
    mine, theirs = world.customers[1], world.customers[2]
    sign_in(http, "agent1@example.com")
    page = http.get(f"/customers/{mine}")
    assert f'hx-get="/customers/{mine}/insight"' in page.text

    panel = http.get(f"/customers/{mine}/insight", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "<html" not in panel.text
    assert "123.45" in panel.text and "60%" in panel.text
    assert 'class="badge danger">82%' in panel.text
    assert "Days since the last purchase: 120" in panel.text and "Complaints in 90 days: 2" in panel.text
    assert http.get(f"/customers/{mine}/insight").text.startswith("<!doctype html>")  # without htmx
    assert http.get(f"/customers/{theirs}/insight").status_code == 404
    [denied] = search_audit(db, user_email="agent1@example.com", action="denied")
    assert denied.object_id == theirs

    http.cookies.clear()
    sign_in(http, "agent2@example.com")
    unscored = http.get(f"/customers/{theirs}/insight", headers={"HX-Request": "true"}).text
    assert "not estimated: too little purchase history" in unscored and "246.9" in unscored
