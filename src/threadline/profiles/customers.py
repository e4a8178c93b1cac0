"""The customer list: search, filters, sorting, paging, export, and bulk owner/tag changes.

Every query here starts from `customer_filter(viewer)`, so lists, counts, searches and exports show
exactly the customers the viewer's data scope allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from threadline.accounts import Viewer, customer_filter, customer_write_filter
from threadline.errors import Forbidden, Invalid
from threadline.profiles.reads import ProfileNotFound, summary_of
from threadline.profiles.search import search_condition
from threadline.storage import Database
from threadline.storage.models import Event, Profile, ProfileMember, SavedView, Source, User

# Ties broken in the same direction, so "newest first" is a backward scan of ix_profiles_live_last_seen.
SORTS = {
    "last_seen": (Profile.last_seen.desc(), Profile.id.desc()),
    "first_seen": (Profile.first_seen.desc(), Profile.id.desc()),
    "name": (Profile.search_name, Profile.id),
    "events": (Profile.event_count.desc(), Profile.id.desc()),
}
# Counting every match of a broad filter costs more than showing the page; past this, "10,000+" is enough.
COUNT_CAP = 10_000
# A search that matches more than this asks the person to narrow it; counting further costs more
# than it tells (see threadline.profiles.search).
SEARCH_COUNT_CAP = 1_000
MAX_PAGE_SIZE = 200
EXPORT_BATCH = 1000
_TAG = re.compile(r"^[\w\- .:/]{1,40}$", re.UNICODE)


@dataclass(frozen=True, slots=True)
class CustomerQuery:
    q: str = ""
    channel: str | None = None
    owner: str | None = None  # "me", "none" or a user id
    source: str | None = None
    tag: str | None = None
    seen_within_days: int | None = None
    sort: str = "last_seen"
    page: int = 1
    size: int = 50
    extra: dict[str, Any] = field(default_factory=dict)

    def checked(self) -> CustomerQuery:
        if self.sort not in SORTS:
            raise Invalid(f"sort: must be one of {', '.join(SORTS)}", details={"field": "sort"})
        if not 1 <= self.size <= MAX_PAGE_SIZE:
            raise Invalid(f"size: must be between 1 and {MAX_PAGE_SIZE}", details={"field": "size"})
        if self.page < 1:
            raise Invalid("page: must be 1 or more", details={"field": "page"})
        if self.seen_within_days is not None and self.seen_within_days < 1:
            raise Invalid("seen_within_days: must be 1 or more", details={"field": "seen_within_days"})
        if self.owner not in (None, "", "me", "none") and not str(self.owner).isdigit():
            raise Invalid("owner: must be me, none or a user id", details={"field": "owner"})
        return self


def _channel_condition(session: Session, channel: str) -> ColumnElement[bool]:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        has_channel: ColumnElement[bool] = type_coerce(Profile.channels, JSONB).has_key(channel)
        return has_channel
    return func.json_extract(Profile.channels, f'$."{channel}"').is_not(None)


def _tag_condition(session: Session, tag: str) -> ColumnElement[bool]:
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return type_coerce(Profile.tags, JSONB).contains([tag])
    each = func.json_each(Profile.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def _select(
    session: Session, viewer: Viewer, query: CustomerQuery, region: str, now: datetime
) -> Select[Any]:
    stmt = select(Profile).where(Profile.merged_into.is_(None), customer_filter(viewer))
    if query.q.strip():
        stmt = stmt.where(search_condition(session, query.q.strip(), region))
    if query.channel:
        stmt = stmt.where(_channel_condition(session, query.channel))
    if query.owner == "me":
        stmt = stmt.where(Profile.owner_id == viewer.user_id)
    elif query.owner == "none":
        stmt = stmt.where(Profile.owner_id.is_(None))
    elif query.owner:
        stmt = stmt.where(Profile.owner_id == int(query.owner))
    if query.source:
        from_source = select(Event.profile_id).join(Source, Source.id == Event.source_id)
        stmt = stmt.where(Profile.id.in_(from_source.where(Source.name == query.source)))
    if query.tag:
        stmt = stmt.where(_tag_condition(session, query.tag))
    if query.seen_within_days:
        stmt = stmt.where(Profile.last_seen >= now - timedelta(days=query.seen_within_days))
    return stmt


def count_cap(query: CustomerQuery) -> int:
    """Where counting the matches of `query` stops: past it, the total means "more than"."""
    return SEARCH_COUNT_CAP if query.q.strip() else COUNT_CAP


def list_customers(
    db: Database, viewer: Viewer, query: CustomerQuery, *, region: str, now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """One page of customers and how many match in all, up to count_cap(query) + 1 ("more than")."""
    query = query.checked()
    with db.read() as session:
        base = _select(session, viewer, query, region, now)
        counted = base.with_only_columns(Profile.id)
        if session.bind is not None and session.bind.dialect.name == "sqlite":
            # Ordered like the default list so SQLite counts from the live-profiles index (it holds the
            # id and rowid a search tests) instead of reading every profile row. PostgreSQL's planner
            # does better unordered: it would walk that index even for a selective filter.
            counted = counted.order_by(*SORTS["last_seen"])
        capped = counted.limit(count_cap(query) + 1).subquery()
        total = int(session.scalar(select(func.count()).select_from(capped)) or 0)
        page = base.order_by(*SORTS[query.sort]).limit(query.size).offset((query.page - 1) * query.size)
        rows = session.scalars(page).all()
        owners = _owner_emails(session, {r.owner_id for r in rows if r.owner_id is not None})
    return [
        {**summary_of(r), "owner": owners.get(r.owner_id), "tags": list(r.tags or [])} for r in rows
    ], total


def _owner_emails(session: Session, ids: set[int]) -> dict[int | None, str]:
    if not ids:
        return {}
    return {
        user_id: email
        for user_id, email in session.execute(select(User.id, User.email).where(User.id.in_(ids)))
    }


def export_customers(
    db: Database, viewer: Viewer, query: CustomerQuery, *, region: str, now: datetime
) -> Iterator[dict[str, Any]]:
    """Every matching customer as a flat row, for CSV. Needs the export permission."""
    if not viewer.can("export"):
        raise Forbidden("exporting customers needs the export permission")
    query = query.checked()
    last_id = ""
    while True:
        with db.read() as session:
            stmt = _select(session, viewer, query, region, now).where(Profile.id > last_id)
            rows = session.scalars(stmt.order_by(Profile.id).limit(EXPORT_BATCH)).all()
            owners = _owner_emails(session, {r.owner_id for r in rows if r.owner_id is not None})
        if not rows:
            return
        for row in rows:
            summary = summary_of(row)
            yield {
                "id": row.id,
                "name": summary["display_name"] or "",
                "email": summary["email"] or "",
                "phone": summary["phone"] or "",
                "channels": " ".join(summary["channels"]),
                "events": row.event_count,
                "first_seen": summary["first_seen"],
                "last_seen": summary["last_seen"],
                "owner": owners.get(row.owner_id, ""),
                "tags": " ".join(row.tags or []),
            }
        last_id = rows[-1].id


def assign_owner(db: Database, viewer: Viewer, profile_ids: list[str], owner_id: int | None) -> int:
    """Give customers to `owner_id` (None returns them to the pool); returns how many changed."""
    if not viewer.can("transfer"):
        raise Forbidden("changing a customer's owner needs the transfer permission")
    with db.write() as session:
        if owner_id is not None:
            active = session.scalar(select(User.id).where(User.id == owner_id, User.is_active.is_(True)))
            if active is None:
                raise Invalid("owner: no active user with that id", details={"field": "owner"})
        result = session.execute(
            update(Profile)
            .where(Profile.id.in_(profile_ids), Profile.merged_into.is_(None), customer_write_filter(viewer))
            .values(owner_id=owner_id)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def adopt_unowned(session: Session, profile_ids: list[str], owner_id: int) -> int:
    """Give the customers nobody owns to `owner_id`, in the caller's transaction (a rep converting a lead
    works on that person from now on, and must see them); an owned customer keeps its owner. Returns how
    many changed."""
    result = session.execute(
        update(Profile)
        .where(Profile.id.in_(profile_ids), Profile.merged_into.is_(None), Profile.owner_id.is_(None))
        .values(owner_id=owner_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def change_tags(
    db: Database, viewer: Viewer, profile_ids: list[str], *, add: list[str], remove: list[str]
) -> int:
    if not viewer.can("edit"):
        raise Forbidden("tagging customers needs the edit permission")
    for tag in (*add, *remove):
        if not _TAG.match(tag):
            raise Invalid(
                f"tags: {tag!r} is not a tag (1-40 letters, digits, spaces, - . : /)",
                details={"field": "tags"},
            )
    changed = 0
    with db.write() as session:
        rows = session.scalars(
            select(Profile).where(
                Profile.id.in_(profile_ids), Profile.merged_into.is_(None), customer_write_filter(viewer)
            )
        ).all()
        for row in rows:
            tags = [t for t in (row.tags or []) if t not in remove]
            tags += [t for t in add if t not in tags]
            if tags != list(row.tags or []):
                row.tags = tags
                changed += 1
    return changed


BUILT_IN_VIEWS: dict[str, tuple[str, dict[str, Any]]] = {
    "mine": ("My customers", {"owner": "me"}),
    "week": ("Seen this week", {"seen_within_days": 7}),
    "pool": ("Unowned", {"owner": "none"}),
}
VIEW_FIELDS = ("q", "channel", "owner", "source", "tag", "seen_within_days", "sort")


def save_view(db: Database, user_id: int, name: str, query: dict[str, Any], *, now: datetime) -> int:
    """Keep a named list query for one user ("VIP in Shanghai")."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("name: must be 1 to 100 characters", details={"field": "name"})
    kept = {k: v for k, v in query.items() if k in VIEW_FIELDS and v not in (None, "")}
    with db.write() as session:
        view = SavedView(user_id=user_id, name=name, query=kept, created_at=now)
        session.add(view)
        session.flush()
        return int(view.id)


