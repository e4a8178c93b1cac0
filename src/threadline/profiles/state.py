"""The unified profile as it is being written: traits by event time, channels, counts.

Ingestion loads the profiles a batch touches into ProfileState objects, changes them in memory and
writes each one back once (see threadline.ingest.pipeline), so a batch of 100 events about one
customer costs one profile update, not a hundred.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NAME_KEYS = ("name", "full_name", "fullName")
FIRST_NAME_KEYS = ("first_name", "firstName")
LAST_NAME_KEYS = ("last_name", "lastName")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass(slots=True)
class TraitObservation:
    """A trait value that changed what the profile knew; becomes a trait_history row."""

    key: str
    value: Any
    observed_at: datetime


# A stored event as a profile sees it: (channel, event time, the traits it carried, source name).
RecordedEvent = tuple[str, datetime, dict[str, Any], str]


@dataclass(slots=True)
class ProfileState:
    id: str
    created_at: datetime
    first_seen: datetime
    last_seen: datetime
    event_count: int = 0
    traits: dict[str, Any] = field(default_factory=dict)
    trait_meta: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    merged_into: str | None = None
    merged_at: datetime | None = None
    owner_id: int | None = None
    tags: list[str] = field(default_factory=list)
    is_new: bool = False
    dirty: bool = False

    @classmethod
    def new(cls, profile_id: str, at: datetime, now: datetime) -> ProfileState:
        return cls(id=profile_id, created_at=now, first_seen=at, last_seen=at, is_new=True, dirty=True)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProfileState:
        """From a `profiles` row as Core returns it."""
        return cls(
            id=row["id"],
            created_at=row["created_at"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            event_count=row["event_count"],
            traits=dict(row["traits"] or {}),
            trait_meta=dict(row["trait_meta"] or {}),
            channels={k: dict(v) for k, v in (row["channels"] or {}).items()},
            merged_into=row["merged_into"],
            merged_at=row["merged_at"],
            owner_id=row["owner_id"],
            tags=list(row["tags"] or []),
        )

    @classmethod
    def rebuilt(
        cls, row: Mapping[str, Any], events: Iterable[RecordedEvent]
    ) -> tuple[ProfileState, list[list[TraitObservation]]]:
        """The profile as ingestion builds it from `events`, replayed in arrival order: counts, channels,
        first and last seen, traits and the source and time behind each; with the trait history each
        event would have written (per event, in order). Its id, created_at, owner and tags come from
        `row`. Without events the row is kept as it is (a profile merged away in the batch that started
        it has none).

        An unmerge rebuilds both profiles this way (identity/unmerge.py), so what each one shows follows
        from the rows it keeps by the same rules as ingestion, whatever the merges in between did.
        """
        state = cls.from_row(row)
        replay = list(events)
        if not replay:
            return state, []
        state.event_count = 0
        state.channels, state.traits, state.trait_meta = {}, {}, {}
        state.first_seen = state.last_seen = replay[0][1]
        observed: list[list[TraitObservation]] = []
        for channel, at, traits, source in replay:
            state.record_event(channel, at)
            observed.append(state.apply_traits(traits, at, source))
        state.dirty = True
        return state, observed

    def record_event(self, channel: str, at: datetime) -> None:
        self.event_count += 1
        self.first_seen = min(self.first_seen, at)
        self.last_seen = max(self.last_seen, at)
        stamp = _iso(at)
        seen = self.channels.get(channel)
        if seen is None:
            self.channels[channel] = {"first_seen": stamp, "last_seen": stamp, "events": 1}
        else:
            seen["events"] += 1
            seen["first_seen"] = min(seen["first_seen"], stamp)
            seen["last_seen"] = max(seen["last_seen"], stamp)
        self.dirty = True

    def apply_traits(self, traits: dict[str, Any], at: datetime, source: str) -> list[TraitObservation]:
        """Take each trait whose event time is not older than the shown value's; return what changed.

        A value equal to the shown one is not history (an app re-sending the same traits on every
        launch would drown the real changes); an older, different value is history but does not win.
        """
        observed: list[TraitObservation] = []
        stamp = _iso(at)
        for key, value in traits.items():
            current_meta = self.trait_meta.get(key)
            if current_meta is None:
                self.traits[key] = value
                self.trait_meta[key] = [stamp, source]
                observed.append(TraitObservation(key, value, at))
                continue
            if self.traits.get(key) == value:
                if stamp > current_meta[0]:
                    self.trait_meta[key] = [stamp, source]
                continue
            observed.append(TraitObservation(key, value, at))
            if stamp >= current_meta[0]:
                self.traits[key] = value
                self.trait_meta[key] = [stamp, source]
        if observed:
            self.dirty = True
        return observed

    def absorb(self, other: ProfileState, at: datetime) -> None:
        """Fold a merged profile into this one: latest trait by event time wins, counts add up."""
        for key, value in other.traits.items():
            theirs = other.trait_meta.get(key, ["", ""])
            mine = self.trait_meta.get(key)
            if mine is None or theirs[0] > mine[0]:
                self.traits[key] = value
                self.trait_meta[key] = theirs
        for channel, seen in other.channels.items():
            mine_seen = self.channels.get(channel)
            if mine_seen is None:
                self.channels[channel] = dict(seen)
            else:
                mine_seen["events"] += seen["events"]
                mine_seen["first_seen"] = min(mine_seen["first_seen"], seen["first_seen"])
                mine_seen["last_seen"] = max(mine_seen["last_seen"], seen["last_seen"])
        # The survivor keeps its owner; an unowned survivor takes the other's. Tags add up.
        if self.owner_id is None:
            self.owner_id = other.owner_id
        self.tags += [tag for tag in other.tags if tag not in self.tags]
        self.event_count += other.event_count
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.dirty = True
        other.merged_into = self.id
        other.merged_at = at
        other.dirty = True

    @property
    def display_name(self) -> str | None:
        return display_name(self.traits)

    def row(self) -> dict[str, Any]:
        name = self.display_name
        return {
            "id": self.id,
            "created_at": self.created_at,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "event_count": self.event_count,
            "display_name": name,
            "search_name": name.lower() if name else None,
            "traits": self.traits,
            "trait_meta": self.trait_meta,
            "channels": self.channels,
            "merged_into": self.merged_into,
            "merged_at": self.merged_at,
            "owner_id": self.owner_id,
            "tags": self.tags,
        }


def display_name(traits: dict[str, Any]) -> str | None:
    for key in NAME_KEYS:
        value = traits.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    first = next((traits[k] for k in FIRST_NAME_KEYS if isinstance(traits.get(k), str)), "")
    last = next((traits[k] for k in LAST_NAME_KEYS if isinstance(traits.get(k), str)), "")
    joined = f"{first} {last}".strip()
    return joined[:200] or None
