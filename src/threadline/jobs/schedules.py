"""Recurring jobs: which kinds run every how long, from the settings.

A schedule's occurrences are fixed instants (UTC): `anchor` after midnight, then every `every`. Each
worker ticks a `Scheduler`, which queues the latest occurrence that has come with a dedupe key naming it
(`resolve:2026-11-23T03:00`); the unique key lets the first worker's insert through and turns every other
worker's into a no-op, so an occurrence runs once however many workers there are. An occurrence missed
while no worker ran is queued when one starts; older missed ones are not made up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from threadline.config import Settings
from threadline.jobs.queue import JobInfo, enqueue
from threadline.storage import Database

# Occurrences count from here; any midnight would do.
_EPOCH = datetime(2000, 1, 1)


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: str
    every: timedelta
    anchor: timedelta = timedelta(0)  # after midnight UTC
    payload: Mapping[str, Any] = field(default_factory=dict)

    def occurrence(self, now: datetime) -> datetime:
        """The latest scheduled instant at or before `now`."""
        start = _EPOCH + self.anchor
        return start + ((now - start) // self.every) * self.every

    def dedupe_key(self, occurrence: datetime) -> str:
        return f"{self.kind}:{occurrence:%Y-%m-%dT%H:%M}"

    def describe(self) -> str:
        hours = self.every / timedelta(hours=1)
        return f"{self.kind} every {hours:g} h from {_EPOCH + self.anchor:%H:%M} UTC"


def schedules_for(settings: Settings) -> list[Schedule]:
    """The recurring jobs the settings turn on. A capability with a recurring job adds it here."""
    schedules = []
    if settings.resolve_every_hours:
        schedules.append(
            Schedule(
                "resolve",
                timedelta(hours=settings.resolve_every_hours),
                anchor=timedelta(hours=settings.resolve_at_hour),
            )
        )
    if settings.jobs_keep_days:
        schedules.append(Schedule("prune-jobs", timedelta(days=1)))
    # Always on: the workspace's policy (threadline.privacy) says what expires, keeping all turns it off.
    schedules.append(Schedule("privacy.retention", timedelta(days=1), anchor=timedelta(hours=2)))
    # Data subject requests due within a week get a reminder in their log (and on the page) each day.
    schedules.append(Schedule("privacy.request-reminders", timedelta(days=1), anchor=timedelta(hours=7)))
    # CLV and churn risk refitted on yesterday's complete data, after resolution has merged duplicates.
    schedules.append(Schedule("analytics.scores", timedelta(days=1), anchor=timedelta(hours=4)))
    # Next-best products from yesterday's complete data; sentiment hourly, so the weakest-link alarm and the
    # channel figures lag a message by an hour at most.
    schedules.append(
        Schedule("analytics.recommendations", timedelta(days=1), anchor=timedelta(hours=4, minutes=30))
    )
    schedules.append(Schedule("analytics.sentiment", timedelta(hours=1), anchor=timedelta(minutes=10)))
    # Scheduled Insight reports: hourly, each copy once a week at its hour in the recipient's time zone.
    schedules.append(Schedule("analytics.report-emails", timedelta(hours=1), anchor=timedelta(minutes=25)))
    # The dashboards' daily rollups each minute: what they have not read yet, charts read live.
    schedules.append(Schedule("analytics.rollups", timedelta(minutes=1)))
    # SLA warnings and breaches to the minute; surveys shortly after a conversation is resolved.
    schedules.append(Schedule("service.sla", timedelta(minutes=1)))
    schedules.append(Schedule("service.surveys", timedelta(minutes=5)))
    # After the scores and before the working day in Europe and Asia: flags the owners see in the morning.
    schedules.append(Schedule("service.weakest-link", timedelta(days=1), anchor=timedelta(hours=5)))
    if settings.nps_every_days:
        schedules.append(Schedule("service.nps", timedelta(days=1), anchor=timedelta(hours=10)))
    # Points a few minutes after the purchase; expiry (and tiers past their holding period) daily at 01:00.
    schedules.append(Schedule("loyalty.earn", timedelta(minutes=5)))
    schedules.append(Schedule("loyalty.expire", timedelta(days=1), anchor=timedelta(hours=1)))
    # Segment memberships recomputed in full; ingestion refreshes the customers it touches in between.
    schedules.append(Schedule("segments.recompute", timedelta(minutes=15)))
    # Neglected accounts back to the pool before the working day; digests hourly, each user's once in
    # their own morning (threadline.sales decides whose morning it is).
    schedules.append(Schedule("sales.pool", timedelta(days=1), anchor=timedelta(hours=1, minutes=30)))
    schedules.append(Schedule("sales.digest", timedelta(hours=1), anchor=timedelta(minutes=20)))
    # Journeys every minute: a wait of an hour is an hour and a minute at most.
    schedules.append(Schedule("journeys.run", timedelta(minutes=1)))
    return schedules


class Scheduler:
    """Queues each schedule's occurrences as they come. It remembers the last occurrence it queued (or
    found queued), so a tick between occurrences costs no database round trip."""

    def __init__(self, db: Database, schedules: list[Schedule], *, max_attempts: int = 5) -> None:
        self.db = db
        self.schedules = schedules
        self.max_attempts = max_attempts
        self._queued: dict[str, datetime] = {}

    def tick(self, now: datetime) -> list[JobInfo]:
        """Queue the occurrences due at `now` that no one has queued; answers the jobs this call queued."""
        queued = []
        for schedule in self.schedules:
            occurrence = schedule.occurrence(now)
            key = schedule.dedupe_key(occurrence)
            if self._queued.get(schedule.kind) == occurrence:
                continue
            job = enqueue(
                self.db,
                schedule.kind,
                schedule.payload,
                now=now,
                run_at=occurrence,
                dedupe_key=key,
                max_attempts=self.max_attempts,
            )
            self._queued[schedule.kind] = occurrence
            if job is not None:
                queued.append(job)
        return queued
