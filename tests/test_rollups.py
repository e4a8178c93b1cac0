"""The dashboards' daily rollups give exactly the live queries' figures: every chart they answer, for
several ranges and a channel filter, after a full build, with events waiting after the rollups (the
tail), after a merge of two customers the rollups counted apart, and after an erasure. On both databases.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.factories import SYSTEM, lookup_profile, make_source, send
from tests.test_insight import NOW, identify, shop, track  # noqa: F401  (the shop fixture)
from threadline.analytics import rollup_reads
from threadline.analytics.cohorts import retention_cohorts
from threadline.analytics.dashboards import OVERVIEW
from threadline.analytics.dataset import Dataset
from threadline.analytics.funnels import funnel
from threadline.analytics.metrics import cac_by_channel, customer_counts, service_times
from threadline.analytics.rollups import refresh_rollups, reset_rollups
from threadline.analytics.scope import InsightFilters
from threadline.config import Settings
from threadline.storage import Database
from threadline.storage.models import Merge, Profile, RollupDay, RollupEventTimes, RollupProfile


def viewed_then_ordered(db: Database, viewer: Any, filters: InsightFilters) -> Dataset:
    return funnel(db, viewer, filters, ["Product Viewed", "Order Completed", "Order Completed"])


def ordered_then_answered_by_channel(db: Database, viewer: Any, filters: InsightFilters) -> Dataset:
    steps = ["Order Completed", "Survey Answered", "Product Viewed"]
    return funnel(db, viewer, filters, steps, by_channel=True)


# Every overview chart but those reading other tables (CAC: profiles by first sight; service: conversations).
CHARTS: tuple[Callable[..., Dataset], ...] = (
    *(chart for chart in OVERVIEW if chart not in (cac_by_channel, service_times)),
    retention_cohorts,
    viewed_then_ordered,
    ordered_then_answered_by_channel,
)
RANGES = (
    InsightFilters(date(2024, 3, 1), date(2024, 3, 31)),
    InsightFilters(date(2024, 3, 1), date(2024, 3, 31), channel="web"),
    InsightFilters(date(2024, 1, 1), date(2024, 4, 30)),
    InsightFilters(date(2024, 3, 5), date(2024, 3, 5)),
)


def _figures(db: Database) -> list[list[tuple[Any, ...]]]:
    return [[tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in chart(db, SYSTEM, f).rows]
            for f in RANGES for chart in CHARTS]  # fmt: skip


def _live(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[Any, ...]]]:
    with monkeypatch.context() as patched:
        patched.setattr(rollup_reads, "TAIL_LIMIT", -1)  # every read "too far behind": live queries
        return _figures(db)


def _answered_by_rollups(db: Database) -> bool:
    return (
        rollup_reads.rollup_view(db, SYSTEM, RANGES[0], since=date(2024, 3, 1), until=date(2024, 4, 1))
        is not None
    )


@pytest.mark.usefixtures("shop")
def test_rollups_give_the_live_figures(
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live = _live(db, monkeypatch)
    assert not _answered_by_rollups(db)  # never built: the charts read the events
    run = refresh_rollups(db, now=NOW, settled=True)
    assert run.events > 0 and run.behind == 0 and _answered_by_rollups(db)
    with db.read() as session:
        assert session.query(RollupDay).count() > 0 and session.query(RollupEventTimes).count() > 0
    assert _figures(db) == live
    assert [r for r in live[0]] == [("total", 4), ("new", 2), ("active", 3)]  # the shop's figures
    # A page's charts share their rollup reads and give the same rows as each chart alone.
    from threadline.analytics.dashboards import page_datasets

    page = page_datasets(db, SYSTEM, "overview", RANGES[0], {})
    assert [page[c(db, SYSTEM, RANGES[0]).name].rows for c in OVERVIEW] == [
        c(db, SYSTEM, RANGES[0]).rows for c in OVERVIEW
    ]

    # Events after the rollups (the tail), on a new customer and on known ones, count at once.
    web = make_source(db, "website-2", "web")
    send(
        db, settings, web,
        track("erin", "Order Completed", "2024-03-07T12:00:00", revenue=40),
        track("alice", "Order Completed", "2024-03-08T12:00:00", revenue=15, currency="USD"),
        track("erin", "Survey Answered", "2024-03-07T13:00:00", survey="NPS", score=9),
        track("erin", "Survey Answered", "2024-03-07T13:05:00", survey="csat", score=9),  # off its scale
        {"type": "track", "anonymousId": "visitor-1", "event": "Product Viewed",
         "timestamp": "2024-03-09T12:00:00Z", "messageId": "v1"},
    )  # fmt: skip
    assert _answered_by_rollups(db) and _figures(db) == _live(db, monkeypatch)
    refresh_rollups(db, now=NOW, settled=True)

    # A merge after the rollups: the visitor turns out to be bob; one customer from now on.
    send(db, settings, web, {"type": "identify", "userId": "bob", "anonymousId": "visitor-1",
                             "timestamp": "2024-03-09T12:05:00Z", "messageId": "v2"})  # fmt: skip
    with db.read() as session:
        assert session.scalar(select(Profile.merged_into).where(Profile.merged_into.is_not(None))) is not None
    assert _figures(db) == _live(db, monkeypatch)  # the merge made since the worker's map
    assert refresh_rollups(db, now=NOW, settled=True).remapped == 1
    assert _figures(db) == _live(db, monkeypatch)  # the worker's map

    # Undone: the visitor is someone else again (the reader sees the worker's map no longer holds).
    from threadline.identity import unmerge

    with db.read() as session:
        merge_id = session.scalar(select(Merge.id).where(Merge.status == "merged"))
    assert merge_id is not None
    unmerge(db, merge_id, actor_user_id=None, now=NOW, settings=settings)
    assert _figures(db) == _live(db, monkeypatch)
    assert refresh_rollups(db, now=NOW, settled=True).remapped == 1
    assert _figures(db) == _live(db, monkeypatch)

    # A rebuild from nothing gives the same figures again.
    reset_rollups(db, now=NOW)
    assert not _answered_by_rollups(db)
    refresh_rollups(db, now=NOW, settled=True)
    assert _figures(db) == _live(db, monkeypatch)


@pytest.mark.usefixtures("shop")
def test_erasure_cuts_the_link_from_a_number_to_the_customer(
    db: Database,
    settings: Settings,
) -> None:
    from threadline.privacy import erase_person

    refresh_rollups(db, now=NOW, settled=True)
    carol = lookup_profile(db, "user_id", "carol")
    with db.read() as session:
        assert session.scalar(select(RollupProfile.number).where(RollupProfile.profile_id == carol))
    erase_person(db, settings, carol, now=NOW)
    with db.read() as session:
        assert session.scalar(select(RollupProfile.number).where(RollupProfile.profile_id == carol)) is None
        assert session.scalar(select(RollupProfile.number).where(RollupProfile.profile_id.is_(None)))
    assert customer_counts(db, SYSTEM, RANGES[0]).rows[2] == ("active", 3)  # her events still count once


@pytest.mark.usefixtures("shop")
def test_the_command_catches_up_and_rebuilds(
    db: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from threadline.cli.main import app
    from threadline.config import get_settings

    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(app, ["analytics", "rollups"])
        assert first.exit_code == 0, first.output
        assert "21 events added to the rollups" in first.output and "0 arrived since" in first.output
        again = CliRunner().invoke(app, ["analytics", "rollups"])
        assert "0 events added" in again.output
        rebuilt = CliRunner().invoke(app, ["analytics", "rollups", "--rebuild"])
        assert "21 events added" in rebuilt.output
    finally:
        get_settings.cache_clear()
    assert _answered_by_rollups(db)


@pytest.mark.usefixtures("shop")
def test_the_daily_portrait_snapshot_is_the_live_page_of_its_moment(db: Database, http: httpx.Client) -> None:
    """The scores run stores the portrait page for every customer; an admin's unfiltered page of that
    day reads it (noting when), any other view computes live, and both agree at the run's moment."""
    from tests.test_web_pages import sign_in
    from threadline.analytics.dashboards import page_datasets
    from threadline.analytics.portrait_snapshots import portrait_datasets
    from threadline.analytics.score_runs import refresh_scores

    run = datetime(2024, 3, 31, 4, 0)
    assert refresh_scores(db, now=run)["portrait_charts"] == 50  # every channel, then each of 4
    that_day = InsightFilters(date(2024, 3, 1), date(2024, 3, 31))
    stored = page_datasets(db, SYSTEM, "portrait", that_day, {})
    live = portrait_datasets(db, SYSTEM, that_day, until=run)
    assert {n: d.rows for n, d in stored.items()} == {n: [tuple(r) for r in d.rows] for n, d in live.items()}
    assert all(d.note == "as of 2024-03-31 04:00 UTC (the daily scores run)" for d in stored.values())
    assert sum(n for _, n in stored["portrait_lifecycle_stage"].rows) == 4
    sign_in(http)
    page = http.get("/insight/portrait?start=2024-03-01&end=2024-03-31")
    assert "Every customer as of 2024-03-31 04:00 UTC" in page.text
    assert "Every customer as of" not in http.get("/insight/portrait?start=2024-03-01&end=2024-03-30").text
    web = InsightFilters(date(2024, 3, 1), date(2024, 3, 31), channel="web")
    on_web = page_datasets(db, SYSTEM, "portrait", web, {})
    assert {n: d.rows for n, d in on_web.items()} == {
        n: [tuple(r) for r in d.rows] for n, d in portrait_datasets(db, SYSTEM, web, until=run).items()
    }
    assert all(d.note for d in on_web.values())
    # Another day or a team filter: live, no note.
    for filters in (
        InsightFilters(date(2024, 3, 1), date(2024, 3, 30)),
        InsightFilters(date(2024, 3, 1), date(2024, 3, 31), team_id=1),
    ):
        assert all(d.note is None for d in page_datasets(db, SYSTEM, "portrait", filters, {}).values())


