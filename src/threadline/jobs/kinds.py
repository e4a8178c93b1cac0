"""Job kinds: what a job of each kind runs.

A handler is `handler(db, settings, payload, clock)`; it may answer counts (never personal data) that
the worker logs with the outcome. A job can run more than once (its worker stopped half-way, it failed
and is retried), so a handler must be safe to run again.

The built-in handlers import the package that does the work only when a job of their kind runs: a
worker starts without loading, say, the resolver's DuckDB and Splink, and a package that queues jobs
of its own can import threadline.jobs without an import cycle. A capability with background work adds
its kind to `_KINDS` (or calls `register` when it is imported).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from threadline.clock import Clock
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.jobs.queue import prune_finished
from threadline.storage import Database

Handler = Callable[[Database, Settings, dict[str, Any], Clock], Mapping[str, int] | None]


def resolve(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> Mapping[str, int]:
    """Batch identity resolution with the workspace's thresholds (`threadline resolve`)."""
    from threadline.resolution import run_resolution

    run = run_resolution(db, now=clock)
    return {"run": run.id, "profiles": run.profiles, "merged": run.merged, "queued": run.queued}


def prune_jobs(db: Database, settings: Settings, payload: dict[str, Any], clock: Clock) -> Mapping[str, int]:
    """Delete jobs that finished more than THREADLINE_JOBS_KEEP_DAYS ago."""
    days = int(payload.get("keep_days", settings.jobs_keep_days))
    if days <= 0:
        return {"deleted": 0}
    return {"deleted": prune_finished(db, before=clock() - timedelta(days=days))}


def privacy_retention(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Remove what the workspace's retention policy says has expired; answers rows removed per class."""
    from threadline.privacy import apply_retention

    # Someone's "run now" names them (an ID, no personal data); the daily run names no one.
    requested_by = payload.get("requested_by")
    report = apply_retention(
        db,
        now=clock(),
        via=str(payload.get("via", "worker")),
        requested_by=requested_by if isinstance(requested_by, int) else None,
    )
    return report.counts()


def privacy_request_reminders(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Log a reminder on every open data subject request due within a week (privacy/requests.py)."""
    from threadline.privacy import remind_due

    return {"reminded": len(remind_due(db, now=clock()))}


def messaging_send(
    db: Database, settings: Settings, payload: dict[str, Any], clock: Clock
) -> Mapping[str, int]:
    """Send one queued outbound message, checking consent again (threadline.messaging); answers its
    outcome (`{"sent": 1}`). Raises DeliveryDeferred, so the job is retried, when the relay may take
    it later."""
    from threadline.messaging import deliver_message

    return {deliver_message(db, settings, int(payload["message_id"]), clock=clock): 1}


_KINDS: dict[str, Handler] = {
    "resolve": resolve,
    "prune-jobs": prune_jobs,
    "privacy.retention": privacy_retention,
    "privacy.request-reminders": privacy_request_reminders,
    "messaging.send": messaging_send,
}


def register(kind: str, handler: Handler) -> None:
    _KINDS[kind] = handler


def handlers() -> dict[str, Handler]:
    """Every kind this process can run, with its handler."""
    return dict(_KINDS)


def check_kind(kind: str) -> str:
    if kind not in _KINDS:
        raise Invalid(f"kind: must be one of {', '.join(sorted(_KINDS))}", details={"field": "kind"})
    return kind
