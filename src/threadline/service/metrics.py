"""Service metrics: how fast and how well the desk serves, per channel, agent or team, week by week.

- First response time: from opening to the first agent reply; resolution time: from opening to
  resolved. Both wall-clock and business time (the conversation's SLA calendar; none: every minute).
  Shown as the median (one stuck conversation does not hide a good week) and the average.
- First-contact resolution: of the resolved conversations, those resolved with exactly one agent reply
  and never reopened.
- Reopen rate: of the conversations resolved at least once, those reopened.
- Backlog: open and pending conversations now, by age.
- CSAT (share of 4-5 answers, in percent), CES (average, 7 the easiest) and NPS (promoters minus
  detractors, in percent), as in the insight dashboards (threadline.analytics.surveys).

Conversations count in the period they opened; survey answers in the period they were answered. Only
customers in the viewer's data scope count (`customer_filter`). Rows are read into Python for the
business-time arithmetic: fine for a desk's months; a data warehouse is the place for years.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import mean, median
from typing import Any

from sqlalchemy import and_, func, select

from threadline.accounts import Viewer, customer_filter
from threadline.errors import Invalid
from threadline.service.business_hours import BusinessCalendar, business_minutes_between, parse_calendar
from threadline.storage import Database
from threadline.storage.models import (
    Conversation,
    ConversationMessage,
    Profile,
    SegmentMembership,
    SlaPolicy,
    SurveyResponse,
    Team,
    User,
)

GROUPS = ("channel", "agent", "team")
INTERVALS = ("week", "month")
# Backlog ages: (label key, up to this many days); the last has no end.
AGE_BUCKETS = (("under_1d", 1), ("1_3d", 3), ("3_7d", 7), ("over_7d", None))
ALWAYS_OPEN = parse_calendar({})


@dataclass(frozen=True, slots=True)
class MetricsQuery:
    start: datetime
    end: datetime
    by: str = "channel"
    interval: str = "week"
    # Only the conversations of this segment's current members (Insight's segment filter).
    segment_id: int | None = None

    def checked(self) -> MetricsQuery:
        if self.by not in GROUPS:
            raise Invalid(f"by: must be one of {', '.join(GROUPS)}", details={"field": "by"})
        if self.interval not in INTERVALS:
            raise Invalid(f"interval: must be one of {', '.join(INTERVALS)}", details={"field": "interval"})
        if self.end <= self.start:
            raise Invalid("end: must be after start", details={"field": "end"})
        if self.end - self.start > timedelta(days=731):
            raise Invalid("end: at most two years after start", details={"field": "end"})
        return self


def metrics_query(
    start: str | None, end: str | None, by: str = "channel", interval: str = "week", *, now: datetime
) -> MetricsQuery:
    """A query from ISO dates as typed (end exclusive); the 12 weeks up to today when left out."""
    try:
        until = (
            datetime.fromisoformat(end) if end else datetime(now.year, now.month, now.day) + timedelta(days=1)
        )
        since = datetime.fromisoformat(start) if start else until - timedelta(weeks=12)
    except ValueError:
        raise Invalid("start, end: dates like 2026-03-01", details={"field": "start"}) from None
    return MetricsQuery(since.replace(tzinfo=None), until.replace(tzinfo=None), by, interval).checked()


@dataclass
class Tally:
    """What one group (or one group in one period) adds up to."""

    conversations: int = 0
    first_response: list[float] = field(default_factory=list)
    first_response_business: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)
    resolution_business: list[float] = field(default_factory=list)
    resolved: int = 0
    first_contact: int = 0
    resolved_ever: int = 0
    reopened: int = 0
    csat: list[int] = field(default_factory=list)
    ces: list[int] = field(default_factory=list)
    nps: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def middle(values: list[float]) -> float | None:
            return round(median(values), 1) if values else None

        def average(values: Iterable[float]) -> float | None:
            values = list(values)
            return round(mean(values), 1) if values else None

        def share(part: int, whole: int) -> float | None:
            return round(100 * part / whole, 1) if whole else None

        promoters = sum(1 for s in self.nps if s >= 9)
        detractors = sum(1 for s in self.nps if s <= 6)
        return {
            "conversations": self.conversations,
            "first_response_median_minutes": middle(self.first_response),
            "first_response_avg_minutes": average(self.first_response),
            "first_response_business_median_minutes": middle(self.first_response_business),
            "resolution_median_minutes": middle(self.resolution),
            "resolution_avg_minutes": average(self.resolution),
            "resolution_business_median_minutes": middle(self.resolution_business),
            "resolved": self.resolved,
            "first_contact_resolution": share(self.first_contact, self.resolved),
            "reopen_rate": share(self.reopened, self.resolved_ever),
            "csat": share(sum(1 for s in self.csat if s >= 4), len(self.csat)),
            "csat_answers": len(self.csat),
            "ces": average(self.ces),
            "ces_answers": len(self.ces),
            "nps": round(100 * (promoters - detractors) / len(self.nps), 1) if self.nps else None,
            "nps_answers": len(self.nps),
        }


@dataclass(frozen=True, slots=True)
class ServiceReport:
    query: MetricsQuery
    overall: dict[str, Any]
    groups: list[dict[str, Any]]  # {"key", "label", **summary}
    periods: list[str]  # period starts, ISO dates
    series: dict[str, dict[str, dict[str, Any]]]  # group key -> period -> summary
    backlog: list[dict[str, Any]]  # {"key", "label", under_1d, 1_3d, 3_7d, over_7d, total}


def period_start(moment: datetime, interval: str) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday()) if interval == "week" else day.replace(day=1)


def _periods(query: MetricsQuery) -> list[str]:
    found, current = [], period_start(query.start, query.interval)
    while datetime.combine(current, datetime.min.time()) < query.end:
        found.append(current.isoformat())
        current = (
            current + timedelta(days=7)
            if query.interval == "week"
            else (current.replace(day=28) + timedelta(days=4)).replace(day=1)
        )
    return found


def _group_key(by: str, channel: str, assignee_id: int | None, team_id: int | None) -> str:
    if by == "channel":
        return channel
    value = assignee_id if by == "agent" else team_id
    return "none" if value is None else str(value)


def _labels(session: Any, by: str, keys: Iterable[str]) -> dict[str, str]:
    ids = [int(k) for k in keys if k.isdigit()]
    if by == "agent" and ids:
        rows = session.execute(select(User.id, func.coalesce(User.name, User.email)).where(User.id.in_(ids)))
        return {str(i): str(name) for i, name in rows}
    if by == "team" and ids:
        return {
            str(i): name for i, name in session.execute(select(Team.id, Team.name).where(Team.id.in_(ids)))
        }
    return {}


def service_metrics(db: Database, viewer: Viewer, query: MetricsQuery, *, now: datetime) -> ServiceReport:
    query = query.checked()
    in_scope = customer_filter(viewer)
    if query.segment_id is not None:
        members = select(SegmentMembership.profile_id).where(SegmentMembership.segment_id == query.segment_id)
        in_scope = and_(in_scope, Profile.id.in_(members))
    replies = (
        select(ConversationMessage.conversation_id, func.count().label("replies"))
        # A survey Threadline posted in a chat is not an agent's reply.
        .where(ConversationMessage.direction == "out", ConversationMessage.automated.is_(False))
        .group_by(ConversationMessage.conversation_id)
        .subquery()
    )
    with db.read() as session:
        calendars: dict[int, BusinessCalendar] = {}
        for policy_id, calendar in session.execute(select(SlaPolicy.id, SlaPolicy.calendar)):
            try:
                calendars[policy_id] = parse_calendar(calendar)
            except Invalid:  # saved before its check existed: counted as always open
                calendars[policy_id] = ALWAYS_OPEN
        conversations = session.execute(
            select(Conversation, func.coalesce(replies.c.replies, 0))
            .join(Profile, Profile.id == Conversation.profile_id)
            .outerjoin(replies, replies.c.conversation_id == Conversation.id)
            .where(in_scope, Conversation.created_at >= query.start, Conversation.created_at < query.end)
        ).all()
        surveys = session.execute(
            select(SurveyResponse.kind, SurveyResponse.score, SurveyResponse.answered_at, Conversation)
            .join(Profile, Profile.id == SurveyResponse.profile_id)
            .outerjoin(Conversation, Conversation.id == SurveyResponse.conversation_id)
            .where(
                in_scope,
                SurveyResponse.answered_at >= query.start,
                SurveyResponse.answered_at < query.end,
                SurveyResponse.score.is_not(None),
            )
        ).all()
        backlog_rows = session.execute(
            select(
                Conversation.channel, Conversation.assignee_id, Conversation.team_id, Conversation.created_at
            )
            .join(Profile, Profile.id == Conversation.profile_id)
            .where(in_scope, Conversation.status.in_(("open", "pending")))
        ).all()
        session.expunge_all()

        overall = Tally()
        by_group: dict[str, Tally] = defaultdict(Tally)
        by_period: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
        for conversation, reply_count in conversations:
            key = _group_key(query.by, conversation.channel, conversation.assignee_id, conversation.team_id)
            period = period_start(conversation.created_at, query.interval).isoformat()
            calendar = calendars.get(conversation.sla_policy_id or 0, ALWAYS_OPEN)
            for tally in (overall, by_group[key], by_period[key][period]):
                _count_conversation(tally, conversation, int(reply_count), calendar)
        for kind, score, answered_at, conversation in surveys:
            tallies = [overall]
            if conversation is not None:
                key = _group_key(
                    query.by, conversation.channel, conversation.assignee_id, conversation.team_id
                )
                period = period_start(answered_at or query.start, query.interval).isoformat()
                tallies += [by_group[key], by_period[key][period]]
            for tally in tallies:
                getattr(tally, kind).append(int(score or 0))
        backlog: dict[str, dict[str, int]] = defaultdict(lambda: {name: 0 for name, _ in AGE_BUCKETS})
        for channel, assignee_id, team_id, created_at in backlog_rows:
            age = (now - created_at) / timedelta(days=1)
            bucket = next(name for name, limit in AGE_BUCKETS if limit is None or age < limit)
            backlog[_group_key(query.by, channel, assignee_id, team_id)][bucket] += 1
        labels = _labels(session, query.by, set(by_group) | set(backlog))

    def label(key: str) -> str:
        return labels.get(key, key)

    return ServiceReport(
        query=query,
        overall=overall.summary(),
        groups=[{"key": k, "label": label(k), **by_group[k].summary()} for k in sorted(by_group)],
        periods=_periods(query),
        series={k: {p: t.summary() for p, t in sorted(periods.items())} for k, periods in by_period.items()},
        backlog=[
            {"key": k, "label": label(k), **counts, "total": sum(counts.values())}
            for k, counts in sorted(backlog.items())
        ],
    )


def _count_conversation(
    tally: Tally, conversation: Conversation, replies: int, calendar: BusinessCalendar
) -> None:
    tally.conversations += 1
    opened = conversation.created_at
    if conversation.first_response_at is not None:
        tally.first_response.append((conversation.first_response_at - opened) / timedelta(minutes=1))
        tally.first_response_business.append(
            business_minutes_between(opened, conversation.first_response_at, calendar)
        )
    reopened = (conversation.reopened or 0) > 0
    if conversation.resolved_at is not None or reopened:
        tally.resolved_ever += 1
        tally.reopened += int(reopened)
    if conversation.resolved_at is not None and conversation.status in ("resolved", "closed"):
        tally.resolved += 1
        tally.resolution.append((conversation.resolved_at - opened) / timedelta(minutes=1))
        tally.resolution_business.append(business_minutes_between(opened, conversation.resolved_at, calendar))
        if replies == 1 and not reopened:
            tally.first_contact += 1


CSV_COLUMNS = (
    "conversations",
    "first_response_median_minutes",
    "first_response_avg_minutes",
    "first_response_business_median_minutes",
    "resolution_median_minutes",
    "resolution_avg_minutes",
    "resolution_business_median_minutes",
    "resolved",
    "first_contact_resolution",
    "reopen_rate",
    "csat",
    "csat_answers",
    "ces",
    "ces_answers",
    "nps",
    "nps_answers",
)


def metrics_csv(report: ServiceReport) -> str:
    """One line per group and period, then one per group for the whole period ("all"), then the
    overall line: what a spreadsheet pivots."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([report.query.by, "label", "period", *CSV_COLUMNS])
    for group in report.groups:
        for period, summary in report.series.get(group["key"], {}).items():
            writer.writerow([group["key"], group["label"], period, *(_cell(summary[c]) for c in CSV_COLUMNS)])
        writer.writerow([group["key"], group["label"], "all", *(_cell(group[c]) for c in CSV_COLUMNS)])
    writer.writerow(["all", "", "all", *(_cell(report.overall[c]) for c in CSV_COLUMNS)])
    return out.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
