"""Insight: every dashboard metric, the consistency report and the portrait checked to the exact value on
a small hand-made shop (four customers, four channels), within the viewer's data scope, on both
databases; the pages' CSV/XLSX exports; the marketing-spend import.

The shop, March 2024 being the range:
- alice (since Oct 2023, gold, retail): orders web 100 (Feb 15), store 50 with a discount (Mar 5),
  web 70 (Mar 20), web 30 (Apr 2); NPS 10 (Mar 6) and 5 (Mar 25) on the web.
- bob (app, first seen Mar 2, silver, owned by the agent in team North): opens the app, views, orders
  200 (Mar 3); CSAT 2 (Mar 4); files a complaint (Mar 10).
- carol (email, first seen Mar 10): sent, opened (sentiment -0.5), CES 7, views on the web (Mar 15).
- dave (web, since Jan 5, level vip, owned by the agent): orders 80 (Feb 20), nothing in March.
"""

from __future__ import annotations

import io
import statistics
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send
from tests.test_web_pages import sign_in
from threadline.accounts import Viewer, create_team, create_user, set_user_team, viewer_for
from threadline.analytics.cohorts import churn_rate, retention_cohorts
from threadline.analytics.consistency import consistency_report
from threadline.analytics.funnels import funnel
from threadline.analytics.metrics import (
    cac_by_channel,
    customer_counts,
    customers_by_channel,
    engagement_by_channel,
    revenue_summary,
    survey_trends,
)
from threadline.analytics.portrait import portrait_distribution, portrait_of, trait_distribution
from threadline.analytics.scope import InsightFilters
from threadline.analytics.spend import import_spend
from threadline.config import Settings
from threadline.profiles import assign_owner
from threadline.storage import Database
from threadline.storage.models import Event, EventSentiment, MarketingSpend, ProfileScore

MARCH = InsightFilters(date(2024, 3, 1), date(2024, 3, 31))
NOW = datetime(2024, 4, 5)
_seq = iter(range(1_000_000))


def track(user: str, event: str, at: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": properties,
        "timestamp": at + "Z",
        "messageId": f"m{next(_seq)}",
    }


def identify(user: str, at: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user,
        "traits": traits,
        "timestamp": at + "Z",
        "messageId": f"m{next(_seq)}",
    }


