"""Reads of the unified profile: the 360 view, the cross-channel timeline, lookup and search."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer, customer_filter
from threadline.errors import Invalid, NotFound
from threadline.identity import InvalidIdentifier, normalise
from threadline.profiles.golden import RECENT, count_of
from threadline.storage import Database
from threadline.storage.models import (
    Event,
    Identity,
    Merge,
    Profile,
    ProfileMember,
    Source,
    TraitChange,
    User,
)

MAX_PAGE = 200
HISTORY_LIMIT = 500  # trait history rows a read returns
_MERGE_HOPS = 20


class ProfileNotFound(NotFound):
    pass


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


def resolve_profile_id(session: Session, profile_id: str, viewer: Viewer) -> str:
    """The live profile for an ID, following merges; raises ProfileNotFound, also when the profile is
    outside the viewer's data scope (a forged URL learns nothing, not even that the customer exists)."""
    current = profile_id
    for _ in range(_MERGE_HOPS):
        merged_into = session.execute(select(Profile.merged_into).where(Profile.id == current)).first()
        if merged_into is None:
            raise ProfileNotFound(f"profile {profile_id} does not exist")
        if merged_into[0] is None:
            visible = select(Profile.id).where(Profile.id == current, customer_filter(viewer))
            if session.scalar(visible) is None:
                raise ProfileNotFound(f"profile {profile_id} does not exist", details={"out_of_scope": True})
            return current
        current = merged_into[0]
    raise ProfileNotFound(f"profile {profile_id} has a merge chain longer than {_MERGE_HOPS}")


def profile_view(db: Database, profile_id: str, *, viewer: Viewer) -> dict[str, Any]:
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        profile = session.get(Profile, live)
        assert profile is not None
        identities = session.execute(
            select(Identity.kind, Identity.value, Identity.first_seen, Source.name, Source.channel)
            .outerjoin(Source, Source.id == Identity.source_id)
            .where(Identity.profile_id == live)
            .order_by(Identity.first_seen, Identity.id)
        ).all()
        owner = session.get(User, profile.owner_id) if profile.owner_id is not None else None
        members = session.execute(
            select(ProfileMember.user_id, User.email, User.name, ProfileMember.access)
            .join(User, User.id == ProfileMember.user_id)
            .where(ProfileMember.profile_id == live)
            .order_by(User.email)
        ).all()
        merged_ids = list(session.scalars(select(Profile.id).where(Profile.merged_into == live)))
        merges = (
            session.execute(
                select(Merge, Source.name)
                .outerjoin(Source, Source.id == Merge.source_id)
                .where(Merge.merged_id.in_(merged_ids), Merge.status == "merged")
                .order_by(Merge.id)
            ).all()
            if merged_ids
            else []
        )
        blocked = session.execute(
            select(Merge, Source.name)
            .outerjoin(Source, Source.id == Merge.source_id)
            .where(or_(Merge.survivor_id == live, Merge.merged_id == live), Merge.status == "blocked")
            .order_by(Merge.id.desc())
            .limit(20)
        ).all()
        involved = [live, *merged_ids]
        unmerged = session.execute(
            select(Merge, Source.name)
            .outerjoin(Source, Source.id == Merge.source_id)
            .where(
                or_(Merge.survivor_id.in_(involved), Merge.merged_id.in_(involved)),
                Merge.status == "unmerged",
            )
            .order_by(Merge.unmerged_at.desc(), Merge.id.desc())
            .limit(20)
        ).all()
        people = _people(session, [m for m, _ in (*merges, *unmerged)])
        history = session.execute(
            select(TraitChange.key, TraitChange.value, Source.name, TraitChange.observed_at)
            .join(Source, Source.id == TraitChange.source_id)
            .where(TraitChange.profile_id == live)
            .order_by(TraitChange.observed_at.desc(), TraitChange.id.desc())
            .limit(HISTORY_LIMIT)
        ).all()
    by_channel: dict[str, list[dict[str, Any]]] = {}
    identity_list = []
    for kind, value, first_seen, source_name, channel in identities:
        item = {"kind": kind, "value": value, "source": source_name, "first_seen": _iso(first_seen)}
        identity_list.append(item)
        by_channel.setdefault(channel or "unknown", []).append(item)
    meta = profile.trait_meta or {}
    return {
        "id": profile.id,
        "requested_id": profile_id if profile_id != live else None,
        "display_name": profile.display_name,
        "owner": {"id": owner.id, "email": owner.email, "name": owner.name} if owner else None,
        "tags": list(profile.tags or []),
        "members": [{"user_id": u, "email": e, "name": n, "access": a} for u, e, n, a in members],
        "traits": profile.traits,
        "trait_sources": {k: _trait_source(v, profile.traits.get(k)) for k, v in meta.items()},
        "trait_alternatives": _alternatives(profile.traits, meta, history),
        "identities": identity_list,
        "identities_by_channel": by_channel,
        "channels": sorted(profile.channels or {}),
        "summary": {
            "first_seen": _iso(profile.first_seen),
            "last_seen": _iso(profile.last_seen),
            "event_count": profile.event_count,
            "created_at": _iso(profile.created_at),
            "channels": {
                name: {**seen, "first_seen": seen["first_seen"] + "Z", "last_seen": seen["last_seen"] + "Z"}
                for name, seen in (profile.channels or {}).items()
            },
        },
        "merged_from": [_merge_view(m, name, people) for m, name in merges],
        "blocked_merges": [_merge_view(m, name, people) for m, name in blocked],
        "unmerged": [_merge_view(m, name, people) for m, name in unmerged],
    }


