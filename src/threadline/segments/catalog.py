"""Segments as records: create, edit, list, delete; a live preview while a definition is edited; the
members of a segment and the segments of a customer, always within the viewer's data scope.

Who may define segments: admins and managers (the edit permission and a scope wider than one's own
customers). A segment is a workspace-wide audience that journeys will send to; an agent, who sees only
their own customers, could not see what their definition selects among everyone else's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from threadline.accounts import Viewer, customer_filter
from threadline.clock import utcnow
from threadline.errors import Conflict, Forbidden, Invalid, NotFound
from threadline.profiles import COUNT_CAP as COUNT_CAP
from threadline.profiles import resolve_profile_id
from threadline.segments.compiler import Compiler
from threadline.segments.definitions import InvalidDefinition, segment_references, validate_definition
from threadline.storage import Database
from threadline.storage.models import Profile, Segment, SegmentMembership

EDITOR_ROLES = frozenset({"admin", "manager", "system"})
SAMPLE_LIMIT = 50
MAX_PAGE_SIZE = 200
MAX_NAME = 100
MAX_DESCRIPTION = 2000


class SegmentNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class SegmentView:
    id: int
    name: str
    description: str | None
    definition: dict[str, Any]
    active: bool
    member_count: int
    computed_at: datetime | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Segment) -> SegmentView:
        return cls(
            row.id,
            row.name,
            row.description,
            dict(row.definition or {}),
            bool(row.active),
            int(row.member_count or 0),
            row.computed_at,
            row.created_by,
            row.created_at,
            row.updated_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "definition": self.definition,
            "active": self.active,
            "member_count": self.member_count,
            "computed_at": _iso(self.computed_at),
            "created_by": self.created_by,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def may_define(viewer: Viewer) -> bool:
    return viewer.can("edit") and viewer.role in EDITOR_ROLES


def _require_editor(viewer: Viewer) -> None:
    if not may_define(viewer):
        raise Forbidden("defining segments needs the admin or manager role")


def compiler_for(session: Session, now: datetime) -> Compiler:
    """A compiler that reads other segments' definitions from this session (for "in segment")."""
    cache: dict[int, dict[str, Any] | None] = {}

    def definition_of(segment_id: int) -> dict[str, Any] | None:
        if segment_id not in cache:
            row = session.get(Segment, segment_id)
            cache[segment_id] = dict(row.definition) if row is not None else None
        return cache[segment_id]

    dialect = session.get_bind().dialect.name
    return Compiler(dialect, now, definition_of)


def check_references(session: Session, definition: dict[str, Any], segment_id: int | None) -> None:
    """Every segment named exists, and none leads back to `segment_id` (the one being saved)."""
    for other, field in segment_references(definition):
        if session.get(Segment, other) is None:
            raise InvalidDefinition(field, f"segment {other} does not exist")
        if segment_id is not None and _leads_to(session, other, segment_id, set()):
            raise InvalidDefinition(field, "would make a cycle: this segment would contain itself")


def _leads_to(session: Session, start: int, target: int, seen: set[int]) -> bool:
    if start == target:
        return True
    if start in seen:
        return False
    seen.add(start)
    row = session.get(Segment, start)
    if row is None:
        return False
    return any(
        _leads_to(session, other, target, seen) for other, _ in segment_references(dict(row.definition))
    )


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME:
        raise Invalid(f"name: must be 1 to {MAX_NAME} characters", details={"field": "name"})
    return name.strip()


def _clean_description(description: Any) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise Invalid(
            f"description: must be text of at most {MAX_DESCRIPTION} characters",
            details={"field": "description"},
        )
    return description.strip() or None


def create_segment(
    db: Database,
    viewer: Viewer,
    *,
    name: str,
    definition: Any,
    description: str | None = None,
    active: bool = True,
    now: datetime,
) -> SegmentView:
    """A new segment, validated; its members are computed by the next recompute (or `recompute`)."""
    _require_editor(viewer)
    clean = validate_definition(definition)
    row = Segment(
        name=_clean_name(name),
        description=_clean_description(description),
        definition=clean,
        created_by=viewer.user_id,
        created_at=now,
        updated_at=now,
        member_count=0,
        computed_at=None,
        active=active,
    )
    try:
        with db.write() as session:
            check_references(session, clean, None)
            compiler_for(session, now).condition(clean)  # a reference's own definition must compile too
            session.add(row)
            session.flush()
            return SegmentView.of(row)
    except IntegrityError as error:
        raise Conflict(f"name: a segment named {row.name!r} exists", details={"field": "name"}) from error


def update_segment(
    db: Database,
    viewer: Viewer,
    segment_id: int,
    *,
    now: datetime,
    name: str | None = None,
    definition: Any = None,
    description: str | None = None,
    active: bool | None = None,
) -> SegmentView:
    """Change what is given; a new definition takes effect at the next recompute."""
    _require_editor(viewer)
    clean = validate_definition(definition) if definition is not None else None
    try:
        with db.write() as session:
            row = session.get(Segment, segment_id)
            if row is None:
                raise SegmentNotFound(f"segment {segment_id} does not exist")
            if name is not None:
                row.name = _clean_name(name)
            if description is not None:
                row.description = _clean_description(description)
            if active is not None:
                row.active = active
            if clean is not None:
                check_references(session, clean, segment_id)
                row.definition = clean
            row.updated_at = now
            session.flush()
            return SegmentView.of(row)
    except IntegrityError as error:
        raise Conflict(f"name: a segment named {name!r} exists", details={"field": "name"}) from error