@pytest.fixture
def shop(db: Database, settings: Settings) -> dict[str, Any]:
    web, app = make_source(db, "website", "web"), make_source(db, "app", "app")
    store, email = make_source(db, "pos", "store"), make_source(db, "newsletter", "email")
    send(
        db,
        settings,
        web,
        identify("alice", "2023-10-01T09:00:00", tier="gold", industry="retail", region="east"),
        track("alice", "Order Completed", "2024-02-15T10:00:00", revenue=100),
        track("alice", "Product Viewed", "2024-03-04T10:00:00"),
        track("alice", "Survey Answered", "2024-03-06T10:00:00", survey="nps", score=10),
        track("alice", "Order Completed", "2024-03-20T10:00:00", revenue=70),
        track("alice", "Survey Answered", "2024-03-25T10:00:00", survey="nps", score=5),
        track("alice", "Order Completed", "2024-04-02T10:00:00", revenue=30),
        track("carol", "Product Viewed", "2024-03-15T10:00:00"),
        identify("dave", "2024-01-05T09:00:00", level="vip"),
        track("dave", "Order Completed", "2024-02-20T10:00:00", revenue=80),
    )
    send(db, settings, store, track("alice", "Order Completed", "2024-03-05T10:00:00", total=50, discount=5))
    send(
        db,
        settings,
        app,
        identify("bob", "2024-03-02T10:00:00", tier="silver"),
        track("bob", "Application Opened", "2024-03-02T10:05:00"),
        track("bob", "Product Viewed", "2024-03-02T10:10:00"),
        track("bob", "Order Completed", "2024-03-03T10:00:00", revenue=200),
        track("bob", "Survey Answered", "2024-03-04T10:00:00", survey="csat", score=2),
        track("bob", "Complaint Filed", "2024-03-10T10:00:00"),
    )
    send(
        db,
        settings,
        email,
        identify("carol", "2024-03-10T08:00:00"),
        track("carol", "Email Sent", "2024-03-10T09:00:00"),
        track("carol", "Email Opened", "2024-03-11T09:00:00"),
        track("carol", "Survey Answered", "2024-03-12T09:00:00", survey="ces", score=7),
    )
    ids = {name: lookup_profile(db, "user_id", name) for name in ("alice", "bob", "carol", "dave")}
    make_token(db, "admin@example.com", "admin")
    agent = create_user(db, "agent@example.com", "agent", "correct horse battery", now=NOW)
    create_team(db, "North", now=NOW)
    set_user_team(db, "agent@example.com", "North")
    assign_owner(db, SYSTEM, [ids["bob"], ids["dave"]], agent.id)
    with db.write() as session:
        opened = session.scalar(select(Event.id).where(Event.name == "Email Opened"))
        assert opened is not None
        session.add(
            EventSentiment(
                event_id=opened, profile_id=ids["carol"], channel="email", language="en", score=-0.5,
                label="negative", scored_at=NOW,
            )
        )  # fmt: skip
        session.add(
            ProfileScore(
                profile_id=ids["bob"], name="clv_12m", value=250.0, details={}, computed_at=NOW, model="t"
            )
        )
        session.add(
            MarketingSpend(
                channel="app", campaign="", day=date(2024, 3, 1), amount=100.0, currency="USD", created_at=NOW
            )
        )
        session.add(
            MarketingSpend(
                channel="web", campaign="", day=date(2024, 3, 9), amount=300.0, currency="USD", created_at=NOW
            )
        )
        session.add(
            MarketingSpend(
                channel="web", campaign="", day=date(2024, 4, 9), amount=999.0, currency="USD", created_at=NOW
            )
        )
    return {"ids": ids, "agent": viewer_for(db, agent.id, "agent"), "team": _team_id(db)}


def _team_id(db: Database) -> int:
    from threadline.accounts import list_teams

    return next(t.id for t in list_teams(db) if t.name == "North")


def values(dataset: Any, key: str = "measure", value: str = "value") -> dict[Any, Any]:
    return {r[key]: r[value] for r in dataset.records()}


def test_customers_and_engagement(db: Database, shop: dict[str, Any]) -> None:
    assert values(customer_counts(db, SYSTEM, MARCH), value="customers") == {
        "total": 4,
        "new": 2,
        "active": 3,
    }
    assert values(customers_by_channel(db, SYSTEM, MARCH), "channel", "customers") == {
        "web": 2, "app": 1, "store": 1, "email": 1,
    }  # fmt: skip
    engagement = {r["channel"]: r for r in engagement_by_channel(db, SYSTEM, MARCH).records()}
    assert engagement["app"]["app_opens"] == 1 and engagement["app"]["sessions"] == 4
    assert engagement["app"]["events"] == 6  # the identify counts as an event too
    assert (engagement["email"]["emails_sent"], engagement["email"]["emails_opened"]) == (1, 1)
    assert engagement["web"]["sessions"] == 5  # alice on 4 days, carol on 1


def test_an_agent_counts_only_their_customers(db: Database, shop: dict[str, Any]) -> None:
    agent: Viewer = shop["agent"]
    assert values(customer_counts(db, agent, MARCH), value="customers") == {"total": 2, "new": 1, "active": 1}
    assert values(revenue_summary(db, agent, MARCH))["revenue"] == 200.0
    team = InsightFilters(MARCH.start, MARCH.end, team_id=shop["team"])
    assert values(customer_counts(db, SYSTEM, team), value="customers") == {"total": 2, "new": 1, "active": 1}


