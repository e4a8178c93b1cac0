"""Journey steps per second: N customers enrolled in a journey wait -> branch -> set_trait / create_task,
all due at once, and `run_journeys` (the `journeys.run` job) moving them to the end; on PostgreSQL also
with two worker processes running the job at the same time (claims with FOR UPDATE SKIP LOCKED).

No message leaves: the actions are a trait set through the write path (an identify event) and a
follow-up task for the customer's owner (threadline.sales, and its timeline event). Each enrollment does
three steps in one run (the wait is over, the branch, the action). Floors, on the same database in the
same run: rows like the step log's inserted with DBAPI `executemany`, 100 a transaction, and one row a
transaction (the runner commits each step on its own, so the second floor is the comparable one).

    .venv/bin/python bench/journey_steps.py --enrollments 2000 --pg-url postgresql://127.0.0.1/bench

Data: `large_dataset.build` with `--profiles` customers (5 events each), rebuilt every run (the run
writes to it). PostgreSQL: the schema named by the URL's search_path (`public` if none), dropped and
re-created.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import common
import large_dataset
from threadline.accounts import Viewer
from threadline.journeys import create_journey, run_journeys, set_status
from threadline.journeys.enrolment import active_journeys, enrol
from threadline.storage import Database
from threadline.storage.models import JourneyEnrollment, JourneyStepLog, Profile

STEPS_PER_ENROLLMENT = 3
STEPS = [
    {"key": "wait-1h", "type": "wait", "hours": 1},
    {
        "key": "best-customers",
        "type": "branch",
        "condition": {
            "any": [
                {"trait": "plan", "op": "eq", "value": "gold"},
                {"trait": "plan", "op": "eq", "value": "pro"},
            ]
        },
        "else": "mark-nudged",
    },
    {
        "key": "owner-call",
        "type": "create_task",
        "title": "Call a best customer",
        "due_days": 2,
        "next": "end",
    },
    {"key": "mark-nudged", "type": "set_trait", "trait": "journey_stage", "value": "nudged"},
]


@dataclass(slots=True)
class Run:
    label: str
    steps: int
    seconds: float
    cpu: str
    enrollments: int

    @property
    def rate(self) -> float:
        return self.steps / self.seconds


def _journey(db: Database, name: str, enrollments: int, at: datetime) -> int:
    """An active journey (a trigger that never fires) with `enrollments` customers entered at `at`."""
    system = Viewer.system()
    trigger = {"type": "event", "event": "Bench Never Sent"}
    journey = create_journey(db, system, name=name, trigger=trigger, steps=STEPS, purpose="service", now=at)
    set_status(db, system, journey.id, "active", now=at)
    with db.read() as session:
        ids = list(
            session.scalars(
                select(Profile.id)
                .where(Profile.merged_into.is_(None))
                .order_by(Profile.id)
                .limit(enrollments)
            )
        )
    with db.write() as session:
        conn = session.connection()
        active = next(j for j in active_journeys(conn, ("event",)) if j.id == journey.id)
        for profile_id in ids:
            enrol(conn, active, profile_id, "bench", {"trigger": "bench"}, at=at)
    return journey.id


def _steps_done(db: Database, journey_id: int) -> tuple[int, int]:
    with db.read() as session:
        steps = session.scalar(
            select(func.count())
            .select_from(JourneyStepLog)
            .join(JourneyEnrollment, JourneyEnrollment.id == JourneyStepLog.enrollment_id)
            .where(JourneyEnrollment.journey_id == journey_id)
        )
        completed = session.scalar(
            select(func.count()).where(
                JourneyEnrollment.journey_id == journey_id, JourneyEnrollment.status == "completed"
            )
        )
    return int(steps or 0), int(completed or 0)


def one_worker(db: Database, url: str, journey_id: int, enrollments: int, now: datetime) -> Run:
    meter = common.CpuMeter()
    meter.start()
    counts = run_journeys(db, common.settings_for(url), now=now)
    meter.stop()
    steps, completed = _steps_done(db, journey_id)
    assert counts["steps"] == steps == enrollments * STEPS_PER_ENROLLMENT, (counts, steps)
    assert completed == enrollments
    return Run("`run_journeys`, 1 process", steps, meter.wall, meter.describe(), enrollments)


def _worker(url: str, now: datetime, go: Any, results: Any) -> None:
    db = Database(url)
    settings = common.settings_for(url)
    with db.read() as session:
        session.scalar(select(1))  # connect before the start
    go.wait()
    counts = run_journeys(db, settings, now=now)
    results.put((counts["steps"], time.time()))
    db.dispose()


def two_workers(db: Database, url: str, journey_id: int, enrollments: int, now: datetime) -> Run:
    spawn = multiprocessing.get_context("spawn")
    go, results = spawn.Event(), spawn.Queue()
    workers = [spawn.Process(target=_worker, args=(url, now, go, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(3)  # both import Threadline and connect before the start
    meter = common.CpuMeter()
    meter.start()
    began = time.time()
    go.set()
    answers = [results.get(timeout=3600) for _ in workers]
    finished = max(at for _, at in answers)
    meter.stop()
    for worker in workers:
        worker.join()
    steps, completed = _steps_done(db, journey_id)
    assert sum(n for n, _ in answers) == steps == enrollments * STEPS_PER_ENROLLMENT, (answers, steps)
    assert completed == enrollments
    split = " + ".join(f"{n:,}" for n, _ in answers)
    # The workers and their PostgreSQL backends have exited by the reading: only the machine total is left.
    cpu = f"whole machine {meter.machine_busy:.2f} (the two workers, PostgreSQL and everything else)"
    return Run(f"`run_journeys`, 2 processes ({split} steps)", steps, finished - began, cpu, enrollments)


def _floor_table(db: Database) -> str:
    """A plain copy of journey_step_log's columns (primary key only)."""
    key = "INTEGER PRIMARY KEY" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS raw_step_log")
        conn.exec_driver_sql(
            f"CREATE TABLE raw_step_log (id {key}, enrollment_id INTEGER NOT NULL, step_key VARCHAR(40) "
            "NOT NULL, action VARCHAR(40) NOT NULL, outcome VARCHAR(40) NOT NULL, "
            "outbound_message_id INTEGER, at TIMESTAMP NOT NULL)"
        )
    return "INSERT INTO raw_step_log (enrollment_id, step_key, action, outcome, at) VALUES " + (
        "(?, ?, ?, ?, ?)" if db.dialect == "sqlite" else "(%s, %s, %s, %s, %s)"
    )


