"""Service metrics on hand-made conversations: first response and resolution times (wall-clock and
business), first-contact resolution, reopen rate, backlog, CSAT/CES/NPS, per channel and agent, within
the viewer's data scope; the REST API, its CSV and the page. Real SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import httpx
import pytest

from tests.factories import SYSTEM, lookup_profile, make_source, make_token, send
from tests.test_web_pages import sign_in
from threadline.accounts import user_by_email, viewer_for
from threadline.config import Settings
from threadline.profiles import assign_owner
from threadline.service import MetricsQuery, create_policy, service_metrics
from threadline.storage import Database
from threadline.storage.models import Conversation, ConversationMessage, SurveyResponse

MONDAY = datetime(2026, 3, 2, 9, 0)
NOW = datetime(2026, 3, 9, 12, 0)
SHANGHAI = {
    "timezone": "Asia/Shanghai",
    "hours": {d: ["09:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
}
PERIOD = MetricsQuery(datetime(2026, 3, 1), datetime(2026, 3, 15))


def customer(db: Database, settings: Settings, user_id: str) -> str:
    send(db, settings, make_source(db, f"s-{user_id}"), {"type": "identify", "userId": user_id, "traits": {}})
    return lookup_profile(db, "user_id", user_id)


def conversation(
    db: Database,
    profile_id: str,
    *,
    channel: str,
    created: datetime,
    first_response: timedelta | None = None,
    resolved: timedelta | None = None,
    replies: int = 0,
    reopened: int = 0,
    assignee_id: int | None = None,
    policy_id: int | None = None,
) -> int:
    with db.write() as session:
        row = Conversation(
            profile_id=profile_id,
            channel=channel,
            status="resolved" if resolved else "open",
            priority="normal",
            assignee_id=assignee_id,
            tags=[],
            created_at=created,
            updated_at=created,
            last_message_at=created,
            first_response_at=created + first_response if first_response else None,
            resolved_at=created + resolved if resolved else None,
            reopened=reopened,
            sla_policy_id=policy_id,
            sla_state="ok",
        )
        session.add(row)
        session.flush()
        for n in range(replies):
            session.add(
                ConversationMessage(
                    conversation_id=row.id,
                    direction="out",
                    body_text="reply",
                    created_at=created + timedelta(minutes=n),
                )
            )
        session.add(
            ConversationMessage(conversation_id=row.id, direction="in", body_text="hi", created_at=created)
        )
        return row.id


def survey(db: Database, profile_id: str, kind: str, score: int, conversation_id: int | None = None) -> None:
    with db.write() as session:
        session.add(
            SurveyResponse(
                profile_id=profile_id,
                conversation_id=conversation_id,
                kind=kind,
                channel="email",
                token_hash=f"{kind}-{score}-{conversation_id}-{profile_id}".ljust(64, "0")[:64],
                sent_at=MONDAY,
                answered_at=MONDAY + timedelta(days=1),
                score=score,
            )
        )


@pytest.fixture
def desk(db: Database, settings: Settings) -> dict[str, int]:
    make_token(db, "ann@example.com", "agent")
    make_token(db, "admin@example.com", "admin")
    ann = user_by_email(db, "ann@example.com")
    assert ann is not None
    mine, other = customer(db, settings, "u-mine"), customer(db, settings, "u-other")
    assign_owner(db, SYSTEM, [mine], ann.id)
    policy = create_policy(
        db,
        {"name": "Shanghai", "first_response_minutes": 60, "resolution_minutes": 600, "calendar": SHANGHAI},
    )
    c1 = conversation(
        db,
        mine,
        channel="email",
        created=MONDAY,
        first_response=timedelta(minutes=30),
        resolved=timedelta(hours=2),
        replies=1,
        assignee_id=ann.id,
    )
    # Opened at 18:00 in Shanghai and answered at 19:30: 90 minutes, none of them business minutes.
    c2 = conversation(
        db,
        mine,
        channel="email",
        created=MONDAY + timedelta(hours=1),
        first_response=timedelta(minutes=90),
        resolved=timedelta(days=1),
        replies=2,
        assignee_id=ann.id,
        policy_id=policy.id,
    )
    c3 = conversation(
        db,
        other,
        channel="chat",
        created=MONDAY + timedelta(days=1),
        first_response=timedelta(minutes=10),
        resolved=timedelta(minutes=40),
        replies=1,
        reopened=1,
    )
    conversation(db, other, channel="chat", created=NOW - timedelta(days=5))  # open: the backlog
    conversation(db, mine, channel="email", created=NOW - timedelta(hours=3))
    survey(db, mine, "csat", 5, c1)
    survey(db, mine, "csat", 2, c2)
    survey(db, other, "ces", 6, c3)
    survey(db, mine, "nps", 10)
    survey(db, other, "nps", 3)
    return {"ann": ann.id}


def test_the_numbers_on_hand_made_conversations(db: Database, desk: dict[str, int]) -> None:
    report = service_metrics(db, SYSTEM, PERIOD, now=NOW)
    o = report.overall
    assert o["conversations"] == 5
    assert o["first_response_median_minutes"] == 30  # 10, 30, 90
    assert o["resolution_median_minutes"] == 120  # 40, 120, 1440
    assert o["resolved"] == 3
    assert o["first_contact_resolution"] == pytest.approx(33.3)  # c1 only: c2 took two replies, c3 reopened
    assert o["reopen_rate"] == pytest.approx(33.3)
    assert o["csat"] == 50 and o["csat_answers"] == 2
    assert o["ces"] == 6
    assert o["nps"] == 0 and o["nps_answers"] == 2  # one promoter, one detractor

    email = next(g for g in report.groups if g["key"] == "email")
    assert email["first_response_median_minutes"] == 60  # 30 and 90
    assert email["first_response_business_median_minutes"] == 15  # 30 and 0
    assert email["csat"] == 50
    backlog = {b["key"]: b for b in report.backlog}
    assert backlog["chat"]["3_7d"] == 1 and backlog["email"]["under_1d"] == 1
    assert report.periods[:2] == ["2026-02-23", "2026-03-02"]
    assert report.series["email"]["2026-03-02"]["conversations"] == 2


def test_by_agent_and_within_the_viewers_data_scope(db: Database, desk: dict[str, int]) -> None:
    by_agent = service_metrics(db, SYSTEM, MetricsQuery(PERIOD.start, PERIOD.end, by="agent"), now=NOW)
    labels = {g["key"]: (g["label"], g["conversations"]) for g in by_agent.groups}
    assert labels[str(desk["ann"])] == ("ann@example.com", 2) and labels["none"][1] == 3
    # Ann (an agent: her own customers) sees her customer's conversations only.
    ann = viewer_for(db, desk["ann"], "agent")
    mine = service_metrics(db, ann, PERIOD, now=NOW)
    assert mine.overall["conversations"] == 3 and mine.overall["nps_answers"] == 1
    assert [g["key"] for g in mine.groups] == ["email"]


def test_rest_csv_and_page(db: Database, desk: dict[str, int], http: httpx.Client) -> None:
    admin = {"Authorization": f"Bearer {make_token(db, 'boss@example.com', 'admin')}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'bo@example.com', 'agent')}"}
    params = {"start": "2026-03-01", "end": "2026-03-15"}
    shown = http.get("/api/v1/service/metrics", params=params, headers=admin).json()
    assert shown["overall"]["conversations"] == 5
    exported = http.get("/api/v1/service/metrics", params={**params, "format": "csv"}, headers=admin)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    overall = next(r for r in rows if r["channel"] == "all")
    assert overall["conversations"] == "5" and overall["first_contact_resolution"] == "33.3"
    assert (
        http.get("/api/v1/service/metrics", params={**params, "format": "csv"}, headers=agent).status_code
        == 403
    )
    assert http.get("/api/v1/service/metrics", params={"by": "nobody"}, headers=admin).status_code == 400

    sign_in(http)
    page = http.get("/service/metrics", params=params)
    assert page.status_code == 200 and 'data-group="email"' in page.text and "data-chart=" in page.text
    assert "<script>" not in page.text  # charts come from a static file (CSP script-src 'self')
    assert http.get("/service/metrics.csv", params=params).text.startswith("channel,label,period")


def test_the_insight_dashboard_shows_the_same_service_figures(db: Database, desk: dict[str, int]) -> None:
    """Insight's "First response and resolution time" chart reads these metrics: the same numbers."""
    from datetime import date

    from threadline.analytics.metrics import service_times
    from threadline.analytics.scope import InsightFilters

    march = InsightFilters(date(2026, 3, 1), date(2026, 3, 14))
    chart = service_times(db, SYSTEM, march)
    rows = {r["channel"]: r for r in chart.records()}
    assert rows["all"]["conversations"] == 5 and rows["all"]["first_response_minutes"] == 30
    assert rows["all"]["resolution_hours"] == 2.0 and rows["all"][
        "first_contact_resolution"
    ] == pytest.approx(33.3)
    assert rows["email"]["first_response_minutes"] == 60
    only_chat = service_times(db, SYSTEM, InsightFilters(march.start, march.end, channel="chat"))
    assert [r["channel"] for r in only_chat.records()] == ["chat"]
    empty = service_times(db, SYSTEM, InsightFilters(date(2025, 1, 1), date(2025, 1, 31)))
    assert empty.rows == [] and empty.note