def test_a_segment_filter_counts_only_its_members(
    db: Database, settings: Settings, shop: dict[str, Any], http: httpx.Client
) -> None:
    """Members of "Tiered" (alice gold, bob silver) as they are now: every chart narrows to them, the
    pages offer the segment and an unknown one is refused naming the field."""
    from threadline.segments import create_segment, recompute

    tiered = create_segment(
        db, SYSTEM, name="Tiered", definition={"type": "trait", "key": "tier", "op": "exists"}, now=NOW
    )
    assert recompute(db, tiered.id, now=NOW, settings=settings).entered == 2
    march = InsightFilters(MARCH.start, MARCH.end, segment_id=tiered.id)
    counts = values(customer_counts(db, SYSTEM, march), value="customers")
    assert counts == {"total": 2, "new": 1, "active": 2}
    assert values(customers_by_channel(db, SYSTEM, march), "channel", "customers") == {
        "web": 1, "app": 1, "store": 1,
    }  # fmt: skip
    got = values(revenue_summary(db, SYSTEM, march))
    assert (got["revenue"], got["orders"], got["buyers"]) == (320.0, 3, 2)
    assert values(customer_counts(db, shop["agent"], march), value="customers") == {
        "total": 1, "new": 1, "active": 1,
    }  # fmt: skip  # the agent sees bob only
    assert churn_rate(db, SYSTEM, march).records()[0]["previous_buyers"] == 1  # alice; dave is not tiered

    sign_in(http)
    page = http.get(f"/insight?start=2024-03-01&end=2024-03-31&segment={tiered.id}")
    assert page.status_code == 200 and f'<option value="{tiered.id}" selected>Tiered</option>' in page.text
    exported = http.get(
        f"/insight?start=2024-03-01&end=2024-03-31&segment={tiered.id}&format=csv&chart=customers"
    )
    assert exported.text.splitlines()[1:] == ["total,2", "new,1", "active,2"]
    unknown = http.get("/insight?segment=999999")
    assert unknown.status_code == 400 and "segment: no segment 999999" in unknown.text
    assert http.get("/insight?segment=tiered").status_code == 400


def test_revenue_orders_aov_arpu_and_multi_channel_share(db: Database, shop: dict[str, Any]) -> None:
    got = values(revenue_summary(db, SYSTEM, MARCH))
    assert got["revenue"] == 320.0 and got["orders"] == 3 and got["buyers"] == 2
    assert got["average_order_value"] == pytest.approx(320 / 3)
    assert got["arpu"] == pytest.approx(320 / 3)  # three active customers
    assert got["multi_channel_buyer_share"] == 0.5  # alice bought on the web and in the store


def test_funnel_across_and_within_channels(db: Database, shop: dict[str, Any]) -> None:
    steps = ["Product Viewed", "Order Completed"]
    across = funnel(db, SYSTEM, MARCH, steps)
    assert [(r["channel"], r["customers"]) for r in across.records()] == [("all", 3), ("all", 2)]
    within = {
        (r["channel"], r["step"]): r["customers"]
        for r in funnel(db, SYSTEM, MARCH, steps, by_channel=True).records()
    }
    assert within == {("app", 1): 1, ("app", 2): 1, ("web", 1): 2, ("web", 2): 1}


def test_cohorts_and_churn(db: Database, shop: dict[str, Any]) -> None:
    feb_mar = InsightFilters(date(2024, 2, 1), date(2024, 3, 31))
    cells = {
        (r["cohort"], r["months_since_first_order"]): r["customers"]
        for r in retention_cohorts(db, SYSTEM, feb_mar).records()
    }
    assert cells == {("2024-02", 0): 2, ("2024-02", 1): 1, ("2024-02", 2): 1, ("2024-03", 0): 1}
    churn = churn_rate(db, SYSTEM, MARCH).records()[0]
    assert (churn["previous_buyers"], churn["churned"], churn["churn_rate"]) == (2, 1, 0.5)  # dave left


def test_cac_and_clv_to_cac(db: Database, shop: dict[str, Any]) -> None:
    rows = {r["channel"]: r for r in cac_by_channel(db, SYSTEM, MARCH).records()}
    assert rows["app"]["spend"] == 100.0 and rows["app"]["new_customers"] == 1 and rows["app"]["cac"] == 100.0
    assert rows["app"]["clv_to_cac"] == 2.5
    assert rows["web"]["spend"] == 300.0 and rows["web"]["cac"] is None  # spent, acquired nobody
    assert rows["email"]["new_customers"] == 1 and rows["email"]["cac"] is None