def delete_segment(db: Database, viewer: Viewer, segment_id: int) -> None:
    """Remove a segment and its memberships (without exit events: the audience is gone, not the
    customers' reasons). A segment another one names cannot be deleted."""
    _require_editor(viewer)
    with db.write() as session:
        row = session.get(Segment, segment_id)
        if row is None:
            raise SegmentNotFound(f"segment {segment_id} does not exist")
        users = [
            other.name
            for other in session.scalars(select(Segment).where(Segment.id != segment_id))
            if any(ref == segment_id for ref, _ in segment_references(dict(other.definition)))
        ]
        if users:
            raise Conflict(
                f"segment {row.name!r} is used by {', '.join(sorted(users))}", details={"used_by": users}
            )
        session.execute(delete(SegmentMembership).where(SegmentMembership.segment_id == segment_id))
        session.delete(row)


def get_segment(db: Database, segment_id: int) -> SegmentView:
    with db.read() as session:
        row = session.get(Segment, segment_id)
        if row is None:
            raise SegmentNotFound(f"segment {segment_id} does not exist")
        return SegmentView.of(row)


def list_segments(db: Database, viewer: Viewer) -> list[tuple[SegmentView, int]]:
    """Every segment by name, with its member count as the viewer may see it: all members for a viewer
    who sees every customer, otherwise those in their data scope (up to COUNT_CAP + 1)."""
    with db.read() as session:
        rows = [SegmentView.of(r) for r in session.scalars(select(Segment).order_by(Segment.name))]
        if viewer.scope == "all":
            return [(r, r.member_count) for r in rows]
        return [(r, _scoped_count(session, viewer, r.id)) for r in rows]


def _scoped_count(session: Session, viewer: Viewer, segment_id: int) -> int:
    ids = (
        select(SegmentMembership.profile_id)
        .join(Profile, Profile.id == SegmentMembership.profile_id)
        .where(
            SegmentMembership.segment_id == segment_id, Profile.merged_into.is_(None), customer_filter(viewer)
        )
        .limit(COUNT_CAP + 1)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(ids)) or 0)


def _row(profile: Profile) -> dict[str, Any]:
    """A customer as the customer list shows one (the interfaces mask it for viewers without pii)."""
    traits = profile.traits or {}
    return {
        "id": profile.id,
        "display_name": profile.display_name,
        "email": traits.get("email"),
        "phone": traits.get("phone"),
        "channels": sorted(profile.channels or {}),
        "last_seen": _iso(profile.last_seen),
    }


def preview(
    db: Database, viewer: Viewer, definition: Any, limit: int = 10, *, now: datetime | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """How many customers in the viewer's scope a definition selects now (up to COUNT_CAP + 1: more
    than COUNT_CAP), and the most recently seen `limit` of them. Validates like saving does; a
    definition naming a segment is checked for existence (cycles only matter once saved)."""
    clean = validate_definition(definition)
    limit = min(max(limit, 0), SAMPLE_LIMIT)
    with db.read() as session:
        check_references(session, clean, None)
        condition = compiler_for(session, now or utcnow()).condition(clean)
        selected = select(Profile.id).where(Profile.merged_into.is_(None), customer_filter(viewer), condition)
        capped = selected.limit(COUNT_CAP + 1).subquery()
        count = int(session.scalar(select(func.count()).select_from(capped)) or 0)
        sample = session.scalars(
            select(Profile)
            .where(Profile.id.in_(selected))
            .order_by(Profile.last_seen.desc(), Profile.id.desc())
            .limit(limit)
        ).all()
        return count, [_row(p) for p in sample]


def list_members(
    db: Database, viewer: Viewer, segment_id: int, *, page: int = 1, size: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """One page of a segment's members in the viewer's scope (newest members first) and how many there
    are, up to COUNT_CAP + 1."""
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise Invalid(f"size: must be between 1 and {MAX_PAGE_SIZE}", details={"field": "size"})
    if page < 1:
        raise Invalid("page: must be 1 or more", details={"field": "page"})
    with db.read() as session:
        if session.get(Segment, segment_id) is None:
            raise SegmentNotFound(f"segment {segment_id} does not exist")
        rows = session.execute(
            select(Profile, SegmentMembership.entered_at)
            .join(SegmentMembership, SegmentMembership.profile_id == Profile.id)
            .where(
                SegmentMembership.segment_id == segment_id,
                Profile.merged_into.is_(None),
                customer_filter(viewer),
            )
            .order_by(SegmentMembership.entered_at.desc(), Profile.id)
            .limit(size)
            .offset((page - 1) * size)
        ).all()
        total = _scoped_count(session, viewer, segment_id)
        return [{**_row(p), "entered_at": _iso(entered)} for p, entered in rows], total


def segments_of(db: Database, viewer: Viewer, profile_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The live profile's id and the segments it is in, by name; ProfileNotFound outside the scope."""
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        rows = session.execute(
            select(Segment.id, Segment.name, SegmentMembership.entered_at)
            .join(SegmentMembership, SegmentMembership.segment_id == Segment.id)
            .where(SegmentMembership.profile_id == live)
            .order_by(Segment.name)
        ).all()
    return live, [{"id": i, "name": n, "entered_at": _iso(at)} for i, n, at in rows]
