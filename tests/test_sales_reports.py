"""Contact analysis reports: exact figures on a small hand-made data set, the data scope (an agent sees
their own, a manager their team's), the team filter, the REST API and the page with its exports (export
permission, audited). Real SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.test_sales_records import T0, Team
from tests.test_web_pages import sign_in
from threadline.analytics import InsightFilters
from threadline.config import Settings
from threadline.sales import sales_report
from threadline.storage import Database
from threadline.storage.models import AuditEntry, Deal, FollowUp, Lead, Pipeline, SalesAccount

# T0 is Monday 2026-05-04 09:00; the range is May 2026; "now" is just after it.
MAY = InsightFilters(date(2026, 5, 1), date(2026, 5, 31))
NOW = datetime(2026, 6, 1, 9, 0)
DAY = timedelta(days=1)


@pytest.fixture(name="team")
def team_fixture(db: Database) -> Team:
    return Team(db)


def build(team: Team) -> None:
    """Accounts A1-A4, follow-ups, leads and deals whose figures the tests below work out by hand."""
    a1, a2 = team.ids["agent1"], team.ids["agent2"]
    with team.db.write() as s:
        pipe = Pipeline(
            name="Sales",
            is_default=True,
            stages=[
                {"key": "prospecting", "name": "Prospecting", "probability": 10},
                {"key": "proposal", "name": "Proposal", "probability": 50},
            ],
        )
        s.add(pipe)

        def account(owner: int | None, at: datetime, **extra: Any) -> int:
            row = SalesAccount(
                name=f"A{at}",
                kind="company",
                owner_id=owner,
                custom={},
                created_at=at,
                updated_at=at,
                **extra,
            )
            s.add(row)
            s.flush()
            return row.id

        acc1 = account(a1, T0 - 40 * DAY, industry="Retail", level="A", last_follow_up_at=T0 - 20 * DAY)
        acc2 = account(a1, T0, industry="Retail", level="B")
        acc3 = account(a2, T0 + 8 * DAY, region="South")
        account(None, T0)  # the pool's: nobody's to forget
        for owner, method, at in [
            (a1, "phone", T0 + DAY),
            (a1, "phone", T0 + 2 * DAY),
            (a1, "email", T0 + 3 * DAY),
            (a2, "visit", T0 + DAY),
            (a1, "phone", T0 - 10 * DAY),  # before the range
        ]:
            s.add(
                FollowUp(
                    subject_type="account",
                    subject_id="1",
                    method=method,
                    content="x",
                    owner_id=owner,
                    created_at=at,
                    related={},
                )
            )
        for owner, at, converted in [
            (a1, T0, acc1),
            (a1, T0, acc2),
            (a1, T0, None),
            (a2, T0, None),
            (a1, T0 - 10 * DAY, acc1),  # before the range
        ]:
            s.add(
                Lead(
                    name="L",
                    status="converted" if converted else "new",
                    owner_id=owner,
                    custom={},
                    created_at=at,
                    updated_at=at,
                    converted_at=at + DAY if converted else None,
                    converted_account_id=converted,
                )
            )
        s.flush()
        for acc, owner, status, stage, amount, created, closed in [
            (acc1, a1, "won", "proposal", 100, T0, T0 + 10 * DAY),
            (acc2, a1, "open", "proposal", 1000, T0 + DAY, None),
            (acc3, a2, "open", "prospecting", 500, T0 + DAY, None),
            (acc1, a1, "won", "proposal", 200, T0 - 5 * DAY, T0 + 15 * DAY),
            (acc2, a1, "lost", "proposal", 50, T0, T0 + DAY),
            (acc3, a2, "won", "proposal", 10, T0 + DAY, T0 + 4 * DAY),
        ]:
            s.add(
                Deal(
                    name="D",
                    account_id=acc,
                    pipeline_id=pipe.id,
                    stage=stage,
                    amount=Decimal(amount),
                    status=status,
                    owner_id=owner,
                    products=[],
                    custom={},
                    created_at=created,
                    updated_at=created,
                    closed_at=closed,
                )
            )


def rows(team: Team, who: str, name: str, filters: InsightFilters = MAY, **options: Any) -> list[Any]:
    return sales_report(team.db, team.viewer(who), name, filters, now=NOW, **options).rows


def test_exact_figures_for_everyone(team: Team) -> None:
    build(team)
    assert rows(team, "admin", "new_customers") == [("2026-05", 3, 4)]
    assert rows(team, "admin", "new_customers", period="week") == [("2026-05-04", 2, 3), ("2026-05-11", 1, 4)]
    assert rows(team, "admin", "follow_ups_by_method") == [("phone", 2), ("email", 1), ("visit", 1)]
    assert rows(team, "admin", "follow_ups_by_employee") == [
        ("agent1@example.com", 3),
        ("agent2@example.com", 1),
    ]
    assert rows(team, "admin", "follow_ups_by_team") == [("North", 3), ("", 1)]
    assert rows(team, "admin", "conversion") == [
        ("leads", 4, 100.0, 100.0),
        ("customers", 2, 50.0, 50.0),
        ("won_deals", 1, 50.0, 25.0),
    ]
    assert rows(team, "admin", "funnel") == [
        ("Sales", "Prospecting", 10, 1, 500.0, 50.0),
        ("Sales", "Proposal", 50, 1, 1000.0, 500.0),
    ]
    assert rows(team, "admin", "deal_cycle") == [("won_deals", 3), ("mean_days", 11.0), ("median_days", 10.0)]
    assert rows(team, "admin", "portrait_by_industry") == [("", 2), ("Retail", 2)]
    assert rows(team, "admin", "portrait_by_level") == [("", 2), ("A", 1), ("B", 1)]
    assert rows(team, "admin", "portrait_by_region") == [("", 3), ("South", 1)]
    assert rows(team, "admin", "forgotten") == [(7, 3), (15, 3), (30, 1), (90, 0)]


def test_scope_and_the_team_filter(team: Team) -> None:
    build(team)
    (north_id,) = team.viewer("manager").team_ids
    north = InsightFilters(MAY.start, MAY.end, team_id=north_id)
    for who, filters in [("agent1", MAY), ("manager", MAY), ("admin", north), ("analyst", north)]:
        assert rows(team, who, "new_customers", filters) == [("2026-05", 1, 2)], who
        assert rows(team, who, "follow_ups_by_method", filters) == [("phone", 2), ("email", 1)], who
        assert rows(team, who, "conversion", filters) == [
            ("leads", 3, 100.0, 100.0),
            ("customers", 2, 66.7, 66.7),
            ("won_deals", 1, 50.0, 33.3),
        ]
        assert rows(team, who, "funnel", filters) == [
            ("Sales", "Prospecting", 10, 0, 0.0, 0.0),
            ("Sales", "Proposal", 50, 1, 1000.0, 500.0),
        ]
        assert rows(team, who, "deal_cycle", filters) == [
            ("won_deals", 2),
            ("mean_days", 15.0),
            ("median_days", 15.0),
        ]
        assert rows(team, who, "forgotten", filters) == [(7, 2), (15, 2), (30, 1), (90, 0)]
    assert rows(team, "agent2", "follow_ups_by_team") == [("", 1)]
    assert rows(team, "agent2", "portrait_by_region") == [("South", 1)]


def test_the_api_and_the_page_with_exports(settings: Settings, db: Database, team: Team) -> None:
    build(team)
    with (
        LiveServer(settings, db, clock=lambda: NOW) as live,
        httpx.Client(base_url=live.url) as http,
    ):
        query = {"start": "2026-05-01", "end": "2026-05-31"}
        answer = http.get("/api/v1/sales/reports/conversion", params=query, headers=team.bearer("agent2"))
        assert answer.status_code == 200
        assert answer.json()["report"]["rows"][0] == {
            "step": "leads",
            "count": 1,
            "rate": 100.0,
            "rate_of_leads": 100.0,
        }
        unknown = http.get("/api/v1/sales/reports/nope", headers=team.bearer("admin"))
        assert unknown.status_code == 400 and unknown.json()["error"]["details"]["field"] == "report"

        sign_in(http, "agent1@example.com")
        page = http.get("/sales/reports", params=query)
        assert page.status_code == 200 and "data-chart" in page.text and "/static/insight.js" in page.text
        assert "<script>" not in page.text
        assert "<th>Win probability</th>" in page.text  # headers read as words, not column names
        chinese = http.get("/sales/reports", params=query, headers={"Accept-Language": "zh-CN"})
        assert "<th>赢单率</th>" in chinese.text and "<th>probability</th>" not in chinese.text
        refused = http.get("/sales/reports", params=query | {"report": "funnel", "format": "csv"})
        assert refused.status_code == 403

    with (
        LiveServer(settings, db, clock=lambda: NOW) as live,
        httpx.Client(base_url=live.url) as http,
    ):
        sign_in(http, "manager@example.com")
        got = http.get("/sales/reports", params=query | {"report": "follow_ups_by_method", "format": "csv"})
        assert got.status_code == 200
        assert list(csv.reader(io.StringIO(got.text))) == [
            ["method", "follow_ups"],
            ["phone", "2"],
            ["email", "1"],
        ]
        book = http.get("/sales/reports", params=query | {"report": "funnel", "format": "xlsx"})
        assert book.status_code == 200 and book.content[:2] == b"PK"
    with db.read() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.object_type == "sales_report")))
    assert sorted((e.action, e.object_id, e.details["format"]) for e in entries) == [
        ("export", "follow_ups_by_method", "csv"),
        ("export", "funnel", "xlsx"),
    ]
