"""The customer portrait (客户画像): tags derived from behaviour and traits, and how customers spread.

Tags, as of a moment (the end of the date range), from one row per customer computed in SQL:
- favourite channel: the channel with the most events (profiles.channels keeps the counts, so no event
  is read); ties go to the channel name first in alphabetical order;
- price sensitivity, from orders of the last 365 days: "high" when half or more used a discount
  (properties.discount > 0 or a coupon), "medium" when some did, "low" when none did, "unknown" without
  orders;
- purchase frequency band, orders of the last 365 days: none (0), one-off (1), occasional (2-4),
  frequent (5+);
- value tier, revenue of the last 365 days: none (0), low, medium (200+), high (1,000+);
- lifecycle stage: new (first seen within 30 days), prospect (active within 90 days, never ordered),
  active (active within 90 days), at risk (last seen 90-180 days ago), lapsed (longer).
The thresholds are `PortraitRules`; docs/analytics.md (Customer portrait) explains them.

The daily scores run also stores every live customer's tags as `profile_scores` rows named
`portrait_<tag>` (value NULL, the tag in `details.value`), which is what segments' `portrait` condition
reads: one indexed lookup per customer instead of this whole computation inside a segment's SQL.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal_column, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from threadline.accounts import Viewer
from threadline.analytics.dataset import Dataset
from threadline.analytics.expressions import has_key, json_number, json_text
from threadline.analytics.measures import ORDER_EVENTS, revenue_of
from threadline.analytics.scope import InsightFilters, customer_scope
from threadline.analytics.scores import Score
from threadline.storage import Database
from threadline.storage.models import Event, Profile, Source

# Keep in step with threadline.segments' PORTRAIT_TAGS (a test compares them).
TAGS = ("favourite_channel", "price_sensitivity", "purchase_frequency", "value_tier", "lifecycle_stage")
SCORE_NAMES = tuple(f"portrait_{tag}" for tag in TAGS)
PORTRAIT_MODEL = "portrait-1"
TRAIT_VIEWS = ("industry", "region", "city", "tier", "source")


@dataclass(frozen=True, slots=True)
class PortraitRules:
    new_days: int = 30
    active_days: int = 90
    lapsed_days: int = 180
    lookback_days: int = 365
    occasional_orders: int = 2
    frequent_orders: int = 5
    medium_value: float = 200.0
    high_value: float = 1000.0
    high_discount_share: float = 0.5


def _text(value: str) -> Any:
    return literal_column("'" + value.replace("'", "''") + "'")


def _favourite_channels(dialect: str, scope: ColumnElement[bool]) -> Any:
    each = func.jsonb_each if dialect == "postgresql" else func.json_each
    channel = each(Profile.channels).table_valued("key", "value").alias("channel")
    events = func.coalesce(json_number(dialect, channel.c.value, "events"), 0)
    rank = func.row_number().over(partition_by=Profile.id, order_by=(events.desc(), channel.c.key))
    ranked = (
        select(Profile.id.label("profile_id"), channel.c.key.label("channel"), rank.label("rank"))
        .select_from(Profile)
        .join(channel, true())
        .where(scope)
        .subquery()
    )
    return select(ranked.c.profile_id, ranked.c.channel).where(ranked.c.rank == 1).subquery()


def _discounted(dialect: str) -> ColumnElement[bool]:
    coupon = json_text(dialect, Event.properties, "coupon")
    return or_(
        json_number(dialect, Event.properties, "discount") > 0, and_(coupon.is_not(None), coupon != "")
    )


def _tagged(db: Database, scope: ColumnElement[bool], as_of: datetime, rules: PortraitRules) -> Any:
    """One row per customer in `scope`: their five tags."""
    dialect = db.dialect
    since = as_of - timedelta(days=rules.lookback_days)
    recent_order = and_(
        Event.profile_id == Profile.id,
        Event.name.in_(ORDER_EVENTS),
        Event.timestamp >= since,
        Event.timestamp < as_of,
    )
    per_customer = (
        select(
            Profile.id.label("profile_id"),
            Profile.first_seen.label("first_seen"),
            Profile.last_seen.label("last_seen"),
            func.count(Event.id).label("orders"),
            func.coalesce(func.sum(case((Event.id.is_not(None), revenue_of(dialect)), else_=0.0)), 0.0).label(
                "revenue"
            ),
            func.sum(case((and_(Event.id.is_not(None), _discounted(dialect)), 1), else_=0)).label(
                "discounted"
            ),
        )
        .select_from(Profile)
        .outerjoin(Event, recent_order)
        .where(scope)
        .group_by(Profile.id, Profile.first_seen, Profile.last_seen)
        .subquery()
    )
    c = per_customer.c
    favourite = _favourite_channels(dialect, scope)
    sensitivity = case(
        (c.orders == 0, _text("unknown")),
        (c.discounted >= c.orders * rules.high_discount_share, _text("high")),
        (c.discounted > 0, _text("medium")),
        else_=_text("low"),
    )
    frequency = case(
        (c.orders == 0, _text("none")),
        (c.orders < rules.occasional_orders, _text("one-off")),
        (c.orders < rules.frequent_orders, _text("occasional")),
        else_=_text("frequent"),
    )
    value = case(
        (c.revenue <= 0, _text("none")),
        (c.revenue < rules.medium_value, _text("low")),
        (c.revenue < rules.high_value, _text("medium")),
        else_=_text("high"),
    )
    lifecycle = case(
        (c.first_seen >= as_of - timedelta(days=rules.new_days), _text("new")),
        (and_(c.last_seen >= as_of - timedelta(days=rules.active_days), c.orders == 0), _text("prospect")),
        (c.last_seen >= as_of - timedelta(days=rules.active_days), _text("active")),
        (c.last_seen >= as_of - timedelta(days=rules.lapsed_days), _text("at risk")),
        else_=_text("lapsed"),
    )
    return (
        select(
            c.profile_id,
            func.coalesce(favourite.c.channel, _text("none")).label("favourite_channel"),
            sensitivity.label("price_sensitivity"),
            frequency.label("purchase_frequency"),
            value.label("value_tier"),
            lifecycle.label("lifecycle_stage"),
        )
        .select_from(per_customer)
        .outerjoin(favourite, favourite.c.profile_id == c.profile_id)
        .subquery()
    )


def _scope(
    db: Database, viewer: Viewer, filters: InsightFilters, until: datetime | None = None
) -> ColumnElement[bool]:
    scope = and_(customer_scope(viewer, filters), Profile.first_seen < (until or filters.until))
    if filters.channel:
        scope = and_(scope, has_key(db.dialect, Profile.channels, filters.channel))
    return scope


def portrait_distribution(
    db: Database,
    viewer: Viewer,
    filters: InsightFilters,
    rules: PortraitRules = PortraitRules(),
    *,
    until: datetime | None = None,
) -> dict[str, Dataset]:
    """Customers per value of each tag, as of the end of the range (or `until`). One query: customers are
    counted per combination of tags in SQL, then the combinations (a few hundred at most) are summed per
    tag."""
    filters = filters.checked()
    until = until or filters.until
    tagged = _tagged(db, _scope(db, viewer, filters, until), until, rules)
    keys = [tagged.c[tag] for tag in TAGS]
    with db.read() as session:
        combinations = session.execute(select(*keys, func.count()).group_by(*keys)).all()
    counts: dict[str, Counter[str]] = {tag: Counter() for tag in TAGS}
    for row in combinations:
        for tag, value in zip(TAGS, row[:-1], strict=True):
            counts[tag][str(value)] += int(row[-1])
    return {
        tag: Dataset(
            f"portrait_{tag}",
            ("value", "customers"),
            sorted(counts[tag].items(), key=lambda kv: (-kv[1], kv[0])),
        )
        for tag in TAGS
    }


def portrait_of(
    db: Database, viewer: Viewer, profile_id: str, *, as_of: datetime, rules: PortraitRules = PortraitRules()
) -> dict[str, str] | None:
    """One customer's tags (the 360 page, segments); None when the viewer may not see them."""
    filters = InsightFilters(as_of.date(), as_of.date())
    scope = and_(customer_scope(viewer, filters), Profile.id == profile_id)
    tagged = _tagged(db, scope, as_of, rules)
    with db.read() as session:
        row = session.execute(select(*(tagged.c[tag] for tag in TAGS))).first()
    return None if row is None else dict(zip(TAGS, (str(v) for v in row), strict=True))


