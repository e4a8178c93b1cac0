"""Loading the demo data set: sources, batches through the one write path, and what came of it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select

from threadline.clock import utcnow
from threadline.config import Settings
from threadline.demo.channels import write_history
from threadline.demo.histories import SOURCES
from threadline.demo.personas import LOCALES, Customers
from threadline.errors import Invalid
from threadline.ingest import SourceInfo, create_source, ingest, list_sources
from threadline.storage import Database
from threadline.storage.models import Identity

BATCH = 400  # messages per ingest call: big enough to amortise a transaction, small enough to stay brisk
_LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class DemoReport:
    customers: int
    fuzzy_duplicates: int
    messages: int  # sent through ingest
    stored: int  # new events
    already_stored: int  # duplicates of an earlier run with the same seed
    rejected: int
    identifiers: int  # distinct identifiers the messages carry
    profiles: int  # live profiles those identifiers belong to after stitching
    sources: tuple[str, ...]
    locale: str
    seed: int

    def __str__(self) -> str:
        rejected = f", {self.rejected:,} rejected" if self.rejected else ""
        return (
            f"{_many(self.customers, 'customer')} ({_many(self.fuzzy_duplicates, 'fuzzy duplicate')}, "
            f"locale {self.locale}, seed {self.seed}): {_many(self.messages, 'message')} sent "
            f"({self.stored:,} new, {self.already_stored:,} already stored{rejected}), "
            f"{_many(self.identifiers, 'identifier')} stitched into {_many(self.profiles, 'profile')}, "
            f"sources: {', '.join(self.sources)}"
        )


def _many(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def generate_demo(
    db: Database, settings: Settings, *, customers: int, seed: int, locale: str, progress: bool
) -> DemoReport:
    """Send `customers` multi-channel histories through ingest; the same seed stores nothing twice."""
    if locale not in LOCALES:
        raise Invalid(f"locale: must be one of {', '.join(LOCALES)}", details={"field": "locale"})
    if customers < 1:
        raise Invalid("customers: must be at least 1", details={"field": "customers"})
    sources = _ensure_sources(db)
    people = Customers(seed, locale)
    now = utcnow()
    outbox: dict[str, list[dict[str, Any]]] = defaultdict(list)
    identifiers: set[tuple[str, str]] = set()
    totals = {"messages": 0, "stored": 0, "already_stored": 0, "rejected": 0, "fuzzy_duplicates": 0}

    def send_all() -> None:
        for name, _channel in SOURCES:
            queued = outbox.pop(name, [])
            for start in range(0, len(queued), BATCH):
                batch = queued[start : start + BATCH]
                result = ingest(db, sources[name], batch, settings=settings, received_at=utcnow())
                totals["messages"] += len(batch)
                totals["stored"] += result.accepted
                totals["already_stored"] += result.duplicates
                totals["rejected"] += len(result.rejected)

    with _progress_bar(progress, customers) as advance:
        waiting = 0
        for index in range(customers):
            customer = people.customer(index)
            totals["fuzzy_duplicates"] += customer.twin is not None
            history = write_history(customer, seed=seed, locale=locale, now=now)
            identifiers |= history.identifiers
            for name, message in history.messages:
                outbox[name].append(message)
            waiting += 1
            # Whole customers per round, every source in SOURCES order: a customer's channels then
            # stitch onto the profile the richest channel started, instead of merging afterwards.
            if len(outbox["website"]) >= BATCH or sum(map(len, outbox.values())) >= 4 * BATCH:
                send_all()
                advance(waiting)
                waiting = 0
        send_all()
        advance(waiting)

    return DemoReport(
        customers=customers,
        fuzzy_duplicates=totals["fuzzy_duplicates"],
        messages=totals["messages"],
        stored=totals["stored"],
        already_stored=totals["already_stored"],
        rejected=totals["rejected"],
        identifiers=len(identifiers),
        profiles=_count_profiles(db, identifiers),
        sources=tuple(name for name, _ in SOURCES),
        locale=locale,
        seed=seed,
    )


def _ensure_sources(db: Database) -> dict[str, SourceInfo]:
    existing = {source.name: source for source in list_sources(db)}
    for name, channel in SOURCES:
        if name not in existing:
            existing[name] = create_source(db, name, channel, now=utcnow())
    return existing


def _count_profiles(db: Database, identifiers: set[tuple[str, str]]) -> int:
    by_kind: dict[str, list[str]] = defaultdict(list)
    for kind, value in identifiers:
        by_kind[kind].append(value)
    profiles: set[str] = set()
    with db.read() as session:
        for kind, values in by_kind.items():
            for start in range(0, len(values), _LOOKUP_CHUNK):
                chunk = values[start : start + _LOOKUP_CHUNK]
                query = select(Identity.profile_id).where(Identity.kind == kind, Identity.value.in_(chunk))
                profiles.update(session.scalars(query))
    return len(profiles)


@contextmanager
def _progress_bar(show: bool, total: int) -> Iterator[Callable[[int], None]]:
    if not show:
        yield lambda _count: None
        return
    columns = (TextColumn("demo customers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("demo", total=total)
        yield lambda count: bar.advance(task, count)
