"""Profile reads at scale: profile_view + the first timeline page, in process and over HTTP.

    .venv/bin/python bench/profile_read.py [--database sqlite|postgresql|both] [--events 1000000]
        [--customers 100000] [--samples 2000]

Builds (once, through the real ingest path) a database of `--events` events over `--customers` customers,
kept for later runs: SQLite in bench/.data/read_<events>_<customers>.db, PostgreSQL in the public
schema of the bench database (shared with the other benchmarks, which reset it: run this one last).
Then, over `--samples` random live profiles:
(a) `profile_view` + `timeline_page(limit=50)` in process, (b) GET /api/v1/profiles/{id} and
GET /api/v1/profiles/{id}/events?limit=50 against ONE running server, one request at a time. Floors in
the same run: a primary-key SELECT of one event row (DBAPI) and GET /healthz. Goal: p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
from sqlalchemy import func, select, text

import common
import generator
from threadline.accounts import Viewer
from threadline.clock import utcnow
from threadline.ingest import ingest
from threadline.profiles import profile_view, timeline_page
from threadline.storage import Database
from threadline.storage.models import Event, Profile

SYSTEM = Viewer.system()  # the scope filter still runs; an admin's scope is all customers too
GOAL_P99_MS = 20.0
K = TypeVar("K")
TABLES = ("events", "profiles", "identities", "trait_history", "merges")


@dataclass(frozen=True, slots=True)
class Timing:
    label: str
    samples: list[float]
    note: str = ""


# -- building the data set ---------------------------------------------------------------------


def _marker(args: argparse.Namespace) -> str:
    return f"events={args.events} customers={args.customers} seed={args.seed}"


def is_built(backend: common.Backend, args: argparse.Namespace) -> bool:
    if backend.name == "sqlite" and not common.sqlite_path(backend).exists():
        return False
    db = Database(backend.url)
    try:
        with db.engine.connect() as conn:
            return conn.execute(text("SELECT marker FROM bench_marker")).scalar() == _marker(args)
    except Exception:  # no marker table: not built, or a build that did not finish
        return False
    finally:
        db.dispose()


def build(backend: common.Backend, args: argparse.Namespace) -> float:
    """Ingest the data set through `threadline.ingest.ingest`; returns events/s of the build."""
    common.fresh_database(backend)
    db = Database(backend.url)
    settings = common.settings_for(backend.url)
    source = common.make_source(db)
    start = time.perf_counter()
    done, next_analyze = 0, 2_000
    for batch in generator.batches(args.customers, args.events, args.build_batch, args.seed):
        ingest(db, source, batch, settings=settings, received_at=utcnow())
        done += len(batch)
        if done >= next_analyze:
            # This server runs with autovacuum off; analyse as autovacuum would (often while tables are
            # small), or plans made on empty tables turn each batch's dedupe query into a scan.
            _analyze(db)
            next_analyze = min(next_analyze * 2, next_analyze + args.analyze_every)
            elapsed = time.perf_counter() - start
            print(f"  {backend.name}: {done:,} events, {done / elapsed:,.0f} events/s", flush=True)
    _analyze(db)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_marker (marker VARCHAR(200))"))
        conn.execute(text("INSERT INTO bench_marker VALUES (:m)"), {"m": _marker(args)})
    db.dispose()
    return float(args.events / (time.perf_counter() - start))


def _analyze(db: Database) -> None:
    with db.engine.begin() as conn:
        for table in TABLES:
            conn.execute(text(f"ANALYZE {table}"))


# -- measuring ---------------------------------------------------------------------------------


def sample_profiles(db: Database, count: int, seed: int) -> list[str]:
    with db.read() as session:
        ids = sorted(session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))))
    return random.Random(seed).sample(ids, min(count, len(ids)))


def timed(action: Callable[[K], object], keys: Sequence[K], warmup: int) -> list[float]:
    """Seconds per call of `action` for each key, after calling it on the first `warmup` keys."""
    for key in keys[:warmup]:
        action(key)
    samples = []
    for key in keys:
        start = time.perf_counter()
        action(key)
        samples.append(time.perf_counter() - start)
    return samples


def in_process(db: Database, profiles: list[str], warmup: int) -> list[Timing]:
    def both(pid: str) -> None:
        profile_view(db, pid, viewer=SYSTEM)
        timeline_page(db, pid, limit=50, viewer=SYSTEM)

    return [
        Timing("in process: profile_view + timeline_page(50)", timed(both, profiles, warmup)),
        Timing(
            "in process: profile_view", timed(lambda p: profile_view(db, p, viewer=SYSTEM), profiles, warmup)
        ),
        Timing(
            "in process: timeline_page(50)",
            timed(lambda p: timeline_page(db, p, limit=50, viewer=SYSTEM), profiles, warmup),
        ),
    ]


def pk_floor(db: Database, count: int, seed: int) -> Timing:
    """A primary-key SELECT of one event row through the DBAPI cursor: the database's own floor."""
    with db.read() as session:
        low, high = session.execute(select(func.min(Event.id), func.max(Event.id))).one()
    rng = random.Random(seed)
    ids = [rng.randint(low, high) for _ in range(count)]
    mark = "?" if db.dialect == "sqlite" else "%s"
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()

        def select_one(event_id: int) -> None:
            cursor.execute(f"SELECT * FROM events WHERE id = {mark}", (event_id,))
            cursor.fetchone()

        samples = timed(select_one, ids, 100)
        connection.rollback()
    finally:
        connection.close()
    return Timing("floor: PK SELECT of one event row (DBAPI)", samples)


