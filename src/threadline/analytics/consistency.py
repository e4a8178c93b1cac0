"""The consistency report: is the experience as good in every month, channel and customer group?

"Experience" is built from what Threadline records today, each observation on a 0-100 scale:
- a survey answer (surveys.py): its score's place on its scale (CSAT 4 of 5 -> 75, NPS 9 -> 90);
- a scored text (event_sentiments, when the sentiment model has run): (sentiment + 1) * 50;
- a complaint event ("Complaint Filed", "Complaint Submitted"): 0, the worst experience there is.
A group's experience is the average of its observations. The report measures it over time (month by
month), across channels, and across customer groups: new (first seen within 90 days of the
observation) vs long-standing, tiers (the `tier` trait), and owners' teams. For each view it shows the
spread (population standard deviation and max - min of the groups' averages) and names the weakest
group; the weakest link is the worst channel, team or group over all views. Groups with fewer than
`min_observations` observations are shown but never named: two angry answers are not a trend.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, String, and_, case, cast, func, literal_column, select, union_all

from threadline.accounts import Viewer
from threadline.analytics.dataset import Dataset
from threadline.analytics.expressions import days_between, json_text, month_of, unindexed
from threadline.analytics.scope import InsightFilters, scoped_events
from threadline.analytics.surveys import SURVEY_EVENT, experience_of_answer, on_scale
from threadline.storage import Database
from threadline.storage.models import Event, EventSentiment, Profile, Team, User

COMPLAINT_EVENTS = ("Complaint Filed", "Complaint Submitted")
NEW_CUSTOMER_DAYS = 90
DIMENSIONS = ("month", "channel", "customer_age", "tier", "team")
# The views the weakest link is chosen from; months are a trend, not a link.
LINKS = ("channel", "customer_age", "tier", "team")


@dataclass(frozen=True, slots=True)
class Breakdown:
    dimension: str
    groups: Dataset  # group, observations, experience
    spread_stddev: float | None
    spread_range: float | None
    weakest: str | None
    weakest_experience: float | None


@dataclass(frozen=True, slots=True)
class ConsistencyReport:
    breakdowns: dict[str, Breakdown]
    weakest_link: tuple[str, str, float] | None  # dimension, group, experience
    sources: dict[str, int]  # observations per kind: survey, sentiment, complaint

    def summary(self) -> Dataset:
        rows = [
            (
                b.dimension,
                len(b.groups.rows),
                b.spread_stddev,
                b.spread_range,
                b.weakest,
                b.weakest_experience,
            )
            for b in self.breakdowns.values()
        ]
        columns = ("dimension", "groups", "spread_stddev", "spread_range", "weakest", "weakest_experience")
        return Dataset("consistency", columns, rows)


def _observations(dialect: str, viewer: Viewer, filters: InsightFilters) -> Any:
    def columns(kind: str, score: Any) -> list[Any]:
        return [
            Event.profile_id.label("profile_id"),
            Event.channel.label("channel"),
            Event.timestamp.label("at"),
            cast(score, Float).label("score"),
            literal_column(f"'{kind}'").label("kind"),
        ]

    surveys = scoped_events(
        select(*columns("survey", experience_of_answer(dialect))), viewer, filters, names=(SURVEY_EVENT,)
    )
    sentiments = select(*columns("sentiment", (EventSentiment.score + 1.0) * 50.0)).select_from(Event)
    sentiments = sentiments.join(EventSentiment, EventSentiment.event_id == Event.id)
    # Scored events are few beside all events: SQLite reads them and finds each event by id, not every
    # event of the range (3 s at 10,000,000 events with a channel filter).
    at = unindexed(dialect, Event.timestamp)
    sentiments = sentiments.where(at >= filters.since, at < filters.until)
    if filters.channel:
        sentiments = sentiments.where(unindexed(dialect, Event.channel) == filters.channel)
    sentiments = scoped_events(sentiments, viewer, filters, in_range=False, channel=False)
    complaints = scoped_events(
        select(*columns("complaint", literal_column("0.0"))), viewer, filters, names=COMPLAINT_EVENTS
    )
    return union_all(surveys.where(on_scale(dialect)), sentiments, complaints).cte("observations")


def _group_key(dialect: str, dimension: str, seen: Any) -> Any:
    if dimension == "month":
        return month_of(dialect, seen.c.at)
    if dimension == "channel":
        return seen.c.channel
    if dimension == "customer_age":
        is_new = days_between(dialect, seen.c.at, Profile.first_seen) < NEW_CUSTOMER_DAYS
        return case((is_new, literal_column("'new'")), else_=literal_column("'long-standing'"))
    if dimension == "tier":
        return func.coalesce(json_text(dialect, Profile.traits, "tier"), literal_column("'none'"))
    return func.coalesce(cast(Team.name, String), literal_column("'no team'"))


def _breakdown_query(dialect: str, dimension: str, seen: Any) -> Any:
    key = _group_key(dialect, dimension, seen)
    stmt = select(
        literal_column(str(DIMENSIONS.index(dimension) + 1)).label("dim"),
        cast(key, String).label("grp"),
        func.count().label("n"),
        func.avg(seen.c.score).label("experience"),
    ).select_from(seen)
    if dimension in ("customer_age", "tier", "team"):
        stmt = stmt.join(Profile, Profile.id == seen.c.profile_id)
    if dimension == "team":
        stmt = stmt.outerjoin(User, User.id == Profile.owner_id).outerjoin(
            Team, and_(Team.id == User.team_id)
        )
    return stmt.group_by(key)


def _report_query(dialect: str, viewer: Viewer, filters: InsightFilters) -> Any:
    """Every view's groups and the observations per kind in one statement, so the observations (a scan
    of the range's events) are read once: a CTE used more than once is materialized by both databases."""
    seen = _observations(dialect, viewer, filters)
    kinds = select(
        literal_column("0").label("dim"),
        seen.c.kind.label("grp"),
        func.count().label("n"),
        cast(None, Float).label("experience"),
    ).group_by(seen.c.kind)
    every = union_all(kinds, *(_breakdown_query(dialect, d, seen) for d in DIMENSIONS)).subquery()
    return select(every).order_by(every.c.dim, every.c.grp)