def list_views(db: Database, user_id: int) -> list[dict[str, Any]]:
    built_in = [{"id": key, "name": name, "query": query} for key, (name, query) in BUILT_IN_VIEWS.items()]
    with db.read() as session:
        rows = session.scalars(select(SavedView).where(SavedView.user_id == user_id).order_by(SavedView.name))
        return built_in + [{"id": str(v.id), "name": v.name, "query": v.query} for v in rows]


def view_query(db: Database, user_id: int, view_id: str) -> dict[str, Any]:
    if view_id in BUILT_IN_VIEWS:
        return dict(BUILT_IN_VIEWS[view_id][1])
    if not view_id.isdigit():
        raise Invalid("view: no such saved view", details={"field": "view"})
    with db.read() as session:
        view = session.scalar(
            select(SavedView).where(SavedView.id == int(view_id), SavedView.user_id == user_id)
        )
    if view is None:
        raise Invalid("view: no such saved view", details={"field": "view"})
    return dict(view.query)


def share_customer(db: Database, viewer: Viewer, profile_id: str, user_id: int, access: str | None) -> None:
    """Share a customer with a colleague (read or write), or stop sharing (access None)."""
    if access not in (None, "read", "write"):
        raise Invalid("access: must be read or write", details={"field": "access"})
    if not viewer.can("edit"):
        raise Forbidden("sharing a customer needs the edit permission")
    with db.write() as session:
        allowed = select(Profile.id).where(
            Profile.id == profile_id, Profile.merged_into.is_(None), customer_write_filter(viewer)
        )
        if session.scalar(allowed) is None:
            raise ProfileNotFound(f"profile {profile_id} does not exist")
        if session.scalar(select(User.id).where(User.id == user_id, User.is_active.is_(True))) is None:
            raise Invalid("user_id: no active user with that id", details={"field": "user_id"})
        member = session.get(ProfileMember, (profile_id, user_id))
        if access is None:
            if member is not None:
                session.delete(member)
        elif member is None:
            session.add(ProfileMember(profile_id=profile_id, user_id=user_id, access=access))
        else:
            member.access = access


def may_change(db: Database, viewer: Viewer, profile_id: str) -> bool:
    """Whether `viewer` may change this customer (in scope and not shared with them read-only)."""
    with db.read() as session:
        query = select(Profile.id).where(Profile.id == profile_id, customer_write_filter(viewer))
        return session.scalar(query) is not None