def over_http(
    backend: common.Backend, db: Database, profiles: list[str], warmup: int
) -> tuple[list[Timing], float]:
    token = common.make_token(db, f"read-{time.time_ns()}@example.com")
    with common.server(backend.url) as running, httpx.Client(base_url=running.url, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {token}"

        def get(path: str) -> None:
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:200]}")

        def both(pid: str) -> None:
            get(f"/api/v1/profiles/{pid}")
            get(f"/api/v1/profiles/{pid}/events?limit=50")

        timings = [
            Timing("HTTP: GET profile + GET events?limit=50", timed(both, profiles, warmup)),
            Timing(
                "HTTP: GET /api/v1/profiles/{id}", timed(lambda p: get(f"/api/v1/profiles/{p}"), profiles, 0)
            ),
            Timing("floor: HTTP GET /healthz", timed(lambda _: get("/healthz"), profiles, warmup)),
        ]
        rss = common.peak_rss_mb(running.pid)
    return timings, rss


# -- reporting ---------------------------------------------------------------------------------


def report(
    backend: common.Backend, args: argparse.Namespace, timings: list[Timing], facts: dict[str, str]
) -> str:
    rows = []
    for timing in timings:
        cuts = common.percentiles(timing.samples)
        verdict = (
            "" if timing.label.startswith("floor") else ("yes" if cuts["p99"] < GOAL_P99_MS else "**no**")
        )
        rows.append([timing.label, *(common.ms(cuts[k]) for k in ("p50", "p95", "p99", "max")), verdict])
    size = f"--events {args.events} --customers {args.customers}"
    return "\n\n".join(
        [
            f"## Profile reads: {backend.name}",
            f"`bench/profile_read.py --database {backend.name} {size} --samples {args.samples}`: "
            f"{facts['events']} events, {facts['profiles']} live profiles; {len(timings[0].samples):,} "
            f"random live profiles, each timed once per row after a warm-up of {args.warmup}, one request "
            "at a time. "
            f"Data set {facts['build']}.",
            common.machine_facts([backend]),
            common.table(
                ["measure", "p50 ms", "p95 ms", "p99 ms", "max ms", f"p99 < {GOAL_P99_MS:g} ms"], rows
            ),
            f"Peak RSS: benchmark process {facts['rss']} MiB (in-process reads phase), server process "
            f"{facts['server_rss']} MiB.",
        ]
    )


def run_backend(backend: common.Backend, args: argparse.Namespace) -> str:
    if is_built(backend, args):
        build_note = "reused from an earlier run (built through `ingest`)"
    else:
        print(f"building {backend.name} data set ({_marker(args)}) ...", flush=True)
        rate = build(backend, args)
        build_note = (
            f"built in this run through `ingest` (batches of {args.build_batch}) at {rate:,.0f} events/s"
        )
    db = Database(backend.url)
    try:
        profiles = sample_profiles(db, args.samples, args.seed)
        common.reset_peak_rss()
        timings = [pk_floor(db, args.samples, args.seed), *in_process(db, profiles, args.warmup)]
        rss = common.peak_rss_mb()
        http_timings, server_rss = over_http(backend, db, profiles, args.warmup)
        with db.read() as session:
            events = session.scalar(select(func.count()).select_from(Event)) or 0
            live = session.scalar(
                select(func.count()).select_from(Profile).where(Profile.merged_into.is_(None))
            )
    finally:
        db.dispose()
    facts = {
        "events": f"{events:,}",
        "profiles": f"{live or 0:,}",
        "build": build_note,
        "rss": f"{rss:.0f}",
        "server_rss": f"{server_rss:.0f}",
    }
    return report(backend, args, [*timings, *http_timings], facts)


def main() -> None:
    args = common.parser(__doc__ or "")
    args.add_argument("--events", type=int, default=1_000_000)
    args.add_argument("--customers", type=int, default=100_000)
    args.add_argument("--samples", type=int, default=2_000)
    args.add_argument("--warmup", type=int, default=200)
    args.add_argument("--build-batch", type=int, default=500)
    args.add_argument(
        "--analyze-every", type=int, default=100_000, help="events between ANALYZEs in the build"
    )
    args.add_argument("--seed", type=int, default=11)
    options = args.parse_args()
    for backend in common.backends(options, f"read_{options.events}_{options.customers}"):
        text_ = run_backend(backend, options)
        print(text_, flush=True)
        if not options.no_results:
            common.write_section(f"read:{backend.name}", text_)


if __name__ == "__main__":
    main()