def _spread(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.pstdev(values), max(values) - min(values)


def consistency_report(
    db: Database, viewer: Viewer, filters: InsightFilters, *, min_observations: int = 5
) -> ConsistencyReport:
    filters = filters.checked()
    dialect = db.dialect
    breakdowns: dict[str, Breakdown] = {}
    with db.read() as session:
        found = session.execute(_report_query(dialect, viewer, filters)).all()
    sources = {str(g): int(n) for d, g, n, _ in found if int(d) == 0}
    for index, dimension in enumerate(DIMENSIONS, start=1):
        rows = [(str(g), int(n), float(avg)) for d, g, n, avg in found if int(d) == index]
        stddev, width = _spread([r[2] for r in rows])
        eligible = [r for r in rows if r[1] >= min_observations]
        worst = min(eligible, key=lambda r: (r[2], r[0])) if eligible else None
        breakdowns[dimension] = Breakdown(
            dimension,
            Dataset(f"consistency_by_{dimension}", ("group", "observations", "experience"), rows),
            stddev,
            width,
            worst[0] if worst else None,
            worst[2] if worst else None,
        )
    links = [(d, b.weakest, b.weakest_experience) for d in LINKS if (b := breakdowns[d]).weakest is not None]
    # Only a view that has more than one group can have a weakest link: one tier is no comparison.
    links = [link for link in links if len(breakdowns[link[0]].groups.rows) > 1]
    weakest = min(links, key=lambda link: link[2] or 0.0) if links else None
    return ConsistencyReport(breakdowns, weakest, sources)  # type: ignore[arg-type]