def raw_floor(db: Database, rows: int, batch: int, now: datetime) -> Run:
    sql = _floor_table(db)
    at: Any = now.isoformat(" ", "microseconds") if db.dialect == "sqlite" else now
    values = [(n // 3, f"step-{n % 3}", "wait", "waited", at) for n in range(rows)]
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        meter = common.CpuMeter()
        meter.start()
        for offset in range(0, rows, batch):
            if db.dialect == "sqlite":  # the engine runs pysqlite in autocommit, as common.raw_insert_rate
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, values[offset : offset + batch])
            cursor.execute("COMMIT") if db.dialect == "sqlite" else connection.commit()
        meter.stop()
        cursor.close()
    finally:
        connection.close()
    label = f"floor: raw INSERT of step-log rows, {batch} a transaction"
    return Run(label, rows, meter.wall, meter.describe(), 0)


def report(backend: common.Backend, args: argparse.Namespace, runs: list[Run], facts: dict[str, str]) -> str:
    steps_floor = next(r for r in runs if r.label.endswith(", 1 a transaction"))
    rows = [
        [
            run.label,
            f"{run.steps:,}",
            f"{run.seconds:.1f}",
            common.rate(run.rate),
            "" if run.label.startswith("floor") else f"{run.rate / steps_floor.rate:.1%}",
            run.cpu,
        ]
        for run in runs
    ]
    header = [
        "measure",
        "steps / rows",
        "seconds",
        "per second",
        "of 1-row-a-transaction floor",
        "CPU (cores)",
    ]
    return "\n\n".join(
        [
            f"## Journey steps: {backend.name}",
            f"`bench/journey_steps.py --database {backend.name} --enrollments {args.enrollments} "
            f"--profiles {args.profiles}`: {facts['profiles']} customers (`large_dataset.build`, "
            f"{facts['events']} events), {args.enrollments:,} enrolled in a journey wait 1 h -> branch "
            "(plan is gold or pro) -> create_task (owner's follow-up task and its timeline event) / "
            "set_trait (an identify through the write path), all due at once; one `run_journeys` call "
            f"does {STEPS_PER_ENROLLMENT} steps for each (the wait ends, the branch, the action: "
            f"{facts['branches']}) and completes every enrollment, checked in the step log. The two-process "
            "row runs a second journey of the same size with two spawned processes calling `run_journeys` "
            "together (claims with FOR UPDATE SKIP LOCKED); its time is from the start signal to the last "
            "one done. Floors: DBAPI INSERTs of rows like the step log's into a plain table of the same "
            "database. The machine is shared with other engineers' tests: CPU columns show what "
            "other processes used meanwhile.",
            common.machine_facts([backend]),
            common.table(header, rows),
        ]
    )


def _profiles_of(marker: str) -> int:
    fields = dict(part.split("=", 1) for part in marker.split(":") if "=" in part)
    return int(fields.get("profiles", 0))


def run_backend(backend: common.Backend, args: argparse.Namespace) -> str:
    stored = large_dataset.stored_marker(backend.url)
    wanted = large_dataset.marker_key(args.profiles, args.profiles * 5, args.seed)
    bigger = stored is not None and stored != wanted and _profiles_of(stored) > args.profiles
    if bigger and not args.replace:  # a large data set (segment_eval's) is not thrown away by mistake
        raise SystemExit(
            f"{backend.name}: the database holds another data set ({stored}); this benchmark rebuilds its "
            "own there. Point it elsewhere (a SQLite dir, a PostgreSQL search_path) or pass --replace."
        )
    data = large_dataset.build(backend.url, args.profiles, args.profiles * 5, args.seed, force=True)
    db = Database(backend.url)
    runs: list[Run] = []
    try:
        start = data.now
        rows = args.enrollments * STEPS_PER_ENROLLMENT
        runs.append(raw_floor(db, rows, 100, start))
        runs.append(raw_floor(db, min(rows, 3000), 1, start))
        print(f"  {backend.name}: floors {[f'{r.rate:,.0f}/s' for r in runs]}", flush=True)
        journey_id = _journey(db, "Bench steps", args.enrollments, start)
        runs.append(one_worker(db, backend.url, journey_id, args.enrollments, start + timedelta(minutes=61)))
        print(f"  {backend.name}: 1 process {runs[-1].rate:,.0f} steps/s", flush=True)
        with db.read() as session:
            tasks = session.scalar(
                select(func.count())
                .select_from(JourneyStepLog)
                .where(JourneyStepLog.step_key == "owner-call")
            )
        branches = f"{tasks:,} tasks, {args.enrollments - int(tasks or 0):,} traits"
        if backend.name == "postgresql" and not args.no_workers:
            later = start + timedelta(days=1)
            second = _journey(db, "Bench steps, two workers", args.enrollments, later)
            runs.append(two_workers(db, backend.url, second, args.enrollments, later + timedelta(minutes=61)))
            print(f"  {backend.name}: 2 processes {runs[-1].rate:,.0f} steps/s", flush=True)
        with db.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS raw_step_log")
    finally:
        db.dispose()
    facts = {"profiles": f"{data.live_profiles:,}", "events": f"{data.events:,}", "branches": branches}
    return report(backend, args, runs, facts)


def main() -> None:
    args = common.parser(__doc__ or "")
    args.add_argument("--enrollments", type=int, default=2000)
    args.add_argument("--profiles", type=int, default=10_000)
    args.add_argument("--seed", type=int, default=7)
    args.add_argument("--sqlite-dir", default=str(common.DATA), help="where the SQLite data set goes")
    args.add_argument("--replace", action="store_true", help="rebuild over another data set")
    args.add_argument("--no-workers", action="store_true", help="skip the two-process run on PostgreSQL")
    options = args.parse_args()
    if options.enrollments > options.profiles:
        raise SystemExit("--enrollments must be at most --profiles")
    for backend in common.backends(options, "journey_steps"):
        if backend.name == "sqlite":
            backend = common.Backend("sqlite", f"sqlite:///{Path(options.sqlite_dir) / 'journey_steps.db'}")
        report_text = run_backend(backend, options)
        print(report_text, flush=True)
        if not options.no_results:
            common.write_section(f"journeys:{backend.name}", report_text)


if __name__ == "__main__":
    main()
