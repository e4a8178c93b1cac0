"""The unified profile as it is being written: traits by the workspace's survivorship rules, channels,
counts.

Ingestion loads the profiles a batch touches into ProfileState objects, changes them in memory and
writes each one back once (see threadline.ingest.pipeline), so a batch of 100 events about one
customer costs one profile update, not a hundred. Which observed value of a trait is shown is decided
here, for ingestion, merges, an unmerge's replay and a recompute alike, by threadline.profiles.golden.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from threadline.profiles.golden import (
    MAX_KEY,
    RECENT,
    GoldenRules,
    combine,
    copied,
    counted,
    meta_for,
    observe,
    seed_from_history,
    seen_of,
    settle,
)

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
        cls, row: Mapping[str, Any], events: Iterable[RecordedEvent], rules: GoldenRules
    ) -> tuple[ProfileState, list[list[TraitObservation]]]:
        """The profile as ingestion builds it from `events`, replayed in arrival order: counts, channels,
        first and last seen, traits and the source and time behind each; with the trait history each
        event would have written (per event, in order). Its id, created_at, owner and tags come from
        `row`. Without events the row is kept as it is (a profile merged away in the batch that started
        it has none).

        An unmerge rebuilds both profiles this way (identity/unmerge.py), so what each one shows follows
        from the rows it keeps by the same rules as ingestion (`rules`, the workspace's survivorship
        rules), whatever the merges in between did.
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
            observed.append(state.apply_traits(traits, at, source, rules))
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

    def apply_traits(
        self, traits: dict[str, Any], at: datetime, source: str, rules: GoldenRules
    ) -> list[TraitObservation]:
        """Count each trait's value and show the one its rule picks (threadline.profiles.golden); return
        the values that differed from the shown one, which become trait history.

        A value equal to the shown one is not history (an app re-sending the same traits on every
        launch would drown the real changes), though it counts; a different value is history whether
        it wins or not.
        """
        observed: list[TraitObservation] = []
        stamp = _iso(at)
        rule_for = rules.rules.get  # GoldenRules.rule_for, without a call per trait
        for key, value in traits.items():
            meta = self.trait_meta.get(key)
            rule = rule_for(key, RECENT)
            if meta is None:
                self.traits[key] = value
                self.trait_meta[key] = [stamp, source, rule, 1]  # seen once: golden.meta_for
                observed.append(TraitObservation(key, value, at))
                continue
            shown = self.traits.get(key)
            if shown != value:
                observed.append(TraitObservation(key, value, at))
            elif len(meta) > 3 and meta[1] == source and meta[2] == rule:
                # The shown value again from the source it is shown from (an app re-sending its traits):
                # it counts once more and stays shown under every rule. Its entry, if `seen` is a list,
                # is the one that last took a time, so the last.
                if isinstance(meta[3], int):
                    meta[3] += 1
                    if stamp >= meta[0]:
                        meta[0] = stamp
                    continue
                mine = meta[3][-1]
                if mine[1] == source and mine[0] == value:
                    mine[2] += 1
                    if stamp >= mine[3]:
                        mine[3] = meta[0] = stamp
                    continue
            seen = seen_of(meta, shown)
            observe(seen, value, source, stamp)
            winner = settle(seen, rule, rules)
            self.traits[key] = winner[0]
            self.trait_meta[key] = meta_for(winner, rule, seen, counts=counted(meta))
        if traits:
            self.dirty = True
        return observed

    def repick(self, rules: GoldenRules, history: Mapping[str, list[tuple[Any, str, str]]]) -> bool:
        """Show each trait's value as `rules` pick it now (golden.recompute_golden). A key written before
        counts were kept is seeded from `history` (trait history by key: value, source, ISO time, in
        arrival order). Returns whether anything changed."""
        changed = False
        for key, meta in list(self.trait_meta.items()):
            shown = self.traits.get(key)
            if counted(meta):
                seen = seen_of(meta, shown)
            else:
                seen = seed_from_history(history.get(key[:MAX_KEY], []), shown, meta)
            rule = rules.rule_for(key)
            winner = settle(seen, rule, rules)
            fresh = meta_for(winner, rule, seen, counts=True)
            if fresh != meta or key not in self.traits or winner[0] != shown:
                self.traits[key] = winner[0]
                self.trait_meta[key] = fresh
                changed = True
        self.dirty = self.dirty or changed
        return changed

    def absorb(self, other: ProfileState, at: datetime, rules: GoldenRules) -> None:
        """Fold a merged profile into this one: what each has seen of a trait adds up and its rule picks
        again (on equal terms the survivor's value stays); counts add up."""
        for key, value in other.traits.items():
            theirs = other.trait_meta.get(key) or ["", ""]
            mine = self.trait_meta.get(key)
            if mine is None:
                self.traits[key] = value
                self.trait_meta[key] = copied(theirs)
                continue
            rule = rules.rule_for(key)
            seen = combine(seen_of(mine, self.traits.get(key)), seen_of(theirs, value))
            winner = settle(seen, rule, rules)
            self.traits[key] = winner[0]
            self.trait_meta[key] = meta_for(winner, rule, seen, counts=counted(mine) and counted(theirs))
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
