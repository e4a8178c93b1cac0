"""Real-time identity stitching for one batch of messages, inside one write transaction.

`IdentityGraph.preload` locks and loads everything the batch's identifiers touch; `stitch` decides, per
message, which profile the message belongs to, linking new identifiers and merging profiles that the
message joins; `flush` writes the result. The rules, in order:

1. The message's identifiers are ranked (user_id > email > phone > configured kinds > anonymous_id).
   The profile of the strongest known identifier is the target.
2. Every other known identifier on another profile asks for a merge into the target. Merge protection
   refuses a merge that would give one profile more identifiers of a kind than `identity_limits` allows
   (by default one user_id); the refusal is recorded with its reason and the identifier stays put.
3. New identifiers are linked to the target, within the same limits. If the strongest identifier is new
   and cannot join the profile of the others (a second user_id on a shared browser), it starts a new
   profile and the message lands there.

Explicit merges (a steward's, the batch resolver's: identity/merging.py) load their two profiles into a
graph and go through the same `merge` and `flush`, so every merge writes the same rows.

Concurrency: on PostgreSQL the transaction takes an advisory lock per identifier (sorted, so two batches
never wait on each other in a cycle) and locks the profile rows it will change; on SQLite the write
transaction is BEGIN IMMEDIATE, which serialises writers. Either way two requests about the same new
person cannot both create a profile for them.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, text, update

from threadline.identity.identifiers import Identifier
from threadline.profiles import GoldenRules, ProfileState, golden_rules_in
from threadline.storage import insert_rows
from threadline.storage.models import Event, Identity, Merge, Profile, TraitChange

_CHUNK = 500


def new_profile_id() -> str:
    """Time-ordered 32-hex id (UUIDv7 layout): new rows land at the end of the primary key index."""
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{os.urandom(10).hex()}"


def lock_key(namespace: str, value: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock (Python's hash() changes per process)."""
    digest = hashlib.blake2b(f"{namespace}\x00{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def take_locks(connection: Connection, keys: Iterable[int]) -> None:
    """Transaction-scoped advisory locks on PostgreSQL, in sorted order so that two transactions never
    wait on each other in a cycle. SQLite needs none: its writers take turns (BEGIN IMMEDIATE)."""
    if connection.dialect.name != "postgresql":
        return
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), _CHUNK):
        connection.execute(
            text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": ordered[start : start + _CHUNK]},
        )


def row_watermarks(connection: Connection) -> dict[str, int]:
    """The highest id of each table whose rows move with merges (one round trip, three index lookups)."""
    tables = (Event, Identity, TraitChange)
    row = connection.execute(select(*(select(func.max(t.id)).scalar_subquery() for t in tables))).one()
    return {str(t.__tablename__): int(value or 0) for t, value in zip(tables, row, strict=True)}


# `merges` columns that only some rows fill (the stitcher's identifier and message, an explicit merge's
# actor, rule and evidence, a merge's snapshot): the rows written in one executemany need every key.
_EMPTY_RECORD: dict[str, Any] = {
    "identifier_kind": None,
    "identifier_value": None,
    "source_id": None,
    "message_id": None,
    "actor_user_id": None,
    "rule": None,
    "match_probability": None,
    "evidence": None,
    "snapshot": None,
}


@dataclass(slots=True)
class StitchCause:
    """What a stitching decision is recorded against."""

    trigger: str  # message | alias
    source_id: int
    message_id: str
    at: datetime