NEW_CUSTOMER_VIEWS = (
    InsightFilters(date(2024, 3, 1), date(2024, 3, 31)),
    InsightFilters(date(2024, 3, 1), date(2024, 3, 31), channel="web"),
    InsightFilters(date(2024, 3, 1), date(2024, 3, 31), channel="app"),
    InsightFilters(date(2024, 1, 1), date(2024, 4, 5), channel="email"),
    InsightFilters(date(2024, 4, 5), date(2024, 4, 5), channel="web"),  # the run's day: live (but total)
)


def _new_customer_figures(db: Database) -> list[list[tuple[Any, ...]]]:
    return [[tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in chart(db, SYSTEM, f).rows]
            for f in NEW_CUSTOMER_VIEWS for chart in (cac_by_channel, customer_counts)]  # fmt: skip


def _live_new_customers(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[Any, ...]]]:
    from threadline.analytics import first_seen

    with monkeypatch.context() as patched:
        patched.setattr(first_seen, "snapshot_time", lambda *args: None)
        return _new_customer_figures(db)


@pytest.mark.usefixtures("shop")
def test_new_customers_from_the_daily_snapshot_are_the_live_figures(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch, http: httpx.Client
) -> None:
    """CAC's acquired customers and CLV, and customer counts with a channel filter, add the stored days
    before the scores run's day and count the days from it live; what changed since for customers first
    seen earlier shows after the next run, and the chart says "as of" when it used the stored days."""
    from tests.test_web_pages import sign_in
    from threadline.analytics.first_seen import store_first_seen

    live = _live_new_customers(db, monkeypatch)
    assert _new_customer_figures(db) == live  # nothing stored yet: live
    assert cac_by_channel(db, SYSTEM, NEW_CUSTOMER_VIEWS[0]).as_of is None
    run = datetime(2024, 4, 5, 3, 0)
    assert store_first_seen(db, now=run) > 0
    assert _new_customer_figures(db) == live
    assert cac_by_channel(db, SYSTEM, NEW_CUSTOMER_VIEWS[0]).as_of == run
    assert customer_counts(db, SYSTEM, NEW_CUSTOMER_VIEWS[1]).as_of == run
    assert customer_counts(db, SYSTEM, NEW_CUSTOMER_VIEWS[0]).as_of is None  # no channel: always live
    assert cac_by_channel(db, SYSTEM, NEW_CUSTOMER_VIEWS[4]).as_of is None  # only days from the run's
    app = {r[0]: r for r in cac_by_channel(db, SYSTEM, NEW_CUSTOMER_VIEWS[0]).rows}["app"]
    assert app[3:] == (1, 100.0, 250.0, 2.5)  # as tests/test_insight.py finds live

    # A customer first seen on the run's day counts at once.
    web = make_source(db, "website-3", "web")
    send(db, settings, web, track("zoe", "Product Viewed", "2024-04-05T08:00:00"))
    assert _new_customer_figures(db) == _live_new_customers(db, monkeypatch)
    assert dict(customer_counts(db, SYSTEM, NEW_CUSTOMER_VIEWS[4]).rows)["new"] == 1

    # One first seen before it but stored after it: from the next run (the chart said "as of").
    send(db, settings, web, track("yan", "Product Viewed", "2024-03-10T08:00:00"))
    assert _new_customer_figures(db) != _live_new_customers(db, monkeypatch)
    store_first_seen(db, now=datetime(2024, 4, 5, 9, 0))
    assert _new_customer_figures(db) == _live_new_customers(db, monkeypatch)

    sign_in(http)
    page = http.get("/insight?start=2024-03-01&end=2024-03-31")
    assert "Customers first seen before 2024-04-05 as of 2024-04-05 09:00 UTC" in page.text
