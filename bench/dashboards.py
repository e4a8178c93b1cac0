"""Dashboard charts at 1,000,000 profiles / 10,000,000 events: each chart read from the worker's daily
rollups against the same chart's live query over the events, and against a floor: one `count(*)` of the
range's events (the least any live chart must read). Goal (issue 7): every chart under 500 ms.

    .venv/bin/python bench/dashboards.py --database postgresql --pg-url postgresql://127.0.0.1/bench
    .venv/bin/python bench/dashboards.py --database sqlite --profiles 10000 --events 100000 --no-results

The data set comes from bench/large_dataset.py (built once, reused). The rollups are rebuilt from nothing
(`reset_rollups` then `refresh_rollups`, as `threadline analytics rollups --rebuild` does) and timed.
Charts run as an admin (every customer) over the default range (the last 90 days), then with a channel
filter. A chart the rollups do not answer (the consistency report) runs live in both columns, and says
so. The portrait page, CAC and customer counts with a channel filter read the daily snapshots the scores
job stores (this run stores them as the job does, timed) for the days before it, against computing
them live.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any

from sqlalchemy import func, select

import common
import large_dataset
from threadline.accounts import Viewer
from threadline.analytics import first_seen, rollup_reads
from threadline.analytics.cohorts import retention_cohorts
from threadline.analytics.consistency import consistency_report
from threadline.analytics.dashboards import DEFAULT_FUNNEL, OVERVIEW, page_datasets
from threadline.analytics.dataset import Dataset
from threadline.analytics.funnels import funnel
from threadline.analytics.portrait_snapshots import portrait_datasets, store_portrait_snapshot
from threadline.analytics.rollups import refresh_rollups, reset_rollups
from threadline.analytics.scope import InsightFilters
from threadline.storage import Database
from threadline.storage.models import Event

GOAL_MS = 500.0
ROLLED_UP = {
    "customer_counts", "customers_by_channel", "customers_by_source", "engagement_by_channel",
    "revenue_summary", "revenue_by_month", "revenue_by_channel", "churn_rate", "retention_cohorts",
    "survey_trends", "portrait_page", "overview_page", "funnel", "funnel_by_channel",
}  # fmt: skip
SNAPSHOT = {"cac_by_channel": "daily snapshot + live from its day", "portrait_page": "daily snapshot"}


def _funnel(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    return funnel(db, viewer, filters, list(DEFAULT_FUNNEL))


def _funnel_by_channel(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    return funnel(db, viewer, filters, list(DEFAULT_FUNNEL), by_channel=True)


def _consistency(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    return consistency_report(db, viewer, filters).summary()


def _portrait(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """The portrait page's ten charts as one table: the daily snapshot where it answers, else live (as
    of the snapshot's moment, so the two can be compared)."""
    if rollup_reads.TAIL_LIMIT >= 0:
        charts = page_datasets(db, viewer, "portrait", filters, {})
    else:
        charts = portrait_datasets(db, viewer, filters, until=datetime.combine(filters.end, SNAPSHOT_AT))
    rows = [(name, *row) for name, data in sorted(charts.items()) for row in data.rows]
    return Dataset("portrait", ("chart", "value", "customers"), rows)


def _overview(db: Database, viewer: Viewer, filters: InsightFilters) -> Dataset:
    """The whole overview page (its eleven charts, sharing their rollup reads) as one table."""
    charts = page_datasets(db, viewer, "overview", filters, {})
    return Dataset(
        "overview", ("chart", "row"), [(n, *row) for n, d in sorted(charts.items()) for row in d.rows]
    )


CHARTS: list[tuple[str, Callable[[Database, Viewer, InsightFilters], Dataset]]] = [
    *((chart.__name__, chart) for chart in OVERVIEW),
    ("retention_cohorts", retention_cohorts),
    ("funnel", _funnel),
    ("funnel_by_channel", _funnel_by_channel),
    ("consistency_report", _consistency),
    ("portrait_page", _portrait),
    ("overview_page", _overview),
]
SNAPSHOT_AT = dtime(4, 0)  # the daily scores run's hour


def _timed(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    run()  # warm-up: the first read pays for the cache
    seconds, answer = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        answer = run()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds) * 1000, answer


def _same(one: Dataset, other: Dataset) -> bool:
    """The same rows, floats equal to 1e-9 relative (sums of a million amounts in another order)."""

    def equal(a: Any, b: Any) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        return bool(a == b)

    return len(one.rows) == len(other.rows) and all(
        len(r) == len(s) and all(equal(a, b) for a, b in zip(r, s, strict=True))
        for r, s in zip(one.rows, other.rows, strict=True)
    )


