"""The background worker: tick the schedules, claim a due job, run it, record the outcome; repeat.

`threadline worker` runs one in the main thread of its own process (any number of them against
PostgreSQL); `threadline serve` runs one in a thread next to the web app (`WorkerThread`). While a job
runs, a lease keeper renews its lease, so a long job is never taken over from a live worker; a worker
that dies stops renewing, and its job is claimed again once the lease runs out.

Logs say which job (id, kind), how long it took and how it ended, and the error's type; never a payload
or an error message, which can hold personal data (the message is kept on the job, for admins).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from threadline.clock import Clock, utcnow
from threadline.config import Settings
from threadline.jobs.kinds import Handler, handlers
from threadline.jobs.queue import (
    DONE,
    FAILED,
    QUEUED,
    Claim,
    claim,
    complete,
    record_failure,
    release,
    renew_lease,
)
from threadline.jobs.schedules import Schedule, Scheduler, schedules_for
from threadline.storage import Database

log = logging.getLogger(__name__)

RELEASED, LOST = "released", "lost"


class JobInterrupted(BaseException):
    """Raised into a running job to stop it now: the worker is shutting down and will not wait for it.
    A BaseException, so that handlers' `except Exception` blocks let it through."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one run of a job ended: done, queued (to be retried), failed, released, or lost (the lease
    ran out and another worker took the job over, so this run's result was not recorded)."""

    job_id: int
    kind: str
    attempt: int
    status: str
    seconds: float
    error: str | None = None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[-100:]


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        kinds: Mapping[str, Handler] | None = None,
        schedules: list[Schedule] | None = None,
        name: str | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.kinds = dict(handlers() if kinds is None else kinds)
        self.schedules = [
            s for s in (schedules_for(settings) if schedules is None else schedules) if s.kind in self.kinds
        ]
        self.scheduler = Scheduler(db, self.schedules, max_attempts=settings.job_max_attempts)
        self.name = name or worker_name()
        self.lease = timedelta(seconds=settings.job_lease_seconds)
        self.retry_base = timedelta(seconds=settings.job_retry_seconds)
        self.stopping = threading.Event()
        self.current: Claim | None = None  # the job this worker holds
        self.in_handler = False  # a job's own code is running: the signal handler may interrupt it

    def stop(self) -> None:
        """Claim nothing more; `run` returns once the current job (if any) has ended."""
        self.stopping.set()

    def run(self) -> None:
        """Work until `stop`: run due jobs; when none is due, wait THREADLINE_WORKER_POLL_SECONDS."""
        log.info(
            "worker %s started: kinds %s; schedules: %s",
            self.name,
            ", ".join(sorted(self.kinds)),
            "; ".join(s.describe() for s in self.schedules) or "none",
        )
        while not self.stopping.is_set():
            try:
                outcome = self.run_once()
            except Exception as error:  # the database went away, say: keep the worker, try again later
                log.warning("worker %s: %s; trying again", self.name, type(error).__name__)
                outcome = None
            if outcome is None:
                self.stopping.wait(self.settings.worker_poll_seconds)
        log.info("worker %s stopped", self.name)

    def run_once(self) -> Outcome | None:
        """Queue due occurrences of the schedules, then run one due job; None when none was due."""
        now = self.clock()
        self.scheduler.tick(now)
        claimed = claim(self.db, self.name, sorted(self.kinds), now=now, lease=self.lease)
        if claimed is None:
            return None
        if self.stopping.is_set():  # told to stop while claiming: leave the job to another worker
            release(self.db, claimed)
            return None
        return self.execute(claimed)

    def run_until_idle(self, limit: int = 1000) -> list[Outcome]:
        """Run due jobs until none is due (tests, and draining a queue by hand)."""
        outcomes: list[Outcome] = []
        while len(outcomes) < limit and (outcome := self.run_once()) is not None:
            outcomes.append(outcome)
        return outcomes

    def execute(self, job: Claim) -> Outcome:
        """Run a claimed job and record how it ended."""
        self.current = job
        keeper = _LeaseKeeper(self, job)
        keeper.start()
        started = time.monotonic()
        try:
            try:
                self.in_handler = True
                summary = self.kinds[job.kind](self.db, self.settings, dict(job.payload), self.clock)
            finally:
                self.in_handler = False
                keeper.stop()
        except (JobInterrupted, KeyboardInterrupt):
            released = release(self.db, job)
            self._log(job, RELEASED if released else LOST, started)
            raise
        except Exception as error:
            status = record_failure(
                self.db,
                job,
                f"{type(error).__name__}: {error}",
                now=self.clock(),
                retry_base=self.retry_base,
            )
            return self._log(job, status or LOST, started, error=type(error).__name__)
        else:
            done = complete(self.db, job, now=self.clock())
            return self._log(job, DONE if done else LOST, started, summary=summary)
        finally:
            self.current = None

    def _log(
        self,
        job: Claim,
        status: str,
        started: float,
        *,
        error: str | None = None,
        summary: Mapping[str, int] | None = None,
    ) -> Outcome:
        seconds = time.monotonic() - started
        said = {
            DONE: "done",
            QUEUED: f"failed ({error}), will retry",
            FAILED: f"failed ({error}), no attempts left",
            RELEASED: "stopped and put back in the queue",
            LOST: "ended after its lease ran out and another worker took it; outcome not recorded",
        }[status]
        counts = f": {', '.join(f'{k}={v}' for k, v in summary.items())}" if summary else ""
        level = logging.INFO if status in (DONE, RELEASED) else logging.WARNING
        log.log(
            level,
            "job %d %s attempt %d/%d: %s (%.2f s)%s",
            job.id,
            job.kind,
            job.attempt,
            job.max_attempts,
            said,
            seconds,
            counts,
        )
        return Outcome(job.id, job.kind, job.attempt, status, seconds, error)


class _LeaseKeeper:
    """Renews the lease of a running job every third of the lease, until the job ends."""

    def __init__(self, worker: Worker, job: Claim) -> None:
        self.worker = worker
        self.job = job
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"threadline-lease-{job.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._ended.set()
        self._thread.join()

    def _run(self) -> None:
        worker, job = self.worker, self.job
        while not self._ended.wait(worker.lease.total_seconds() / 3):
            try:
                kept = renew_lease(worker.db, job, now=worker.clock(), lease=worker.lease)
            except Exception as error:  # the next renewal may get through before the lease runs out
                log.warning("job %d: could not renew its lease (%s)", job.id, type(error).__name__)
                continue
            if not kept:
                log.warning("job %d: its lease ran out and another worker took it over", job.id)
                return


class WorkerThread:
    """The worker inside `threadline serve`: started and stopped with the web app."""

    def __init__(self, db: Database, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.worker = Worker(db, settings, clock=clock)
        self._thread = threading.Thread(target=self._run, name="threadline-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Let the current job finish for up to THREADLINE_WORKER_SHUTDOWN_SECONDS; if it has not by then,
        put it back in the queue (the thread cannot be interrupted; it ends with the process)."""
        self.worker.stop()
        self._thread.join(self.worker.settings.worker_shutdown_seconds)
        job = self.worker.current
        if self._thread.is_alive() and job is not None and release(self.worker.db, job):
            log.info("job %d %s put back in the queue: the server is stopping", job.id, job.kind)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as error:
            log.error("worker %s stopped on %s", self.worker.name, type(error).__name__)