def test_survey_trends(db: Database, shop: dict[str, Any]) -> None:
    got = {r["survey"]: (r["responses"], r["value"]) for r in survey_trends(db, SYSTEM, MARCH).records()}
    assert got == {"nps": (2, 0.0), "csat": (1, 0.0), "ces": (1, 7.0)}


def test_consistency_spread_and_weakest_link(db: Database, shop: dict[str, Any]) -> None:
    report = consistency_report(db, SYSTEM, MARCH, min_observations=1)
    assert report.sources == {"survey": 4, "sentiment": 1, "complaint": 1}
    channels = report.breakdowns["channel"]
    assert values(channels.groups, "group", "experience") == {"web": 75.0, "app": 12.5, "email": 62.5}
    assert channels.spread_range == 62.5
    assert channels.spread_stddev == pytest.approx(statistics.pstdev([75.0, 12.5, 62.5]))
    ages = values(report.breakdowns["customer_age"].groups, "group", "experience")
    assert ages == {"long-standing": 75.0, "new": 37.5}
    assert values(report.breakdowns["team"].groups, "group", "experience") == {
        "North": 12.5,
        "no team": 68.75,
    }
    assert report.weakest_link == ("channel", "app", 12.5)
    # With too few observations a group is shown but not blamed.
    assert consistency_report(db, SYSTEM, MARCH).weakest_link is None


def test_portrait_tags_and_distributions(db: Database, shop: dict[str, Any]) -> None:
    ids = shop["ids"]
    as_of = datetime(2024, 4, 1)
    assert portrait_of(db, SYSTEM, ids["alice"], as_of=as_of) == {
        "favourite_channel": "web", "price_sensitivity": "medium", "purchase_frequency": "occasional",
        "value_tier": "medium", "lifecycle_stage": "active",
    }  # fmt: skip
    assert portrait_of(db, SYSTEM, ids["carol"], as_of=as_of) == {
        "favourite_channel": "email", "price_sensitivity": "unknown", "purchase_frequency": "none",
        "value_tier": "none", "lifecycle_stage": "new",
    }  # fmt: skip
    assert portrait_of(db, shop["agent"], ids["alice"], as_of=as_of) is None
    tags = portrait_distribution(db, SYSTEM, MARCH)
    assert values(tags["favourite_channel"], "value", "customers") == {"web": 2, "app": 1, "email": 1}
    assert values(tags["lifecycle_stage"], "value", "customers") == {"new": 2, "active": 2}
    assert values(trait_distribution(db, SYSTEM, MARCH, "tier"), "tier", "customers") == {
        "gold": 1, "silver": 1, "vip": 1, "unknown": 1,
    }  # fmt: skip
    assert values(trait_distribution(db, SYSTEM, MARCH, "source"), "source", "customers") == {
        "website": 2, "app": 1, "newsletter": 1,
    }  # fmt: skip


def test_spend_import_keeps_good_rows_and_names_the_bad_column(db: Database, tmp_path: Path) -> None:
    file = tmp_path / "spend.csv"
    file.write_text("Date,Channel,Campaign,Cost,Currency\n2024-03-01,web,spring,120.50,USD\n2024-03-02,web,spring,-5,USD\n"
                    "2024-03-02,social,,40,usd\n")  # fmt: skip
    report = import_spend(db, file, now=NOW)
    assert report.stored == 2 and [(r.line, r.column) for r in report.rejected] == [(3, "amount")]
    book = Workbook()
    book.active.append(["channel", "day", "amount", "currency"])
    book.active.append(["web", datetime(2024, 3, 1), 99, "USD"])
    book.active.append(["web", "1 March", 1, "USD"])
    xlsx = tmp_path / "spend.xlsx"
    book.save(xlsx)
    again = import_spend(db, xlsx, now=NOW)
    assert again.stored == 1 and [(r.line, r.column) for r in again.rejected] == [(3, "day")]
    with db.read() as session:
        amounts = sorted(session.scalars(select(MarketingSpend.amount)))
    assert amounts == [40.0, 99.0, 120.5]