def run_backend(backend: common.Backend, args: argparse.Namespace) -> str:
    data = large_dataset.build(backend.url, args.profiles, args.events, args.seed)
    print(f"  {backend.name}: data set {'built' if data.built else 'reused'}", flush=True)
    db = Database(backend.url)
    viewer = Viewer.system()
    end = data.now.date() - timedelta(days=1)
    ranges = [("last 90 days", InsightFilters.last_days(end, 90))]
    ranges.append(("last 90 days, web", InsightFilters.last_days(end, 90, channel="web")))
    try:
        began = time.perf_counter()
        if not args.keep_rollups:
            reset_rollups(db, now=data.now)
        run = refresh_rollups(db, now=data.now, limit=0, settled=True)
        build_s = time.perf_counter() - began
        print(f"  {backend.name}: rollups built: {run.events:,} events in {build_s:,.0f} s", flush=True)
        began = time.perf_counter()
        store_portrait_snapshot(db, now=datetime.combine(end, SNAPSHOT_AT))
        snapshot_s = time.perf_counter() - began
        began = time.perf_counter()
        first_seen.store_first_seen(db, now=datetime.combine(end, SNAPSHOT_AT))
        first_seen_s = time.perf_counter() - began
        rows, worst, differ = [], 0.0, []
        for label, filters in ranges:
            with db.read() as session:
                scan = select(func.count()).where(
                    Event.timestamp >= filters.since, Event.timestamp < filters.until
                )
                floor_ms, in_range = _timed(lambda scan=scan: session.scalar(scan), args.repeat)
            rows.append([label, "floor: count(*) of the range's events", f"{floor_ms:,.0f}", "", "", ""])
            for name, chart in CHARTS:

                def live(chart: Any = chart, filters: InsightFilters = filters) -> Dataset:
                    saved, stored_at = rollup_reads.TAIL_LIMIT, first_seen.snapshot_time
                    rollup_reads.TAIL_LIMIT = -1  # no rollups: the live query over the events
                    first_seen.snapshot_time = lambda *_: None  # no snapshot of new customers either
                    try:
                        return chart(db, viewer, filters)  # type: ignore[no-any-return]
                    finally:
                        rollup_reads.TAIL_LIMIT, first_seen.snapshot_time = saved, stored_at

                rolled_ms, rolled = _timed(
                    lambda chart=chart, filters=filters: chart(db, viewer, filters), args.repeat
                )
                live_ms, lived = _timed(live, 1) if not args.skip_live else (math.nan, rolled)
                if not _same(rolled, lived):
                    differ.append(f"{label}: {name}")
                how = "rollups" if name in ROLLED_UP else "live (not rolled up)"
                how = SNAPSHOT.get(name, how)
                if name == "customer_counts" and filters.channel:
                    how = "rollups; total and new: daily snapshot + live from its day"
                if name == "overview_page":
                    how = "the page's 11 charts, rollups and snapshots shared"
                worst = max(worst, rolled_ms)
                print(
                    f"    {label}: {name}: {rolled_ms:,.0f} ms ({how}) vs live {live_ms:,.0f} ms", flush=True
                )
                rows.append(
                    [
                        "", name, f"{rolled_ms:,.0f}", how,
                        "not run" if args.skip_live else f"{live_ms:,.0f}",
                        "yes" if rolled_ms < GOAL_MS else "**no**",
                    ]
                )  # fmt: skip
    finally:
        db.dispose()
    header = ["range", "chart", "ms", "read from", "live ms", f"< {GOAL_MS:g} ms"]
    slow = [r[1] for r in rows if r[5] == "**no**"]
    verdict = "MET for every chart" if not slow else f"NOT MET for {', '.join(sorted(set(slow)))}"
    build = "built by this run" if data.built else "reused from an earlier run"
    return "\n\n".join(
        [
            f"## Dashboards: {backend.name}" + (", rollups only (`--skip-live`)" if args.skip_live else ""),
            f"`bench/dashboards.py --database {backend.name} --profiles {data.profiles} "
            f"--events {data.events} --seed {data.seed} --repeat {args.repeat}`: {data.events:,} events, "
            f"{data.live_profiles:,} live profiles, from `bench/large_dataset.py` ({build}); "
            f"now = {data.now:%Y-%m-%d}; "
            f"{in_range:,} events in the last 90 days. Rollups "
            f"{'brought up to date' if args.keep_rollups else 'rebuilt from nothing'} by this run: "
            f"{run.events:,} events in {build_s:,.0f} s ({run.events / max(build_s, 1e-9):,.0f} "
            f"events/s); the daily snapshots took {snapshot_s:,.0f} s (portrait page) and "
            f"{first_seen_s:,.0f} s (new customers by day and channel). Each chart "
            f"as an admin, median of {args.repeat} runs after a warm-up, from the rollups (with the live "
            "tail, empty here) and once live over the events; the floor is one `count(*)` of the range's "
            "events, the least a live chart reads. The machine is shared, so single figures can be noisy.",
            common.machine_facts([backend]),
            common.table(header, rows),
            f"Goal (issue 7): each chart under {GOAL_MS:g} ms; slowest {worst:,.0f} ms: {verdict}. "
            + ("Live queries not run (`--skip-live`): the full run's section compares the rows."
               if args.skip_live else
               "Rollups and live queries gave the same rows for every chart." if not differ else
               f"**Rows differ**: {'; '.join(differ)}."),
        ]
    )  # fmt: skip


def main() -> None:
    args = common.parser(__doc__ or "")
    large_dataset.add_arguments(args, str(common.DATA))
    args.add_argument(
        "--keep-rollups", action="store_true", help="bring the rollups up to date instead of rebuilding them"
    )
    args.add_argument(
        "--skip-live", action="store_true", help="time the charts only (the live queries take long on SQLite)"
    )
    options = args.parse_args()
    for backend in large_dataset.backends_for(options, "dashboards"):
        report_text = run_backend(backend, options)
        print(report_text, flush=True)
        if not options.no_results:
            section = f"dashboards:{backend.name}" + (":rollups-only" if options.skip_live else "")
            common.write_section(section, report_text)


if __name__ == "__main__":
    main()