def _trait_source(meta: list[Any], shown: Any) -> dict[str, Any]:
    """Why a trait shows its value: the observation behind it, the survivorship rule that chose it, and
    how many messages carried the value (None for a key from before counts were kept)."""
    return {
        "at": meta[0] + "Z",
        "source": meta[1],
        "rule": meta[2] if len(meta) > 2 else RECENT,
        "count": count_of(meta, shown, shown),
    }


def _alternatives(
    traits: dict[str, Any], meta: dict[str, Any], history: Sequence[Any]
) -> dict[str, list[dict[str, Any]]]:
    """The values a trait does not show, from its trait history (newest first): each value once, with
    the source and time it was last seen, and how many messages carried it as far as the profile counts
    them (None when it does not)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for key, value, source, observed_at in history:
        if key in traits and value == traits[key]:
            continue
        others = found.setdefault(key, [])
        if any(other["value"] == value for other in others):
            continue
        count = count_of(meta.get(key), traits.get(key), value)
        others.append({"value": value, "source": source, "at": _iso(observed_at), "count": count})
    return found


def _people(session: Session, merges: list[Merge]) -> dict[int, dict[str, Any]]:
    """The users who merged or unmerged, by id, for the lineage."""
    ids = {i for m in merges for i in (m.actor_user_id, m.unmerged_by) if i is not None}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.email, User.name).where(User.id.in_(ids)))
    return {user_id: {"id": user_id, "email": email, "name": name} for user_id, email, name in rows}


def _merge_view(merge: Merge, source_name: str | None, people: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One lineage entry: what merged (or was blocked, or undone), why, and who or which rule decided."""
    return {
        "id": merge.merged_id if merge.status == "merged" else None,
        "merge_id": merge.id,
        "survivor_id": merge.survivor_id,
        "merged_id": merge.merged_id,
        "status": merge.status,
        "trigger": merge.trigger,
        "identifier": {"kind": merge.identifier_kind, "value": merge.identifier_value},
        "source": source_name,
        "message_id": merge.message_id,
        "reason": merge.reason,
        "at": _iso(merge.created_at),
        # Explicit merges (identity/merging.py): a steward's, or the resolver's rule and probability.
        "actor": people.get(merge.actor_user_id) if merge.actor_user_id is not None else None,
        "rule": merge.rule,
        "match_probability": merge.match_probability,
        "unmerged_at": _iso(merge.unmerged_at),
        "unmerged_by": people.get(merge.unmerged_by) if merge.unmerged_by is not None else None,
        "unmerge_reason": merge.unmerge_reason,
    }