def test_pages_draw_every_chart_and_export_it(http: httpx.Client, shop: dict[str, Any]) -> None:
    sign_in(http)
    march = "start=2024-03-01&end=2024-03-31"
    page = http.get(f"/insight?{march}")
    assert page.status_code == 200 and page.text.count("data-chart=") >= 5
    assert "no service conversations were opened in these dates" in page.text.lower()
    exported = http.get(f"/insight?{march}&format=csv&chart=revenue")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "revenue,320.0" in exported.text and "orders,3" in exported.text
    xlsx = http.get(f"/insight/funnel?{march}&steps=Product+Viewed,Order+Completed&format=xlsx&chart=funnel")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in sheet[1]][:4] == ["channel", "step", "event", "customers"]
    assert [c.value for c in sheet[3]][:4] == ["all", 2, "Order Completed", 2]
    for path in ("/insight/cohorts", "/insight/consistency", "/insight/portrait"):
        assert http.get(f"{path}?{march}").status_code == 200, path
    assert http.get("/insight?start=someday").status_code == 400
    assert http.get(f"/insight?{march}&format=csv&chart=nothing").status_code == 404


def test_an_agents_dashboard_and_the_api_keep_to_their_data_scope(
    http: httpx.Client, shop: dict[str, Any], db: Database
) -> None:
    sign_in(http, "agent@example.com")
    exported = http.get("/insight?start=2024-03-01&end=2024-03-31&format=csv&chart=customers")
    assert exported.text.splitlines()[1:] == ["total,2", "new,1", "active,1"]
    from threadline.accounts import create_token

    token = create_token(db, "agent@example.com", now=NOW)
    answer = http.get(
        "/api/v1/insight/overview",
        params={"start": "2024-03-01", "end": "2024-03-31"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    assert answer.json()["charts"]["customers"]["rows"][0] == {"measure": "total", "customers": 2}
    assert (
        http.get("/api/v1/insight/nowhere", headers={"Authorization": f"Bearer {token}"}).status_code == 404
    )


def test_stored_portrait_tags_feed_segments_and_the_360_panel(
    http: httpx.Client, db: Database, shop: dict[str, Any]
) -> None:
    """The daily scores run stores each customer's tags; a segment's `portrait` condition reads them, and
    the 360 panel shows the customer's tags (as of now) within the viewer's data scope."""
    from threadline.analytics.portrait import TAGS
    from threadline.analytics.score_runs import refresh_scores
    from threadline.segments import PORTRAIT_TAGS, InvalidDefinition, preview

    assert PORTRAIT_TAGS == TAGS  # the segments package keeps its own copy of the tag names
    ids = shop["ids"]
    counts = refresh_scores(db, now=datetime(2024, 4, 1))
    assert counts["portrait_customers"] == 4
    active = {"type": "portrait", "tag": "lifecycle_stage", "op": "eq", "value": "active"}
    count, sample = preview(db, SYSTEM, active, 50, now=datetime(2024, 4, 1))
    assert count == 2 and ids["alice"] in {row["id"] for row in sample}
    count, _ = preview(db, SYSTEM, {**active, "op": "neq"}, 50, now=datetime(2024, 4, 1))
    assert count == 2  # the two new customers
    email_fans = {"type": "portrait", "tag": "favourite_channel", "op": "in", "value": ["email", "app"]}
    assert preview(db, SYSTEM, email_fans, 50, now=datetime(2024, 4, 1))[0] == 2
    with pytest.raises(InvalidDefinition) as bad:
        preview(db, SYSTEM, {**active, "tag": "mood"}, 50, now=datetime(2024, 4, 1))
    assert bad.value.field == "definition.tag"

    sign_in(http)
    panel = http.get(f"/customers/{ids['alice']}/insight", headers={"HX-Request": "true"}).text
    assert 'data-portrait="favourite_channel">Favourite channel: <strong>web</strong>' in panel
    assert 'data-portrait="lifecycle_stage"' in panel
    http.cookies.clear()
    sign_in(http, "agent@example.com")
    assert http.get(f"/customers/{ids['alice']}/insight").status_code == 404
