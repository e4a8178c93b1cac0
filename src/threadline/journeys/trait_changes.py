"""The trait-change trigger, inside the write path: ingest's `_store` (threadline.ingest.pipeline), the one
place a profile's traits are written, asks `watch_traits` once per batch and, only when an active journey
watches a trait, notes each watched trait whose shown value the batch changes; the enrollments are
inserted in the batch's own transaction, so they exist exactly when the change does.

A write that leaves the shown value as it was (an app re-sending its traits, a value the trait's
survivorship rule does not pick) is no change and enrols no one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from threadline.journeys.enrolment import ActiveJourney, active_journeys, enrol

_UNSET = object()  # a trait the profile did not have: `from: null` matches it


@dataclass(frozen=True, slots=True)
class TraitChanged:
    profile_id: str
    trait: str
    before: Any
    after: Any
    at: datetime
    origin: str  # the message that changed it: the entry key of journeys entered again


def _matches(trigger: dict[str, Any], change: TraitChanged) -> bool:
    if trigger["trait"] != change.trait:
        return False
    before = None if change.before is _UNSET else change.before
    if "from" in trigger and trigger["from"] != before:
        return False
    return "to" not in trigger or trigger["to"] == change.after


@dataclass(slots=True)
class TraitWatch:
    journeys: list[ActiveJourney]
    traits: frozenset[str]
    changes: list[TraitChanged] = field(default_factory=list)

    def before(self, shown: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
        """The shown values of the watched traits a message is about to write (usually none)."""
        return {key: shown.get(key, _UNSET) for key in self.traits.intersection(incoming)}

    def note(
        self, profile_id: str, before: dict[str, Any], shown: Mapping[str, Any], at: datetime, origin: str
    ) -> None:
        for key, old in before.items():
            new = shown.get(key, _UNSET)
            if new != old:
                self.changes.append(TraitChanged(profile_id, key, old, new, at, origin))

    def enrol(self, conn: Connection, resolve: Callable[[str], str]) -> int:
        """Enrol the noted changes' customers (merged as the batch merged them) in the journeys they match."""
        enrolled = 0
        for change in self.changes:
            for journey in self.journeys:
                if change.at < journey.activated_at or not _matches(journey.trigger, change):
                    continue
                after = None if change.after is _UNSET else change.after
                before = None if change.before is _UNSET else change.before
                context = {
                    "trigger": "trait",
                    "event": {"trait": change.trait, "from": before, "to": after},
                }
                # Entry keys hold 40 characters; a message id alone may hold 100.
                digest = hashlib.sha256(f"{change.origin}:{change.trait}".encode()).hexdigest()[:32]
                profile_id = resolve(change.profile_id)
                enrolled += enrol(conn, journey, profile_id, f"trait:{digest}", context, at=change.at)
        self.changes.clear()
        return enrolled


def watch_traits(conn: Connection) -> TraitWatch | None:
    """The active journeys with a trait-change trigger, or None (then the write path does nothing more)."""
    journeys = active_journeys(conn, ("trait",))
    if not journeys:
        return None
    return TraitWatch(journeys, frozenset(str(j.trigger["trait"]) for j in journeys))
