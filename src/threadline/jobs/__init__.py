"""Background jobs: a durable queue in the database, recurring schedules, and the worker that runs them.

`enqueue` queues work; workers (`threadline worker`, or the thread in `threadline serve`) claim due jobs
under a lease, run them outside any transaction and record the outcome, retrying failures with
exponential backoff. See docs/worker.md.
"""

from threadline.jobs.kinds import Handler, check_kind, handlers, register
from threadline.jobs.queue import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    STATUSES,
    Claim,
    JobInfo,
    check_status,
    claim,
    complete,
    count_jobs,
    enqueue,
    enqueue_in,
    get_job,
    list_jobs,
    prune_finished,
    record_failure,
    release,
    renew_lease,
    retry_delay,
)
from threadline.jobs.schedules import Schedule, Scheduler, schedules_for
from threadline.jobs.worker import JobInterrupted, Outcome, Worker, WorkerThread, worker_name

__all__ = [
    "DONE",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "STATUSES",
    "Claim",
    "Handler",
    "JobInfo",
    "JobInterrupted",
    "Outcome",
    "Schedule",
    "Scheduler",
    "Worker",
    "WorkerThread",
    "check_kind",
    "check_status",
    "claim",
    "complete",
    "count_jobs",
    "enqueue",
    "enqueue_in",
    "get_job",
    "handlers",
    "list_jobs",
    "prune_finished",
    "record_failure",
    "register",
    "release",
    "renew_lease",
    "retry_delay",
    "schedules_for",
    "worker_name",
]