class IdentityGraph:
    def __init__(
        self,
        connection: Connection,
        *,
        limits: dict[str, int],
        ranks: dict[str, int],
        now: datetime,
        rules: GoldenRules | None = None,
    ) -> None:
        self.connection = connection
        self.limits = limits
        self.ranks = ranks
        self.now = now
        # The survivorship rules a merge picks each trait's shown value by (profiles/golden.py).
        self.rules = golden_rules_in(connection) if rules is None else rules
        self.postgres = connection.dialect.name == "postgresql"
        self.owner: dict[Identifier, str] = {}
        self.profiles: dict[str, ProfileState] = {}
        self.redirect: dict[str, str] = {}
        self.kind_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.new_identities: list[dict[str, Any]] = []
        self.merge_rows: list[dict[str, Any]] = []
        self.moves: list[tuple[str, str]] = []

    # -- loading -------------------------------------------------------------------------------
    def preload(self, identifiers: Iterable[Identifier], extra_locks: Iterable[int] = ()) -> None:
        wanted = set(identifiers)
        if self.postgres:
            take_locks(self.connection, [*(lock_key(i.kind, i.value) for i in wanted), *extra_locks])
        # One query for every kind: values rarely repeat across kinds, and the few that do are
        # filtered here, which is cheaper than a round trip per kind.
        values = sorted({ident.value for ident in wanted})
        for start in range(0, len(values), _CHUNK):
            rows = self.connection.execute(
                select(Identity.kind, Identity.value, Identity.profile_id).where(
                    Identity.value.in_(values[start : start + _CHUNK])
                )
            )
            for kind, value, profile_id in rows:
                ident = Identifier(kind, value)
                if ident in wanted:
                    self.owner[ident] = profile_id
        self._load_profiles(set(self.owner.values()))

    def load(self, profile_ids: Iterable[str]) -> None:
        """Lock and load profiles named directly (an explicit merge), following merges as preload does."""
        self._load_profiles(set(profile_ids))

    def _load_profiles(self, ids: set[str]) -> None:
        table = Profile.__table__
        ids = ids - self.profiles.keys()
        while ids:
            ordered = sorted(ids)
            loaded: list[ProfileState] = []
            for start in range(0, len(ordered), _CHUNK):
                query = (
                    select(table).where(table.c.id.in_(ordered[start : start + _CHUNK])).order_by(table.c.id)
                )
                if self.postgres:
                    query = query.with_for_update()
                loaded.extend(
                    ProfileState.from_row(dict(row._mapping)) for row in self.connection.execute(query)
                )
            follow: set[str] = set()
            for state in loaded:
                self.profiles[state.id] = state
                if state.merged_into:
                    # Merged by another transaction while we waited for the lock: follow to the survivor.
                    self.redirect[state.id] = state.merged_into
                    follow.add(state.merged_into)
            self._load_kind_counts([state.id for state in loaded])
            ids = follow - self.profiles.keys()
        for ident, profile_id in list(self.owner.items()):
            self.owner[ident] = self.resolve(profile_id)

    def _load_kind_counts(self, profile_ids: list[str]) -> None:
        if not profile_ids or not self.limits:
            return
        for start in range(0, len(profile_ids), _CHUNK):
            rows = self.connection.execute(
                select(Identity.profile_id, Identity.kind, func.count())
                .where(
                    Identity.profile_id.in_(profile_ids[start : start + _CHUNK]),
                    Identity.kind.in_(list(self.limits)),
                )
                .group_by(Identity.profile_id, Identity.kind)
            )
            for profile_id, kind, count in rows:
                self.kind_counts[profile_id][kind] = count

    # -- deciding ------------------------------------------------------------------------------
    def resolve(self, profile_id: str) -> str:
        while profile_id in self.redirect:
            profile_id = self.redirect[profile_id]
        return profile_id

    def profile(self, profile_id: str) -> ProfileState:
        return self.profiles[self.resolve(profile_id)]

    def stitch(
        self, identifiers: list[Identifier], cause: StitchCause, *, force: bool = False
    ) -> ProfileState:
        """The profile this message belongs to, after linking and merging what it joins.

        `force` (alias) links explicitly named identifiers even past the per-kind limits: the customer's
        own system says they are one person.
        """
        ranked = sorted(set(identifiers), key=lambda i: (self.ranks.get(i.kind, len(self.ranks)), i.value))
        known = [(i, self.owner[i]) for i in ranked if i in self.owner]
        new = [i for i in ranked if i not in self.owner]
        target: str | None = None
        if ranked[0] in self.owner:
            target = self.owner[ranked[0]]
        elif known:
            candidate = known[0][1]
            if force or self._room_for(candidate, {ranked[0].kind: 1}):
                target = candidate
        if target is None:
            state = ProfileState.new(new_profile_id(), cause.at, self.now)
            self.profiles[state.id] = state
            target = state.id
        # New identifiers first, so that the limits see them when the merges below are weighed.
        for ident in new:
            if force or self._room_for(target, {ident.kind: 1}):
                self._link(ident, target, cause)
            else:
                self._record(
                    "blocked",
                    target,
                    target,
                    ident,
                    cause,
                    f"{ident.kind} not linked: the profile already has "
                    f"{self.kind_counts[target][ident.kind]} (limit {self.limits[ident.kind]})",
                )
        for ident, owner in known:
            owner, target = self.resolve(owner), self.resolve(target)
            if owner != target:
                target = self._merge_or_block(target, owner, ident, ranked[0], cause, force=force)
        return self.profiles[self.resolve(target)]

    def _room_for(self, profile_id: str, adding: dict[str, int]) -> bool:
        counts = self.kind_counts[profile_id]
        return all(counts[kind] + extra <= self.limits.get(kind, 1 << 30) for kind, extra in adding.items())

    def _merge_or_block(
        self,
        target: str,
        other: str,
        ident: Identifier,
        anchor: Identifier,
        cause: StitchCause,
        *,
        force: bool,
    ) -> str:
        too_many = None if force else self.blocked_by_limits(target, other)
        if too_many:
            reason = (
                f"blocked by merge protection: {ident.kind} {ident.value} was seen with {anchor.kind} "
                f"{anchor.value}, but joining their profiles would give one profile {too_many}"
            )
            self._record("blocked", target, other, ident, cause, reason)
            return target
        a, b = self.profiles[target], self.profiles[other]
        survivor, merged = (a, b) if (a.created_at, a.id) <= (b.created_at, b.id) else (b, a)
        verb = "aliased to" if cause.trigger == "alias" else "seen together with"
        reason = f"{ident.kind} {ident.value} {verb} {anchor.kind} {anchor.value} in one message"
        self.merge(survivor.id, merged.id, _why(ident, cause, reason))
        return survivor.id

    def blocked_by_limits(self, survivor_id: str, merged_id: str) -> str | None:
        """Why merge protection refuses this merge ("2 user_ids (limit 1)"), or None if it allows it."""
        adding = {k: n for k, n in self.kind_counts[merged_id].items() if n}
        if self._room_for(survivor_id, adding):
            return None
        kind = next(k for k, n in adding.items() if self.kind_counts[survivor_id][k] + n > self.limits[k])
        return f"{self.kind_counts[survivor_id][kind] + adding[kind]} {kind}s (limit {self.limits[kind]})"

    def merge(self, survivor_id: str, merged_id: str, record: dict[str, Any]) -> None:
        """Fold `merged_id` into `survivor_id`: the one merge every trigger goes through (the stitcher's
        messages and aliases, the resolver's and stewards' explicit merges in identity/merging.py).

        `record` holds the `merges` columns that say why (trigger, reason, and the identifier and message
        or the actor, rule and probability). The row's snapshot keeps what an unmerge cannot recompute
        from the rows each profile keeps: what absorb gave the survivor's owner and tags, and, filled in
        by `flush`, the highest row ids at merge time (identity/unmerge.py).
        """
        survivor, merged = self.profiles[survivor_id], self.profiles[merged_id]
        snapshot: dict[str, Any] = {
            "version": 1,
            "survivor": {"owner_id": survivor.owner_id, "tags": list(survivor.tags)},
            "merged": {"owner_id": merged.owner_id, "tags": list(merged.tags)},
            "owner_taken": survivor.owner_id is None and merged.owner_id is not None,
            "tags_added": [tag for tag in merged.tags if tag not in survivor.tags],
        }
        survivor.absorb(merged, self.now, self.rules)
        for kind, count in self.kind_counts.pop(merged.id, {}).items():
            self.kind_counts[survivor.id][kind] += count
        self.redirect[merged.id] = survivor.id
        for known, owner in self.owner.items():
            if owner == merged.id:
                self.owner[known] = survivor.id
        if not merged.is_new:
            self.moves.append((merged.id, survivor.id))
        self.merge_rows.append(
            {
                **_EMPTY_RECORD,
                **record,
                "status": "merged",
                "survivor_id": survivor.id,
                "merged_id": merged.id,
                "snapshot": snapshot,
                "created_at": self.now,
            }
        )

    def _link(self, ident: Identifier, profile_id: str, cause: StitchCause) -> None:
        self.owner[ident] = profile_id
        self.kind_counts[profile_id][ident.kind] += 1
        self.new_identities.append(
            {
                "kind": ident.kind,
                "value": ident.value,
                "profile_id": profile_id,
                "original_profile_id": profile_id,
                "source_id": cause.source_id,
                "first_seen": cause.at,
            }
        )

    def _record(
        self, status: str, survivor: str, merged: str, ident: Identifier, cause: StitchCause, reason: str
    ) -> None:
        self.merge_rows.append(
            {
                **_EMPTY_RECORD,
                "status": status,
                "survivor_id": survivor,
                "merged_id": merged,
                **_why(ident, cause, reason),
                "created_at": self.now,
            }
        )

    # -- writing -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write profiles, merges and identities; events and trait history follow (they need the rows)."""
        conn = self.connection
        merged_rows = [row for row in self.merge_rows if row["status"] == "merged"]
        if merged_rows:
            # Rows above these ids were written after the merge (this batch's included): an unmerge
            # routes them by identifier, older ones by original_profile_id. Every writer of rows on these
            # profiles holds their row locks, so no later row can get a lower id (docs/identity.md).
            marks = row_watermarks(conn)
            for row in merged_rows:
                row["snapshot"]["watermarks"] = marks
        insert_rows(conn, Profile, [p.row() for p in self.profiles.values() if p.is_new])
        for merged, survivor in self.moves:
            for table in (Identity, Event, TraitChange):
                conn.execute(update(table).where(table.profile_id == merged).values(profile_id=survivor))
            # Keep every merged id one hop from its survivor, so an old id resolves in one lookup.
            conn.execute(update(Profile).where(Profile.merged_into == merged).values(merged_into=survivor))
        for row in self.new_identities:
            row["profile_id"] = self.resolve(row["profile_id"])
        insert_rows(conn, Identity, self.new_identities)
        if self.merge_rows:
            conn.execute(insert(Merge), self.merge_rows)
        changed = [p.row() for p in self.profiles.values() if p.dirty and not p.is_new]
        if changed:
            columns = [key for key in changed[0] if key != "id"]
            stmt = (
                update(Profile)
                .where(Profile.id == bindparam("b_id"))
                .values({key: bindparam(key) for key in columns})
            )
            conn.execute(stmt, [{**{k: row[k] for k in columns}, "b_id": row["id"]} for row in changed])


def _why(ident: Identifier, cause: StitchCause, reason: str) -> dict[str, Any]:
    """The columns of a `merges` row that say what a message's identifier caused."""
    return {
        "trigger": cause.trigger,
        "identifier_kind": ident.kind,
        "identifier_value": ident.value,
        "source_id": cause.source_id,
        "message_id": cause.message_id,
        "reason": reason,
    }
