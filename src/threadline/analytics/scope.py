"""Which customers and events a chart counts: the viewer's data scope, then the page's filters.

Every query in this package starts here, so an agent's dashboard counts only their own customers
(threadline.accounts.customer_filter), a team filter narrows to the customers owned by that team's
members and a segment filter to the segment's current members.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, select, true

from threadline.accounts import Viewer, customer_filter
from threadline.errors import Invalid
from threadline.storage.models import Event, Profile, SegmentMembership, User

SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])
_CHANNEL = re.compile(r"^[a-z_]{1,20}$")
# A year and a bit: long enough for a 13-month cohort table, short enough that nobody scans ten years
# of events by accident.
MAX_RANGE_DAYS = 800


@dataclass(frozen=True, slots=True)
class InsightFilters:
    """The filters every chart takes: a date range (both days included), a channel, a team, a segment."""

    start: date
    end: date
    channel: str | None = None
    team_id: int | None = None
    segment_id: int | None = None

    @classmethod
    def last_days(cls, today: date, days: int = 90, **options: Any) -> InsightFilters:
        return cls(today - timedelta(days=days - 1), today, **options)

    def checked(self) -> InsightFilters:
        if self.end < self.start:
            raise Invalid("end: must be on or after start", details={"field": "end"})
        if (self.end - self.start).days >= MAX_RANGE_DAYS:
            raise Invalid(
                f"start: the range may span at most {MAX_RANGE_DAYS} days", details={"field": "start"}
            )
        if self.channel is not None and not _CHANNEL.match(self.channel):
            raise Invalid("channel: not a channel name", details={"field": "channel"})
        return self

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min)

    @property
    def until(self) -> datetime:
        """The first moment after the range (exclusive bound: no 23:59:59.999 edge cases)."""
        return datetime.combine(self.end + timedelta(days=1), time.min)

    @property
    def previous(self) -> InsightFilters:
        """The range of the same length just before this one (churn compares the two)."""
        length = self.end - self.start + timedelta(days=1)
        return InsightFilters(
            self.start - length, self.start - timedelta(days=1), self.channel, self.team_id, self.segment_id
        )

    @property
    def narrows_customers(self) -> bool:
        """Whether a team or segment filter picks customers (beyond the viewer's own scope)."""
        return self.team_id is not None or self.segment_id is not None


def customer_scope(viewer: Viewer, filters: InsightFilters, profile: Any = Profile) -> ColumnElement[bool]:
    """Live customers the viewer may see, narrowed to the team and segment filters. A segment counts its
    members as they are now (segments keep no history of who was in them when)."""
    condition = and_(profile.merged_into.is_(None), customer_filter(viewer, profile))
    if filters.team_id is not None:
        members = select(User.id).where(User.team_id == filters.team_id)
        condition = and_(condition, profile.owner_id.in_(members))
    if filters.segment_id is not None:
        in_segment = select(SegmentMembership.profile_id).where(
            SegmentMembership.segment_id == filters.segment_id
        )
        condition = and_(condition, profile.id.in_(in_segment))
    return condition


def needs_profile_join(viewer: Viewer, filters: InsightFilters) -> bool:
    """Events always point at a live profile (a merge moves them), so a viewer who sees everyone
    without a team or segment filter can count events without reading profiles at all."""
    return viewer.scope != "all" or filters.narrows_customers


def scoped_events(
    stmt: SelectT,
    viewer: Viewer,
    filters: InsightFilters,
    *,
    names: tuple[str, ...] | None = None,
    in_range: bool = True,
    channel: bool = True,
) -> SelectT:
    """`stmt` over `events` limited to the viewer's customers and the filters (range, channel, names)."""
    conditions: list[ColumnElement[bool]] = []
    if in_range:
        conditions += [Event.timestamp >= filters.since, Event.timestamp < filters.until]
    if channel and filters.channel:
        conditions.append(Event.channel == filters.channel)
    if names is not None:
        conditions.append(Event.name.in_(names) if len(names) > 1 else Event.name == names[0])
    if needs_profile_join(viewer, filters):
        stmt = stmt.join(Profile, Profile.id == Event.profile_id)
        conditions.append(customer_scope(viewer, filters))
    return stmt.where(and_(true(), *conditions))
