"""`threadline worker`: the background worker alone, in the foreground, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from threadline.cli.common import database, one_line_errors
from threadline.config import get_settings
from threadline.jobs import JobInterrupted, Worker

log = logging.getLogger("threadline.jobs.worker")


def log_to_stderr() -> None:
    """Threadline's log lines (the worker's: job, kind, duration, outcome) on stderr, at INFO. Uvicorn
    configures only its own loggers."""
    logger = logging.getLogger("threadline")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@one_line_errors
def worker() -> None:
    """Run the background worker until SIGTERM or SIGINT (Ctrl-C). It finishes the job it is running
    first, for THREADLINE_WORKER_SHUTDOWN_SECONDS at most; a second signal stops it at once. A job it
    stops goes back in the queue. Run as many as you like against PostgreSQL."""
    settings = get_settings()
    log_to_stderr()
    with database() as db:
        background = Worker(db, settings)
        _stop_on_signals(background, settings.worker_shutdown_seconds)
        try:
            background.run()
        except JobInterrupted:
            log.info("worker %s stopped", background.name)
        finally:
            if hasattr(signal, "SIGALRM"):
                signal.alarm(0)  # the grace period of a job that ended on time


def _stop_on_signals(background: Worker, grace: int) -> None:
    """First signal: claim nothing more and let the current job finish within `grace` seconds.
    Second signal, or the grace ran out: interrupt the job (Worker.execute puts it back in the queue)."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        if background.in_handler:
            raise JobInterrupted

    def stop(signum: int, frame: FrameType | None) -> None:
        if background.stopping.is_set():
            interrupt(signum, frame)
            return
        background.stop()
        job = background.current
        if job is None or not background.in_handler:
            return
        if grace == 0 or not hasattr(signal, "SIGALRM"):
            raise JobInterrupted
        log.info(
            "worker %s stopping: job %d %s has %d s to finish (signal again to stop it now)",
            background.name,
            job.id,
            job.kind,
            grace,
        )
        signal.alarm(grace)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, interrupt)
