"""In-process ingestion (`threadline.ingest.ingest`) against the raw DBAPI insert rate of the same rows.

    .venv/bin/python bench/ingest_inprocess.py [--database sqlite|postgresql|both] [--events N]

For each database and batch size: a fresh migrated database, the generated messages ingested in batches
(one `ingest` call = one transaction), then the same rows inserted with `cursor.executemany` into a plain
`raw_events` table of the same database, one commit per batch. Goal: ingestion >= 30% of raw on SQLite.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

import common
import generator
from threadline.clock import utcnow
from threadline.ingest import ingest
from threadline.storage import Database
from threadline.storage.models import Identity, Merge, Profile, TraitChange

GOAL = 0.30


@dataclass(frozen=True, slots=True)
class Run:
    batch: int
    ingest_rate: float
    late_rate: float  # over the last fifth of the batches: does ingestion slow down as tables grow?
    raw_rate: float
    peak_rss_mb: float
    profiles: int
    identities: int
    merges: int
    trait_rows: int
    cpu: str

    @property
    def ratio(self) -> float:
        return self.ingest_rate / self.raw_rate


def timed_ingest(
    db: Database, backend: common.Backend, raws: list[dict[str, Any]], batch: int
) -> tuple[float, float]:
    """Events/s of ingesting `raws` in `batch`-sized calls, overall and over the last fifth of the calls."""
    settings = common.settings_for(backend.url)
    source = common.make_source(db)
    accepted = 0
    late_from = len(raws) - len(raws) // 5
    start = late_start = time.perf_counter()
    for offset in range(0, len(raws), batch):
        if offset <= late_from < offset + batch:
            late_start, late_from = time.perf_counter(), offset
        result = ingest(db, source, raws[offset : offset + batch], settings=settings, received_at=utcnow())
        accepted += result.accepted
    end = time.perf_counter()
    if accepted != len(raws):
        raise RuntimeError(f"accepted {accepted} of {len(raws)} messages")
    return len(raws) / (end - start), (len(raws) - late_from) / (end - late_start)


def _counts(db: Database) -> tuple[int, int, int, int]:
    with db.read() as session:
        live = session.scalar(select(func.count()).select_from(Profile).where(Profile.merged_into.is_(None)))
        identities = session.scalar(select(func.count()).select_from(Identity))
        merges = session.scalar(select(func.count()).select_from(Merge))
        traits = session.scalar(select(func.count()).select_from(TraitChange))
    return int(live or 0), int(identities or 0), int(merges or 0), int(traits or 0)


def run_one(backend: common.Backend, raws: list[dict[str, Any]], batch: int) -> Run:
    common.fresh_database(backend)
    db = Database(backend.url)
    try:
        common.reset_peak_rss()
        meter = common.CpuMeter()
        meter.start()
        ingest_rate, late_rate = timed_ingest(db, backend, raws, batch)
        meter.stop()
        peak = common.peak_rss_mb()
        rows = common.event_rows(raws, db.dialect)
        raw_rate = common.raw_insert_rate(db, rows, batch)
        return Run(batch, ingest_rate, late_rate, raw_rate, peak, *_counts(db), meter.describe())
    finally:
        db.dispose()


def report(backend: common.Backend, runs: list[Run], args: argparse.Namespace) -> str:
    rows = [
        (
            str(r.batch),
            common.rate(r.ingest_rate),
            common.rate(r.late_rate),
            common.rate(r.raw_rate),
            f"{r.ratio:.0%}",
            f"{r.peak_rss_mb:.0f}",
            f"{r.profiles:,} / {r.identities:,} / {r.merges:,} / {r.trait_rows:,}",
            r.cpu,
        )
        for r in runs
    ]
    header = [
        "batch",
        "ingest events/s",
        "last fifth events/s",
        "raw executemany rows/s (floor)",
        "ingest / raw",
    ]
    header += [
        "peak RSS MiB",
        "live profiles / identities / merge rows / trait rows",
        "CPU during ingest (cores)",
    ]
    worst = min(r.ratio for r in runs)
    goal = f"Goal: ingestion >= {GOAL:.0%} of the raw rate on SQLite. "
    if backend.name == "sqlite":
        goal += f"Worst ratio here {worst:.0%}: {'MET' if worst >= GOAL else 'NOT MET'}."
    else:
        goal += f"(Stated for SQLite; worst ratio on PostgreSQL {worst:.0%}.)"
    return "\n\n".join(
        [
            f"## Ingestion in process: {backend.name}",
            f"`bench/ingest_inprocess.py --database {backend.name} --events {args.events} "
            f"--customers {args.customers}`: {args.events:,} generated messages (seed {args.seed}) over "
            f"{args.customers:,} customers, fresh migrated database per batch size. "
            "Raw floor: the same rows (pre-built, JSON pre-serialised) inserted with DBAPI `executemany` "
            "into `raw_events` (same columns as `events`, primary key only) of the same database, one "
            "commit per batch. Peak RSS is this process's VmHWM during the ingest phase.",
            common.machine_facts([backend]),
            common.table(header, rows),
            goal,
        ]
    )


def main() -> None:
    args = common.parser(__doc__ or "")
    args.add_argument("--events", type=int, default=50_000)
    args.add_argument("--customers", type=int, default=10_000)
    args.add_argument("--batches", type=int, nargs="+", default=[100, 500])
    args.add_argument("--seed", type=int, default=42)
    options = args.parse_args()
    raws = list(generator.messages(options.customers, options.events, options.seed))
    for backend in common.backends(options, "ingest"):
        runs = []
        for batch in options.batches:
            run = run_one(backend, raws, batch)
            print(f"{backend.name} batch={batch}: {run}  ratio={run.ratio:.0%}", flush=True)
            runs.append(run)
        text = report(backend, runs, options)
        print(text)
        if not options.no_results:
            common.write_section(f"ingest:{backend.name}", text)


if __name__ == "__main__":
    main()