def portrait_scores(db: Database, *, as_of: datetime, rules: PortraitRules = PortraitRules()) -> list[Score]:
    """Every live customer's tags as score rows (`portrait_<tag>`, the tag in `details.value`)."""
    tagged = _tagged(db, Profile.merged_into.is_(None), as_of, rules)
    with db.read() as session:
        rows = session.execute(select(tagged.c.profile_id, *(tagged.c[tag] for tag in TAGS))).all()
    return [
        Score(row[0], name, None, {"value": str(value)})
        for row in rows
        for name, value in zip(SCORE_NAMES, row[1:], strict=True)
    ]


def trait_distribution(
    db: Database, viewer: Viewer, filters: InsightFilters, view: str, *, until: datetime | None = None
) -> Dataset:
    """Customers per industry, region, city or tier (the `tier` trait, else `level`), or per source
    (the source of their first event), among those first seen before the end of the range (or `until`)."""
    filters = filters.checked()
    if view not in TRAIT_VIEWS:
        raise ValueError(f"no portrait view {view!r}")
    scope = _scope(db, viewer, filters, until)
    if view == "source":
        first = and_(Event.profile_id == Profile.id, Event.timestamp == Profile.first_seen)
        one_source = (
            select(Profile.id.label("profile_id"), func.min(Source.name).label("grp"))
            .select_from(Profile)
            .outerjoin(Event, first)
            .outerjoin(Source, Source.id == Event.source_id)
            .where(scope)
            .group_by(Profile.id)
            .subquery()
        )
        key: Any = func.coalesce(one_source.c.grp, _text("unknown"))
        stmt = select(key, func.count()).select_from(one_source)
    else:
        trait = json_text(db.dialect, Profile.traits, view)
        if view == "tier":
            trait = func.coalesce(trait, json_text(db.dialect, Profile.traits, "level"))
        key = func.coalesce(trait, _text("unknown"))
        stmt = select(key, func.count()).select_from(Profile).where(scope)
    with db.read() as session:
        rows = session.execute(stmt.group_by(key).order_by(func.count().desc(), key)).all()
    return Dataset(f"portrait_by_{view}", (view, "customers"), [(str(k), int(n)) for k, n in rows])