def trait_history(
    db: Database, profile_id: str, key: str | None = None, *, viewer: Viewer
) -> list[dict[str, Any]]:
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        query = (
            select(TraitChange, Source.name)
            .join(Source, Source.id == TraitChange.source_id)
            .where(TraitChange.profile_id == live)
            .order_by(TraitChange.observed_at.desc(), TraitChange.id.desc())
        )
        if key:
            query = query.where(TraitChange.key == key)
        return [
            {
                "key": t.key,
                "value": t.value,
                "source": name,
                "at": _iso(t.observed_at),
                "message_id": t.message_id,
            }
            for t, name in session.execute(query.limit(HISTORY_LIMIT))
        ]


def _encode_cursor(moment: datetime, event_id: int) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{event_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, event_id = base64.urlsafe_b64decode(padded).decode().split("|")
        return datetime.fromisoformat(stamp), int(event_id)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor: not a cursor this API returned", details={"field": "cursor"}) from None


def timeline_page(
    db: Database,
    profile_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    channel: str | None = None,
    type: str | None = None,
    viewer: Viewer,
) -> dict[str, Any]:
    """The unified timeline, newest first, keyset-paged so deep pages stay as fast as the first."""
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit: must be between 1 and {MAX_PAGE}", details={"field": "limit"})
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        query = (
            select(Event, Source.name)
            .join(Source, Source.id == Event.source_id)
            .where(Event.profile_id == live)
            .order_by(Event.timestamp.desc(), Event.id.desc())
            .limit(limit + 1)
        )
        if cursor:
            moment, event_id = _decode_cursor(cursor)
            query = query.where(
                or_(Event.timestamp < moment, (Event.timestamp == moment) & (Event.id < event_id))
            )
        if channel:
            query = query.where(Event.channel == channel)
        if type:
            query = query.where(Event.type == type)
        rows = session.execute(query).all()
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1][0].timestamp, page[-1][0].id) if len(rows) > limit else None
    return {
        "profile_id": live,
        "events": [_event_view(event, source) for event, source in page],
        "next_cursor": next_cursor,
    }


def _event_view(event: Event, source: str) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "event": event.name if event.type == "track" else None,
        "name": event.name if event.type in ("page", "screen") else None,
        "channel": event.channel,
        "source": source,
        "timestamp": _iso(event.timestamp),
        "received_at": _iso(event.received_at),
        "message_id": event.message_id,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "properties": event.properties,
        "traits": event.traits,
        "context": event.context,
    }


def lookup_profile(db: Database, kind: str, value: str, *, region: str, viewer: Viewer) -> str:
    try:
        ident = normalise(kind, value, region=region, field=kind)
    except InvalidIdentifier as error:
        raise Invalid(str(error), details={"field": error.field}) from None
    with db.read() as session:
        profile_id = session.scalar(
            select(Identity.profile_id).where(Identity.kind == ident.kind, Identity.value == ident.value)
        )
        if profile_id is not None:
            profile_id = resolve_profile_id(session, profile_id, viewer)
    if profile_id is None:
        raise ProfileNotFound(f"no profile has {kind} {ident.value}")
    return profile_id


def summary_of(profile: Profile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "display_name": profile.display_name,
        "email": (profile.traits or {}).get("email"),
        "phone": (profile.traits or {}).get("phone"),
        "channels": sorted(profile.channels or {}),
        "event_count": profile.event_count,
        "first_seen": _iso(profile.first_seen),
        "last_seen": _iso(profile.last_seen),
    }
