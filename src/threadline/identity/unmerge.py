"""Unmerge: undo one merge exactly, whoever made it (a message, an alias, the resolver, a steward).

The merged profile comes back live with what it had and what arrived for it since; the survivor (or the
profile it has been merged into since) keeps the rest. Where each row goes (docs/identity.md, "Unmerge"):

1. Rows whose `original_profile_id` is the merged profile, or a profile merged into it before (its
   family, from the `merges` history), go back to it; those family members point at it again.
2. Rows written after the merge onto the survivor's side (above the ids the merge's snapshot noted) are
   routed by identifier, as ingestion would have routed them had the merge not happened: an event goes
   to the profile holding its strongest identifier; an identifier linked after the merge goes where the
   event that brought it went. Routed rows take their new profile as `original_profile_id`, so that a
   later merge and unmerge of the same pair stay exact.
3. Everything else stays.

Then both profiles are rebuilt from the events they keep (ProfileState.rebuilt: counts, channels, first
and last seen, traits by the ingestion rules); the trait history of routed events becomes what that
replay observes (while merged, a value equal to the other person's was no history, and one that only
differed from it was); and the survivor gives back the owner and tags the merge gave it. The `merges`
row becomes `unmerged` with who, when and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from threadline.config import Settings, get_settings
from threadline.errors import Conflict, Invalid, NotFound
from threadline.identity.identifiers import Identifier, priority
from threadline.identity.merging import MAX_REASON, live_profile_id, with_retries
from threadline.identity.recorded import recorded_identifiers, recorded_profile_traits
from threadline.identity.stitch import lock_key, take_locks
from threadline.profiles import ProfileState, golden_rules_in
from threadline.storage import Database, insert_rows
from threadline.storage.models import Event, Identity, Merge, Profile, Source, TraitChange

_CHUNK = 500
_MAX_HOPS = 50


@dataclass(frozen=True, slots=True)
class UnmergeInfo:
    merge_id: int
    survivor_id: str  # the merge's survivor
    live_survivor_id: str  # the profile the rows came back from: the survivor, or its survivor since
    restored_id: str  # the merged profile, live again
    identities: int  # rows the restored profile holds again
    events: int
    trait_history: int
    unmerged_at: datetime
    unmerged_by: int | None


def unmerge(
    db: Database,
    merge_id: int,
    *,
    actor_user_id: int | None,
    now: datetime,
    reason: str | None = None,
    settings: Settings | None = None,
) -> UnmergeInfo:
    """Undo merge `merge_id`. Refused for a blocked merge (nothing merged) and for one already undone.
    `settings` gives the identifier kinds and default region that events are read again with."""
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise Invalid(f"reason: at most {MAX_REASON} characters", details={"field": "reason"})
    settings = settings or get_settings()

    def work() -> UnmergeInfo:
        with db.write() as session:
            return _Split(session.connection(), settings, now).run(merge_id, actor_user_id, reason)

    return with_retries(work)


@dataclass(slots=True)
class _Sides:
    """The two profiles and which rows go to the restored one."""

    live: str
    restored: str
    back: dict[str, list[int]]  # table -> row ids that return by original_profile_id
    routed: dict[str, list[int]]  # table -> row ids routed to the restored profile
    rewritten: set[int]  # events whose trait history is written again


class _Split:
    def __init__(self, conn: Connection, settings: Settings, now: datetime) -> None:
        self.conn = conn
        self.kinds = tuple(settings.identifier_kinds)
        self.region = settings.default_region
        self.ranks = priority(self.kinds)
        self.now = now
        self.postgres = conn.dialect.name == "postgresql"

    def run(self, merge_id: int, actor_user_id: int | None, reason: str | None) -> UnmergeInfo:
        conn = self.conn
        take_locks(conn, [lock_key("merge", str(merge_id))])
        query = select(Merge.__table__).where(Merge.id == merge_id)
        merge = conn.execute(query.with_for_update() if self.postgres else query).first()
        if merge is None:
            raise NotFound(f"merge_id: no merge {merge_id}", details={"field": "merge_id"})
        if merge.status == "blocked":
            raise Invalid(
                f"merge_id: merge {merge_id} was blocked by merge protection; nothing was merged",
                details={"field": "merge_id"},
            )
        if merge.status == "unmerged":
            raise Conflict(
                f"merge_id: merge {merge_id} was already undone at {merge.unmerged_at:%Y-%m-%d %H:%M} UTC",
                details={"field": "merge_id", "unmerged_at": merge.unmerged_at.isoformat() + "Z"},
            )
        survivor, restored = merge.survivor_id, merge.merged_id
        live = self._lock(survivor, restored)
        if live_profile_id(conn, restored) != live:
            raise Conflict(
                f"merge_id: profile {restored} is no longer merged into {live}; the lineage changed",
                details={"field": "merge_id"},
            )
        snapshot: dict[str, Any] = merge.snapshot or {}
        family = self._family(restored)
        sides = self._route(
            live, restored, family, self._chain(survivor, live), snapshot.get("watermarks"), merge.created_at
        )
        history = self._rebuild(sides, family, snapshot, survivor)
        conn.execute(
            update(Merge)
            .where(Merge.id == merge_id)
            .values(status="unmerged", unmerged_at=self.now, unmerged_by=actor_user_id, unmerge_reason=reason)
        )
        return UnmergeInfo(
            merge_id=merge_id,
            survivor_id=survivor,
            live_survivor_id=live,
            restored_id=restored,
            identities=len(sides.back["identities"]) + len(sides.routed["identities"]),
            events=len(sides.back["events"]) + len(sides.routed["events"]),
            trait_history=len(sides.back["trait_history"]) + history,
            unmerged_at=self.now,
            unmerged_by=actor_user_id,
        )

    # -- the merge's parties -------------------------------------------------------------------
    def _lock(self, survivor: str, restored: str) -> str:
        """The stitcher's locks on everything that may move (every identifier of the live survivor, then
        the profile rows); returns the live survivor."""
        conn = self.conn
        for _ in range(_MAX_HOPS):
            live = live_profile_id(conn, survivor)
            values = conn.execute(select(Identity.kind, Identity.value).where(Identity.profile_id == live))
            keys = [lock_key(kind, value) for kind, value in values]
            take_locks(conn, [*keys, *(lock_key("profile", p) for p in (survivor, restored, live))])
            if self.postgres:
                rows = select(Profile.id).where(Profile.id.in_([live, restored])).order_by(Profile.id)
                conn.execute(rows.with_for_update()).all()
            if live_profile_id(conn, survivor) == live:  # not merged on while we waited
                return live
        raise Conflict("merge_id: the profiles keep changing; try again", details={"field": "merge_id"})

    def _family(self, restored: str) -> set[str]:
        """The restored profile and every profile merged into it before (and not unmerged since)."""
        family, frontier = {restored}, [restored]
        while frontier:
            found = set(
                self.conn.scalars(
                    select(Merge.merged_id).where(Merge.survivor_id.in_(frontier), Merge.status == "merged")
                )
            )
            frontier = sorted(found - family)
            family |= found
        return family

    def _chain(self, survivor: str, live: str) -> set[str]:
        """The profiles that held the merged rows since the merge: the survivor and each profile it was
        merged into on the way to the live one."""
        chain, current = {survivor, live}, survivor
        for _ in range(_MAX_HOPS):
            if current == live:
                break
            into: str | None = self.conn.scalar(
                select(Merge.survivor_id)
                .where(Merge.merged_id == current, Merge.status == "merged")
                .order_by(Merge.id.desc())
                .limit(1)
            )
            if into is None:
                break
            chain.add(into)
            current = into
        return chain

    # -- routing rows --------------------------------------------------------------------------
    def _route(
        self,
        live: str,
        restored: str,
        family: set[str],
        chain: set[str],
        marks: dict[str, int] | None,
        merged_at: datetime,
    ) -> _Sides:
        conn = self.conn
        events = conn.execute(
            select(
                Event.id,
                Event.original_profile_id,
                Event.type,
                Event.user_id,
                Event.anonymous_id,
                Event.traits,
                Event.context,
                Event.properties,
                Event.received_at,
            )
            .where(Event.profile_id == live)
            .order_by(Event.id)
        ).all()
        identities = conn.execute(
            select(Identity.id, Identity.kind, Identity.value, Identity.original_profile_id)
            .where(Identity.profile_id == live)
            .order_by(Identity.id)
        ).all()

        def after(event: Any) -> bool:
            # Merges from before revision 0006 noted no ids: arrival time is the best left to go by.
            return bool(event.id > marks["events"] if marks else event.received_at > merged_at)

        if marks:
            identity_after = {row.id: row.id > marks["identities"] for row in identities}
        else:
            seen = {
                ident
                for event in events
                if not after(event) and event.original_profile_id in chain
                for ident in self._identifiers(event)
            }
            identity_after = {row.id: Identifier(row.kind, row.value) not in seen for row in identities}

        sides = _Sides(live, restored, _tables(), _tables(), set())
        owner: dict[Identifier, str] = {}
        pending: dict[Identifier, int] = {}  # linked after the merge: goes where its first event goes
        for row in identities:
            ident = Identifier(row.kind, row.value)
            if row.original_profile_id in family:
                owner[ident] = restored
                sides.back["identities"].append(row.id)
            elif row.original_profile_id in chain and identity_after[row.id]:
                pending[ident] = row.id
            else:
                owner[ident] = live
        for event in events:
            if event.original_profile_id in family:
                sides.back["events"].append(event.id)
            elif event.original_profile_id in chain and after(event):
                carried = self._identifiers(event)
                strongest = min(
                    (i for i in carried if i in owner),
                    key=lambda i: (self.ranks.get(i.kind, len(self.ranks)), i.value),
                    default=None,
                )
                side = live if strongest is None else owner[strongest]
                for ident in carried:
                    if ident in pending:
                        owner[ident] = side
                        if side == restored:
                            sides.routed["identities"].append(pending[ident])
                        del pending[ident]
                sides.rewritten.add(event.id)
                if side == restored:
                    sides.routed["events"].append(event.id)
        # An identifier no readable event brought (still pending) stays where it is.
        sides.back["trait_history"] = list(
            conn.scalars(
                select(TraitChange.id).where(
                    TraitChange.profile_id == live, TraitChange.original_profile_id.in_(family)
                )
            )
        )

        for table in (Identity, Event, TraitChange):
            name = str(table.__tablename__)
            for chunk in _chunks(sorted(sides.back[name])):
                conn.execute(update(table).where(table.id.in_(chunk)).values(profile_id=restored))
            for chunk in _chunks(sorted(sides.routed[name])):
                conn.execute(
                    update(table)
                    .where(table.id.in_(chunk))
                    .values(profile_id=restored, original_profile_id=restored)
                )
        return sides

    def _identifiers(self, event: Any) -> list[Identifier]:
        return recorded_identifiers(event._mapping, kinds=self.kinds, region=self.region)

    # -- rebuilding both profiles --------------------------------------------------------------
    def _rebuild(self, sides: _Sides, family: set[str], snapshot: dict[str, Any], survivor: str) -> int:
        """Rebuild both profiles from their events, and the routed events' trait history as that replay
        observes it. Returns how many trait history rows of routed events the restored profile holds."""
        conn = self.conn
        sources: dict[int, str] = {
            source_id: name for source_id, name in conn.execute(select(Source.id, Source.name))
        }
        table = Profile.__table__
        rows = {
            row.id: dict(row._mapping)
            for row in conn.execute(select(table).where(table.c.id.in_([sides.live, sides.restored])))
        }
        stale = self._routed_history(sides, family)
        rules = golden_rules_in(conn)  # the survivorship rules ingestion applies now
        states: dict[str, ProfileState] = {}
        kept_back: list[int] = []
        dropped: list[int] = []
        added: list[dict[str, Any]] = []
        for profile_id in (sides.live, sides.restored):
            events = conn.execute(
                select(
                    Event.id,
                    Event.original_profile_id,
                    Event.source_id,
                    Event.message_id,
                    Event.channel,
                    Event.timestamp,
                    Event.type,
                    Event.traits,
                    Event.context,
                )
                .where(Event.profile_id == profile_id)
                .order_by(Event.id)
            ).all()
            replay = [
                (
                    event.channel,
                    event.timestamp,
                    recorded_profile_traits(event._mapping, region=self.region),
                    sources.get(event.source_id, ""),
                )
                for event in events
            ]
            states[profile_id], observed = ProfileState.rebuilt(rows[profile_id], replay, rules)
            for event, changes in zip(events, observed, strict=True):
                if event.id not in sides.rewritten:
                    continue
                # Rows the replay observes again keep their ids (and so their order among rows of the
                # same time: PostgreSQL's JSONB does not keep the order of a message's traits).
                old = stale.pop((event.source_id, event.message_id), [])
                for change in changes:
                    key = change.key[:200]
                    same = next((row for row in old if row.key == key and row.value == change.value), None)
                    if same is not None:
                        old.remove(same)
                        if profile_id == sides.restored:
                            kept_back.append(same.id)
                        continue
                    added.append(
                        {
                            "profile_id": profile_id,
                            "original_profile_id": event.original_profile_id,
                            "key": key,
                            "value": change.value,
                            "source_id": event.source_id,
                            "observed_at": change.observed_at,
                            "message_id": event.message_id,
                        }
                    )
                dropped += [row.id for row in old]
        for chunk in _chunks(sorted(kept_back)):
            conn.execute(
                update(TraitChange)
                .where(TraitChange.id.in_(chunk))
                .values(profile_id=sides.restored, original_profile_id=sides.restored)
            )
        for chunk in _chunks(sorted(dropped)):
            conn.execute(delete(TraitChange).where(TraitChange.id.in_(chunk)))
        insert_rows(conn, TraitChange, added)

        back, kept = states[sides.restored], states[sides.live]
        back.merged_into = back.merged_at = None
        # What absorb gave the survivor goes back with the merged profile, unless changed since.
        merged_owner = (snapshot.get("merged") or {}).get("owner_id")
        if snapshot.get("owner_taken") and sides.live == survivor and kept.owner_id == merged_owner:
            kept.owner_id = None
        tags_added = set(snapshot.get("tags_added") or [])
        kept.tags = [tag for tag in kept.tags if tag not in tags_added]
        for state in (kept, back):
            values = {k: v for k, v in state.row().items() if k not in ("id", "created_at")}
            conn.execute(update(Profile).where(Profile.id == state.id).values(**values))
        for chunk in _chunks(sorted(family - {sides.restored})):
            conn.execute(update(Profile).where(Profile.id.in_(chunk)).values(merged_into=sides.restored))
        return len(kept_back) + len([row for row in added if row["profile_id"] == sides.restored])

    def _routed_history(self, sides: _Sides, family: set[str]) -> dict[tuple[int, str], list[Any]]:
        """The trait history rows of routed events, by (source, messageId), as written while merged."""
        found: dict[tuple[int, str], list[Any]] = {}
        for source_id, message_ids in _messages_of(self.conn, sides.rewritten).items():
            for chunk in _chunks(sorted(message_ids)):
                query = (
                    select(TraitChange.id, TraitChange.message_id, TraitChange.key, TraitChange.value)
                    .where(
                        TraitChange.profile_id == sides.live,
                        TraitChange.original_profile_id.not_in(family),
                        TraitChange.source_id == source_id,
                        TraitChange.message_id.in_(chunk),
                    )
                    .order_by(TraitChange.id)
                )
                for row in self.conn.execute(query):
                    found.setdefault((source_id, row.message_id), []).append(row)
        return found


def _messages_of(conn: Connection, event_ids: set[int]) -> dict[int, set[str]]:
    """The messageIds of events by source: how trait history rows name the message they came from."""
    found: dict[int, set[str]] = {}
    for chunk in _chunks(sorted(event_ids)):
        query = select(Event.source_id, Event.message_id).where(Event.id.in_(chunk))
        for source_id, message_id in conn.execute(query):
            found.setdefault(source_id, set()).add(message_id)
    return found


def _tables() -> dict[str, list[int]]:
    return {"identities": [], "events": [], "trait_history": []}


def _chunks(ids: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]
