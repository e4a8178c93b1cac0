"""The background worker: a durable queue claimed under leases, retries with backoff, schedules queued
once however many workers tick, and `threadline worker` / `threadline serve` as real processes.
Real SQLite and PostgreSQL; a movable clock instead of sleeping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.conftest import free_port
from tests.factories import make_token
from threadline.cli.main import app
from threadline.clock import Clock, utcnow
from threadline.config import Settings, get_settings
from threadline.jobs import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Handler,
    JobInterrupted,
    Schedule,
    Scheduler,
    Worker,
    claim,
    complete,
    enqueue,
    get_job,
    list_jobs,
    renew_lease,
    schedules_for,
)
from threadline.storage import Database
from threadline.storage.models import Job, ResolutionRun

NOW = datetime(2026, 11, 23, 12, 0)
ROOT = Path(__file__).resolve().parents[1]


class MovableClock:
    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


def worker(
    db: Database,
    settings: Settings,
    clock: Clock,
    kinds: Mapping[str, Handler],
    *,
    name: str | None = None,
    schedules: list[Schedule] | None = None,
) -> Worker:
    """A worker that runs only `kinds` and, unless given some, no schedules."""
    return Worker(db, settings, clock=clock, kinds=kinds, schedules=schedules or [], name=name)


def recording(runs: list[dict[str, Any]]) -> Handler:
    def handler(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> None:
        runs.append(payload)

    return handler


def failing(times: int) -> Handler:
    """Raises on its first `times` runs, then succeeds."""
    calls = Counter[str]()

    def handler(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> None:
        calls["runs"] += 1
        if calls["runs"] <= times:
            raise ValueError(f"the mail relay said no (run {calls['runs']})")

    return handler


def test_a_queued_job_runs_once_when_due_and_is_done(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    runs: list[dict[str, Any]] = []
    now_job = enqueue(db, "greet", {"n": 1}, now=clock())
    later = enqueue(db, "greet", {"n": 2}, now=clock(), run_at=NOW + timedelta(hours=1))
    assert now_job is not None and later is not None and now_job.status == QUEUED
    background = worker(db, settings, clock, {"greet": recording(runs)})

    outcomes = background.run_until_idle()
    assert [o.status for o in outcomes] == [DONE] and runs == [{"n": 1}]
    done = get_job(db, now_job.id)
    assert (done.status, done.attempts, done.finished_at, done.locked_by) == (DONE, 1, NOW, None)
    assert background.run_until_idle() == []  # done stays done; the other one is not due yet

    clock.advance(hours=1)
    assert [o.job_id for o in background.run_until_idle()] == [later.id]
    assert runs == [{"n": 1}, {"n": 2}]


def test_a_worker_claims_only_kinds_it_can_run(db: Database, settings: Settings, clock: MovableClock) -> None:
    """A job queued by a newer release waits for a worker that knows its kind (a rolling deploy)."""
    unknown = enqueue(db, "from-the-future", now=clock())
    assert unknown is not None
    assert worker(db, settings, clock, {"greet": recording([])}).run_until_idle() == []
    assert get_job(db, unknown.id).status == QUEUED


def test_a_failing_job_is_retried_with_backoff_then_failed_with_its_error(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    settings = settings.model_copy(update={"job_retry_seconds": 30})
    job = enqueue(db, "mail", now=clock(), max_attempts=3)
    assert job is not None
    background = worker(db, settings, clock, {"mail": failing(times=10)})

    [first] = background.run_until_idle()
    assert (first.status, first.attempt, first.error) == (QUEUED, 1, "ValueError")
    queued = get_job(db, job.id)
    assert queued.run_at == NOW + timedelta(seconds=30) and queued.locked_by is None
    assert queued.last_error == "ValueError: the mail relay said no (run 1)"
    assert background.run_until_idle() == []  # not before its backoff

    clock.advance(seconds=30)
    [second] = background.run_until_idle()
    assert second.status == QUEUED and get_job(db, job.id).run_at == clock() + timedelta(seconds=60)
    clock.advance(seconds=60)
    [third] = background.run_until_idle()
    assert third.status == FAILED
    failed = get_job(db, job.id)
    assert (failed.status, failed.attempts, failed.finished_at) == (FAILED, 3, clock())
    assert failed.last_error == "ValueError: the mail relay said no (run 3)"
    clock.advance(days=2)
    assert background.run_until_idle() == []


def test_a_job_that_fails_once_then_succeeds_is_done(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    job = enqueue(db, "mail", now=clock())
    assert job is not None
    background = worker(db, settings, clock, {"mail": failing(times=1)})
    background.run_until_idle()
    clock.advance(seconds=settings.job_retry_seconds)
    assert [o.status for o in background.run_until_idle()] == [DONE]
    assert (get_job(db, job.id).status, get_job(db, job.id).attempts) == (DONE, 2)


def test_a_job_whose_worker_died_is_claimed_again_once_its_lease_runs_out(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    lease = timedelta(seconds=settings.job_lease_seconds)
    job = enqueue(db, "sync", now=clock())
    assert job is not None
    # Worker A claims it and dies: it never records an outcome.
    dead = claim(db, "worker-a", ["sync"], now=clock(), lease=lease)
    assert dead is not None and get_job(db, job.id).status == RUNNING
    runs: list[dict[str, Any]] = []
    b = worker(db, settings, clock, {"sync": recording(runs)}, name="worker-b")
    assert b.run_until_idle() == []  # the lease holds

    clock.advance(seconds=lease.total_seconds() + 1)
    [outcome] = b.run_until_idle()
    assert outcome.status == DONE and outcome.attempt == 2 and len(runs) == 1
    taken_over = get_job(db, job.id)
    assert taken_over.status == DONE and "lease ran out" in (taken_over.last_error or "")
    # Worker A comes back to life and tries to record its run: the job is B's now, nothing changes.
    assert complete(db, dead, now=clock()) is False
    assert get_job(db, job.id).finished_at == taken_over.finished_at


def test_a_renewed_lease_keeps_a_long_job_from_being_taken_over(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    lease = timedelta(seconds=settings.job_lease_seconds)
    enqueue(db, "sync", now=clock())
    held = claim(db, "worker-a", ["sync"], now=clock(), lease=lease)
    assert held is not None
    clock.advance(seconds=lease.total_seconds() * 0.9)
    assert renew_lease(db, held, now=clock(), lease=lease)
    clock.advance(seconds=lease.total_seconds() * 0.5)  # past the first lease, within the renewed one
    assert claim(db, "worker-b", ["sync"], now=clock(), lease=lease) is None


def test_a_job_whose_worker_dies_on_its_last_attempt_fails(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    lease = timedelta(seconds=settings.job_lease_seconds)
    job = enqueue(db, "crash", now=clock(), max_attempts=1)
    assert job is not None
    assert claim(db, "worker-a", ["crash"], now=clock(), lease=lease) is not None
    clock.advance(seconds=lease.total_seconds() + 1)
    assert claim(db, "worker-b", ["crash"], now=clock(), lease=lease) is None
    failed = get_job(db, job.id)
    assert failed.status == FAILED and "lease ran out" in (failed.last_error or "")


def test_an_interrupted_job_goes_back_in_the_queue_uncounted(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    def stopped(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> None:
        raise JobInterrupted  # what the signal handler of `threadline worker` raises into a job

    job = enqueue(db, "long", now=clock())
    assert job is not None
    with pytest.raises(JobInterrupted):
        worker(db, settings, clock, {"long": stopped}).run_once()
    back = get_job(db, job.id)
    assert (back.status, back.attempts, back.locked_by, back.locked_until) == (QUEUED, 0, None, None)


@pytest.mark.parametrize("workers", [2, 4])
def test_concurrent_workers_never_run_one_job_twice(settings: Settings, db: Database, workers: int) -> None:
    jobs = 120
    for n in range(jobs):
        enqueue(db, "count", {"n": n}, now=NOW)
    runs: list[int] = []
    by_worker = Counter[str]()
    lock = threading.Lock()
    start = threading.Barrier(workers)

    def count(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> None:
        with lock:
            runs.append(payload["n"])
            by_worker[threading.current_thread().name] += 1

    def work() -> None:
        own = Database(settings.database_url)  # its own connections, as another process would have
        try:
            start.wait()
            worker(own, settings, lambda: NOW, {"count": count}).run_until_idle()
        finally:
            own.dispose()

    threads = [threading.Thread(target=work, name=f"w{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(runs) == list(range(jobs))  # every job once, none twice
    assert {job.status for job in list_jobs(db, limit=1000)} == {DONE}
    if db.dialect == "postgresql":  # SKIP LOCKED: the workers share the work rather than queue
        assert len(by_worker) > 1


def test_a_schedule_occurrence_is_the_latest_instant_due() -> None:
    daily = Schedule("resolve", timedelta(hours=24), anchor=timedelta(hours=3))
    assert daily.occurrence(datetime(2026, 11, 23, 2, 59)) == datetime(2026, 11, 22, 3, 0)
    assert daily.occurrence(datetime(2026, 11, 23, 3, 0)) == datetime(2026, 11, 23, 3, 0)
    assert daily.dedupe_key(datetime(2026, 11, 23, 3, 0)) == "resolve:2026-11-23T03:00"
    six_hourly = Schedule("resolve", timedelta(hours=6), anchor=timedelta(hours=3))
    assert six_hourly.occurrence(datetime(2026, 11, 23, 20, 0)) == datetime(2026, 11, 23, 15, 0)


def test_the_settings_turn_schedules_on_and_off(settings: Settings) -> None:
    assert [s.describe() for s in schedules_for(settings)] == [
        "resolve every 24 h from 03:00 UTC",
        "prune-jobs every 24 h from 00:00 UTC",
        "privacy.retention every 24 h from 02:00 UTC",
        "privacy.request-reminders every 24 h from 07:00 UTC",
        "analytics.scores every 24 h from 04:00 UTC",
        "analytics.recommendations every 24 h from 04:30 UTC",
        "analytics.sentiment every 1 h from 00:10 UTC",
        "analytics.report-emails every 1 h from 00:25 UTC",
        f"analytics.rollups every {1 / 60:g} h from 00:00 UTC",
        f"service.sla every {1 / 60:g} h from 00:00 UTC",
        f"service.surveys every {5 / 60:g} h from 00:00 UTC",
        "service.weakest-link every 24 h from 05:00 UTC",
        "service.nps every 24 h from 10:00 UTC",
        f"loyalty.earn every {5 / 60:g} h from 00:00 UTC",
        "loyalty.expire every 24 h from 01:00 UTC",
        f"segments.recompute every {15 / 60:g} h from 00:00 UTC",
        "sales.pool every 24 h from 01:30 UTC",
        "sales.digest every 1 h from 00:20 UTC",
        f"journeys.run every {1 / 60:g} h from 00:00 UTC",
    ]
    off = settings.model_copy(update={"resolve_every_hours": 0, "jobs_keep_days": 0, "nps_every_days": 0})
    # Retention has no switch: a policy that keeps everything removes nothing (docs/privacy.md).
    assert [s.kind for s in schedules_for(off)] == [
        "privacy.retention",
        "privacy.request-reminders",
        "analytics.scores",
        "analytics.recommendations",
        "analytics.sentiment",
        "analytics.report-emails",
        "analytics.rollups",
        "service.sla",
        "service.surveys",
        "service.weakest-link",
        "loyalty.earn",
        "loyalty.expire",
        "segments.recompute",
        "sales.pool",
        "sales.digest",
        "journeys.run",
    ]


def test_two_schedulers_queue_each_occurrence_once(settings: Settings, db: Database) -> None:
    hourly = [Schedule("tick", timedelta(hours=1))]
    databases = [Database(settings.database_url) for _ in range(2)]
    schedulers = [Scheduler(own, hourly) for own in databases]
    queued: list[str] = []
    lock = threading.Lock()
    hours = 12

    def tick(scheduler: Scheduler, start: threading.Barrier) -> None:
        for hour in range(hours):
            start.wait()
            at = NOW + timedelta(hours=hour, minutes=5)
            for _ in range(3):  # ticking again within the hour queues nothing
                jobs = scheduler.tick(at)
                with lock:
                    queued.extend(job.dedupe_key or "" for job in jobs)

    try:
        start = threading.Barrier(2)
        threads = [threading.Thread(target=tick, args=(s, start)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for own in databases:
            own.dispose()
    assert sorted(queued) == [f"tick:2026-11-23T{12 + h:02d}:00" for h in range(hours)]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == hours
    # A worker started later (its scheduler remembers nothing) finds the occurrence already queued.
    assert Scheduler(db, hourly).tick(NOW + timedelta(hours=hours - 1, minutes=30)) == []


def test_finished_jobs_are_pruned_after_the_days_kept(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    old = enqueue(db, "greet", now=clock())
    recent = enqueue(db, "greet", now=clock())
    waiting = enqueue(db, "later", now=clock())
    assert old is not None and recent is not None and waiting is not None
    background = worker(db, settings, clock, {"greet": recording([])})
    background.run_once()
    clock.advance(days=20)
    background.run_once()
    clock.advance(days=settings.jobs_keep_days - 10, seconds=1)
    keep = settings.model_copy(update={"resolve_every_hours": 0})
    pruning = Worker(db, keep, clock=clock, schedules=schedules_for(keep))
    outcomes = pruning.run_until_idle()
    assert [(o.kind, o.status) for o in outcomes if o.kind == "prune-jobs"] == [("prune-jobs", DONE)]
    left = {job.id for job in list_jobs(db)}
    assert old.id not in left and {recent.id, waiting.id} <= left


@pytest.mark.slow
def test_the_scheduled_resolve_job_runs_identity_resolution(
    db: Database, settings: Settings, clock: MovableClock
) -> None:
    from tests.factories import make_source, send
    from tests.test_resolution import PEOPLE, TWINS, background, identify

    web, store = make_source(db), make_source(db, "store-pos", "store")
    send(db, settings, web, *background(400), *[identify(p) for p in PEOPLE])
    send(db, settings, store, *[identify(p) for p in TWINS])
    daily = [s for s in schedules_for(settings) if s.kind == "resolve"]  # only the resolve schedule
    outcomes = Worker(db, settings, clock=clock, name="w1", schedules=daily).run_until_idle()
    assert [(o.kind, o.status) for o in outcomes] == [("resolve", DONE)], list_jobs(db)[0].last_error
    [job] = list_jobs(db, kind="resolve")
    assert job.dedupe_key == "resolve:2026-11-23T03:00" and job.run_at == datetime(2026, 11, 23, 3)
    with db.read() as session:
        [run] = session.scalars(select(ResolutionRun)).all()
        assert run.status == "done" and run.profiles > 100 and run.started_at == NOW
    # A second worker the same day finds the occurrence taken; the next day's runs again.
    assert Worker(db, settings, clock=clock, name="w2", schedules=daily).run_until_idle() == []
    clock.advance(days=1)
    assert [o.status for o in Worker(db, settings, clock=clock, schedules=daily).run_until_idle()] == [DONE]


# The CLI and the REST API.


@pytest.fixture
def run(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_jobs_enqueue_and_list(run: CliRunner, db: Database) -> None:
    queued = run.invoke(app, ["jobs", "enqueue", "prune-jobs", "--payload", '{"keep_days": 7}'])
    assert queued.exit_code == 0, queued.output
    [job] = list_jobs(db)
    assert queued.output.strip() == f"queued job {job.id} (prune-jobs)" and job.payload == {"keep_days": 7}
    listed = run.invoke(app, ["jobs", "list", "--status", "queued"])
    assert listed.exit_code == 0 and "prune-jobs" in listed.output and "queued: 1" in listed.output
    assert "prune-jobs" not in run.invoke(app, ["jobs", "list", "--status", "done"]).output

    unknown = run.invoke(app, ["jobs", "enqueue", "launch-rockets"])
    assert unknown.exit_code == 1 and unknown.output.startswith("error: kind: must be one of")
    bad_payload = run.invoke(app, ["jobs", "enqueue", "resolve", "--payload", "[1]"])
    assert bad_payload.exit_code == 1 and "payload: must be a JSON object" in bad_payload.output
    bad_status = run.invoke(app, ["jobs", "list", "--status", "stuck"])
    assert bad_status.exit_code == 1 and len(bad_status.output.strip().splitlines()) == 1


def test_the_jobs_api_is_for_admins(db: Database, http: httpx.Client) -> None:
    job = enqueue(db, "resolve", {"why": "test"}, now=NOW, dedupe_key="resolve:2026-11-23T03:00")
    assert job is not None
    admin = {"Authorization": f"Bearer {make_token(db)}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'agent@example.com', 'agent')}"}
    answer = http.get("/api/v1/jobs", headers=admin)
    assert answer.status_code == 200
    [shown] = answer.json()["jobs"]
    assert shown["id"] == job.id and shown["status"] == "queued" and shown["run_at"] == "2026-11-23T12:00:00Z"
    assert answer.json()["counts"] == {"queued": 1, "running": 0, "done": 0, "failed": 0}
    assert http.get("/api/v1/jobs", params={"status": "done"}, headers=admin).json()["jobs"] == []
    bad = http.get("/api/v1/jobs", params={"status": "stuck"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "status"}
    assert http.get("/api/v1/jobs", headers=agent).status_code == 403


# Real processes: `threadline worker` and `threadline serve`.


def wait_for_file(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> None:
    """A job that runs until the test lets it finish (the test creates the file)."""
    while not Path(payload["path"]).exists():
        time.sleep(0.02)


# `threadline worker` with one more kind, as a capability would register it.
WORKER_WITH_TEST_KIND = """
import sys
from threadline.jobs import register
from tests.test_jobs import wait_for_file
register("wait-for-file", wait_for_file)
from threadline.cli.main import app
sys.argv = ["threadline", "worker"]
app()
"""


def until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"exited while waiting for {what}: {log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {log.read_text()}")
        time.sleep(0.05)


@pytest.fixture
def environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "THREADLINE_DATABASE_URL": database_url,
        "THREADLINE_WORKER_POLL_SECONDS": "0.1",
        "THREADLINE_RESOLVE_EVERY_HOURS": "0",  # no resolution run in the background of these tests
        "PYTHONPATH": str(ROOT),
    }


def start(args: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:
        return subprocess.Popen(args, env=environment, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)


def status_of(db: Database, job_id: int) -> str:
    return get_job(db, job_id).status


def test_threadline_worker_runs_a_job_and_exits_cleanly_on_sigterm(
    db: Database, environment: dict[str, str], tmp_path: Path
) -> None:
    job = enqueue(db, "prune-jobs", now=utcnow())
    assert job is not None
    log = tmp_path / "worker.log"
    process = start([sys.executable, "-m", "threadline", "worker"], environment, log)
    try:
        until(lambda: status_of(db, job.id) == DONE, "the job to be done", process, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    said = log.read_text()
    assert f"job {job.id} prune-jobs attempt 1/5: done" in said and "stopped" in said


def test_sigterm_lets_the_running_job_finish_and_a_second_signal_puts_it_back(
    db: Database, environment: dict[str, str], tmp_path: Path
) -> None:
    release = tmp_path / "finish"
    job = enqueue(db, "wait-for-file", {"path": str(release)}, now=utcnow())
    assert job is not None
    log = tmp_path / "worker.log"
    process = start([sys.executable, "-c", WORKER_WITH_TEST_KIND], environment, log)
    try:
        until(lambda: status_of(db, job.id) == RUNNING, "the job to start", process, log)
        process.send_signal(signal.SIGTERM)
        until(lambda: "has 30 s to finish" in log.read_text(), "the worker to stop claiming", process, log)
        assert process.poll() is None and status_of(db, job.id) == RUNNING
        release.touch()  # the job finishes within its grace time
        assert process.wait(timeout=30) == 0
        assert status_of(db, job.id) == DONE

        second = enqueue(db, "wait-for-file", {"path": str(tmp_path / "never")}, now=utcnow())
        assert second is not None
        process = start([sys.executable, "-c", WORKER_WITH_TEST_KIND], environment, log)
        until(lambda: status_of(db, second.id) == RUNNING, "the second job to start", process, log)
        process.send_signal(signal.SIGTERM)
        until(lambda: "has 30 s to finish" in log.read_text(), "the worker to stop claiming", process, log)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    back = get_job(db, second.id)
    assert (back.status, back.attempts, back.locked_by) == (QUEUED, 0, None)
    assert "put back in the queue" in log.read_text()


def test_serve_runs_the_worker_unless_no_worker(
    db: Database, environment: dict[str, str], tmp_path: Path
) -> None:
    job = enqueue(db, "prune-jobs", now=utcnow())
    assert job is not None

    def serve(*options: str) -> tuple[subprocess.Popen[bytes], str, Path]:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        process = start(
            [sys.executable, "-m", "threadline", "serve", "--port", str(port), *options], environment, log
        )

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        until(healthy, "the server to answer", process, log)
        return process, f"http://127.0.0.1:{port}", log

    # The worker starts with the app, before the server answers: without it, nothing says "worker".
    process, _, log = serve("--no-worker")
    try:
        assert "worker" not in log.read_text() and status_of(db, job.id) == QUEUED
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn raises it again once stopped
    finally:
        process.kill()

    process, _, log = serve()
    try:
        assert "started: kinds" in log.read_text()
        until(lambda: status_of(db, job.id) == DONE, "the in-process worker to run the job", process, log)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        process.kill()
    assert " stopped" in log.read_text()  # the app's shutdown stopped the worker
