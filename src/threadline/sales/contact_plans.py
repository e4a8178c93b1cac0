"""Contact plans (接触计划): a planned round of contacts with an audience, a channel and a time window.

Making a plan fixes its audience (a list of customers or accounts, or a segment's members at that moment,
within the maker's data scope) and gives each customer's owner a task, due when the window ends. Every
contact made is a contact card with its evaluation; the plan's effectiveness is counted from the cards.

Scope: a plan is seen by its owner, its team, managers whose teams hold the owner or the team, admins and
analysts, and the reps its tasks went to (they record the cards). A card needs the customer in the plan's
audience and in the recorder's write scope: an agent records cards for their own customers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, or_, select, true
from sqlalchemy.orm import Session

from threadline.accounts import Viewer, customer_filter, customer_write_filter
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.profiles import ProfileNotFound, resolve_profile_id
from threadline.sales.follow_ups import DEFAULT_METHODS
from threadline.sales.scope import sales_filter
from threadline.storage import Database
from threadline.storage.models import (
    ContactCard,
    ContactPlan,
    ContactPlanMember,
    Profile,
    SalesAccount,
    Segment,
    SegmentMembership,
    Task,
    Team,
    User,
)

AUDIENCE_TYPES = ("list", "segment")
MAX_AUDIENCE = 5000  # one plan is one round of personal contacts, not a mass mailing
MAX_NAME = 200
MAX_TEXT = 5000
MAX_SHORT = 500


@dataclass(frozen=True, slots=True)
class Effectiveness:
    """Reached and effective are shares of the customers contacted (a customer counts once, however many
    cards); the average rating is over the cards that have one. Percentages to one decimal."""

    audience: int
    contacted: int
    reached: int
    effective: int
    cards: int
    reached_pct: float | None
    effective_pct: float | None
    coverage_pct: float | None
    average_rating: float | None

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class CardView:
    id: int
    plan_id: int
    profile_id: str
    user_id: int | None
    contacted_at: datetime
    reached: bool
    effective: bool
    rating: int | None
    feedback: str | None

    def as_json(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}
        out["contacted_at"] = self.contacted_at.isoformat() + "Z"
        return out


@dataclass(frozen=True, slots=True)
class PlanView:
    id: int
    name: str
    goal: str
    audience_type: str
    segment_id: int | None
    channel: str
    method: str | None
    starts_at: datetime
    ends_at: datetime
    content: str | None
    incentive: str | None
    owner_id: int | None
    team_id: int | None
    lessons: str | None
    created_by: int | None
    created_at: datetime
    effectiveness: Effectiveness
    members: list[dict[str, Any]] = field(default_factory=list)
    cards: list[CardView] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat() + "Z"
            out[name] = value
        out["effectiveness"] = self.effectiveness.as_json()
        out["cards"] = [card.as_json() for card in self.cards]
        out["feedback"] = [c.feedback for c in self.cards if c.feedback]
        return out


# -- validation -------------------------------------------------------------------------------------------
def _text(value: Any, name: str, limit: int, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid(f"{name}: is required", details={"field": name})
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"{name}: text of at most {limit} characters", details={"field": name})
    return value.strip()


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise Invalid(f"{name}: must be a date and time", details={"field": name})
    return value


def _user_id(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(f"{name}: must be a user id", details={"field": name})
    return value


# -- scope ------------------------------------------------------------------------------------------------
def plan_filter(viewer: Viewer) -> ColumnElement[bool]:
    """The plans `viewer` may see (module docstring)."""
    if viewer.scope == "all":
        return true()
    me = viewer.user_id or 0
    owners = sorted(viewer.owner_ids or frozenset({me}))
    own_team = select(User.team_id).where(User.id == me).scalar_subquery()
    assigned = exists(
        select(ContactPlanMember.plan_id)
        .join(Task, Task.id == ContactPlanMember.task_id)
        .where(ContactPlanMember.plan_id == ContactPlan.id, Task.assignee_id == me)
    )
    conditions = [ContactPlan.owner_id.in_(owners), ContactPlan.team_id == own_team, assigned]
    if viewer.team_ids:
        conditions.append(ContactPlan.team_id.in_(sorted(viewer.team_ids)))
    return or_(*conditions)


def _plan(session: Session, viewer: Viewer, plan_id: int) -> ContactPlan:
    row = session.scalar(select(ContactPlan).where(ContactPlan.id == plan_id, plan_filter(viewer)))
    if row is None:
        raise NotFound(f"contact plan {plan_id} does not exist")
    return row


# -- audience ---------------------------------------------------------------------------------------------
def _list_audience(session: Session, viewer: Viewer, audience: dict[str, Any]) -> dict[str, int | None]:
    """Profile id -> the owner its task goes to. Accounts count as their customer's profile, owned by the
    account's owner (the rep who sells to it)."""
    unknown = set(audience) - {"type", "profile_ids", "account_ids"}
    if unknown:
        name = f"audience.{sorted(unknown)[0]}"
        raise Invalid(f"{name}: unknown", details={"field": name})
    out: dict[str, int | None] = {}
    profile_ids = audience.get("profile_ids") or []
    account_ids = audience.get("account_ids") or []
    if not isinstance(profile_ids, list) or not isinstance(account_ids, list):
        raise Invalid("audience: profile_ids and account_ids are lists", details={"field": "audience"})
    for raw in profile_ids:
        try:
            live = resolve_profile_id(session, str(raw), viewer)
        except ProfileNotFound:
            raise Invalid(
                f"audience.profile_ids: no customer {raw}", details={"field": "audience.profile_ids"}
            ) from None
        out[live] = session.scalar(select(Profile.owner_id).where(Profile.id == live))
    for raw in account_ids:
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise Invalid(
                f"audience.account_ids: {raw!r} is not an account id",
                details={"field": "audience.account_ids"},
            )
        row = session.execute(
            select(SalesAccount.profile_id, SalesAccount.owner_id).where(
                SalesAccount.id == raw, sales_filter(viewer, "account")
            )
        ).first()
        if row is None:
            raise Invalid(
                f"audience.account_ids: no account {raw}", details={"field": "audience.account_ids"}
            )
        if row.profile_id is None:
            # Cards and erasure work by customer profile; a company account without one has nobody to call.
            raise Invalid(
                f"audience.account_ids: account {raw} has no customer profile",
                details={"field": "audience.account_ids"},
            )
        out[resolve_profile_id(session, row.profile_id, Viewer.system())] = row.owner_id
    return out


def _segment_audience(session: Session, viewer: Viewer, segment_id: Any) -> dict[str, int | None]:
    if not isinstance(segment_id, int) or isinstance(segment_id, bool):
        raise Invalid("audience.segment_id: must be a segment id", details={"field": "audience.segment_id"})
    if session.get(Segment, segment_id) is None:
        raise Invalid(
            f"audience.segment_id: no segment {segment_id}", details={"field": "audience.segment_id"}
        )
    rows = session.execute(
        select(Profile.id, Profile.owner_id)
        .join(SegmentMembership, SegmentMembership.profile_id == Profile.id)
        .where(
            SegmentMembership.segment_id == segment_id,
            Profile.merged_into.is_(None),
            customer_filter(viewer),  # only the members the maker may see
        )
        .order_by(Profile.id)
        .limit(MAX_AUDIENCE + 1)
    ).all()
    return {pid: owner for pid, owner in rows}


def _audience(
    session: Session, viewer: Viewer, audience: Any
) -> tuple[str, int | None, dict[str, int | None]]:
    if not isinstance(audience, dict) or audience.get("type") not in AUDIENCE_TYPES:
        raise Invalid(
            f"audience.type: must be one of {', '.join(AUDIENCE_TYPES)}", details={"field": "audience.type"}
        )
    if audience["type"] == "segment":
        segment_id = audience.get("segment_id")
        members = _segment_audience(session, viewer, segment_id)
    else:
        segment_id, members = None, _list_audience(session, viewer, audience)
    if not members:
        raise Invalid("audience: nobody in it (within your data scope)", details={"field": "audience"})
    if len(members) > MAX_AUDIENCE:
        raise Invalid(f"audience: more than {MAX_AUDIENCE} customers", details={"field": "audience"})
    return str(audience["type"]), segment_id, members


def _assignable(viewer: Viewer, owner_id: int | None) -> bool:
    """create_task's rule: agents assign to themselves, managers within their team, admins to anyone."""
    if owner_id is None:
        return False
    return viewer.scope == "all" or owner_id in (viewer.owner_ids or {viewer.user_id})


# -- plans ------------------------------------------------------------------------------------------------
def create_plan(
    db: Database,
    viewer: Viewer,
    *,
    name: Any,
    goal: Any,
    audience: Any,
    channel: Any,
    starts_at: Any,
    ends_at: Any,
    method: Any = None,
    content: Any = None,
    incentive: Any = None,
    owner_id: Any = None,
    team_id: Any = None,
    now: datetime,
) -> PlanView:
    """Make a plan, fix its audience and give each customer's owner a task, in one transaction: a refused
    customer leaves no half-made plan behind."""
    if not viewer.can("edit"):
        raise Forbidden("your role may not make contact plans")
    clean_name = _text(name, "name", MAX_NAME, required=True)
    clean_goal = _text(goal, "goal", MAX_TEXT, required=True)
    if channel not in DEFAULT_METHODS:
        raise Invalid(f"channel: must be one of {', '.join(DEFAULT_METHODS)}", details={"field": "channel"})
    start, end = _time(starts_at, "starts_at"), _time(ends_at, "ends_at")
    if end <= start:
        raise Invalid("ends_at: must be after starts_at", details={"field": "ends_at"})
    owner = _user_id(owner_id, "owner_id")
    owner = viewer.user_id if owner is None else owner
    team = _user_id(team_id, "team_id")
    with db.write() as session:
        if owner is not None and session.get(User, owner) is None:
            raise Invalid(f"owner_id: no user {owner}", details={"field": "owner_id"})
        if owner is not None and owner != viewer.user_id and not _assignable(viewer, owner):
            raise Invalid(
                "owner_id: you can give plans to yourself and your team only", details={"field": "owner_id"}
            )
        if team is not None and session.get(Team, team) is None:
            raise Invalid(f"team_id: no team {team}", details={"field": "team_id"})
        kind, segment_id, members = _audience(session, viewer, audience)
        plan = ContactPlan(
            name=clean_name,
            goal=clean_goal,
            audience_type=kind,
            segment_id=segment_id,
            channel=str(channel),
            method=_text(method, "method", MAX_NAME),
            starts_at=start,
            ends_at=end,
            content=_text(content, "content", MAX_TEXT),
            incentive=_text(incentive, "incentive", MAX_SHORT),
            owner_id=owner,
            team_id=team,
            created_by=viewer.user_id,
            created_at=now,
            updated_at=now,
        )
        session.add(plan)
        session.flush()
        for profile_id, customer_owner in members.items():
            # The customer's owner does the contacting; an unowned customer, or one owned outside the
            # maker's reach (shared with them), goes to the plan's owner. Task rows are written here rather
            # than through create_task so the plan, its audience and its tasks commit together.
            assignee = customer_owner if _assignable(viewer, customer_owner) else owner
            task = Task(
                title=clean_name,
                description=clean_goal,
                due_at=end,
                priority="normal",
                status="open",
                assignee_id=assignee,
                related_type="profile",
                related_id=profile_id,
                created_by=viewer.user_id,
                created_at=now,
                remind_at=start,
            )
            session.add(task)
            session.flush()
            session.add(ContactPlanMember(plan_id=plan.id, profile_id=profile_id, task_id=task.id))
        session.flush()
        return _view(session, plan, detail=True)


def _effectiveness(session: Session, plan_id: int) -> Effectiveness:
    audience = session.scalar(
        select(func.count()).select_from(ContactPlanMember).where(ContactPlanMember.plan_id == plan_id)
    )
    row = session.execute(
        select(
            func.count(ContactCard.id),
            func.count(func.distinct(ContactCard.profile_id)),
            func.count(func.distinct(case((ContactCard.reached.is_(True), ContactCard.profile_id)))),
            func.count(func.distinct(case((ContactCard.effective.is_(True), ContactCard.profile_id)))),
            func.avg(ContactCard.rating),
        ).where(ContactCard.plan_id == plan_id)
    ).one()
    cards, contacted, reached, effective, rating = row
    audience = int(audience or 0)

    def pct(part: int, whole: int) -> float | None:
        return round(100 * part / whole, 1) if whole else None

    return Effectiveness(
        audience=audience,
        contacted=int(contacted),
        reached=int(reached),
        effective=int(effective),
        cards=int(cards),
        reached_pct=pct(reached, contacted),
        effective_pct=pct(effective, contacted),
        coverage_pct=pct(contacted, audience),
        average_rating=round(float(rating), 2) if rating is not None else None,
    )


def _card(row: ContactCard) -> CardView:
    return CardView(
        row.id,
        row.plan_id,
        row.profile_id,
        row.user_id,
        row.contacted_at,
        row.reached,
        row.effective,
        row.rating,
        row.feedback,
    )


def _view(session: Session, plan: ContactPlan, *, detail: bool = False) -> PlanView:
    members: list[dict[str, Any]] = []
    cards: list[CardView] = []
    if detail:
        rows = session.execute(
            select(ContactPlanMember.profile_id, Profile.display_name, Task.assignee_id, Task.status)
            .join(Profile, Profile.id == ContactPlanMember.profile_id, isouter=True)
            .join(Task, Task.id == ContactPlanMember.task_id, isouter=True)
            .where(ContactPlanMember.plan_id == plan.id)
            .order_by(ContactPlanMember.profile_id)
        ).all()
        members = [{"profile_id": p, "name": n, "assignee_id": a, "task_status": s} for p, n, a, s in rows]
        cards = [
            _card(c)
            for c in session.scalars(
                select(ContactCard)
                .where(ContactCard.plan_id == plan.id)
                .order_by(ContactCard.contacted_at.desc(), ContactCard.id.desc())
            )
        ]
    return PlanView(
        plan.id,
        plan.name,
        plan.goal,
        plan.audience_type,
        plan.segment_id,
        plan.channel,
        plan.method,
        plan.starts_at,
        plan.ends_at,
        plan.content,
        plan.incentive,
        plan.owner_id,
        plan.team_id,
        plan.lessons,
        plan.created_by,
        plan.created_at,
        _effectiveness(session, plan.id),
        members,
        cards,
    )


def get_plan(db: Database, viewer: Viewer, plan_id: int) -> PlanView:
    """A plan with its members, its cards (newest first) and its effectiveness."""
    with db.read() as session:
        return _view(session, _plan(session, viewer, plan_id), detail=True)


def list_plans(db: Database, viewer: Viewer, *, limit: int = 200) -> list[PlanView]:
    """The plans in the viewer's scope, the latest window first."""
    with db.read() as session:
        rows = session.scalars(
            select(ContactPlan)
            .where(plan_filter(viewer))
            .order_by(ContactPlan.starts_at.desc(), ContactPlan.id.desc())
            .limit(min(max(limit, 1), 1000))
        ).all()
        return [_view(session, row) for row in rows]


def update_lessons(db: Database, viewer: Viewer, plan_id: int, lessons: Any, *, now: datetime) -> PlanView:
    """Write down what the plan taught (free text); anyone who sees the plan and may edit."""
    if not viewer.can("edit"):
        raise Forbidden("your role may not change contact plans")
    text = _text(lessons, "lessons", MAX_TEXT)
    with db.write() as session:
        plan = _plan(session, viewer, plan_id)
        plan.lessons, plan.updated_at = text, now
        session.flush()
        return _view(session, plan, detail=True)


def record_card(
    db: Database,
    viewer: Viewer,
    plan_id: int,
    *,
    profile_id: Any,
    reached: Any,
    effective: Any,
    rating: Any = None,
    feedback: Any = None,
    contacted_at: datetime | None = None,
    now: datetime,
) -> CardView:
    """Record one contact made under the plan; the customer's task is done with the first card."""
    if not viewer.can("edit"):
        raise Forbidden("your role may not record contacts")
    for name, value in (("reached", reached), ("effective", effective)):
        if not isinstance(value, bool):
            raise Invalid(f"{name}: must be yes or no", details={"field": name})
    if effective and not reached:
        raise Invalid(
            "effective: a contact that did not reach the customer cannot be effective",
            details={"field": "effective"},
        )
    if rating is not None and (
        not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5
    ):
        raise Invalid("rating: a whole number from 1 to 5", details={"field": "rating"})
    when = now if contacted_at is None else _time(contacted_at, "contacted_at")
    if when > now:
        raise Invalid("contacted_at: may not be in the future", details={"field": "contacted_at"})
    with db.write() as session:
        plan = _plan(session, viewer, plan_id)
        member = session.scalar(
            select(ContactPlanMember)
            .join(Profile, Profile.id == ContactPlanMember.profile_id)
            .where(
                ContactPlanMember.plan_id == plan.id,
                ContactPlanMember.profile_id == str(profile_id),
                customer_write_filter(viewer),
            )
        )
        if member is None:
            raise Invalid(
                f"profile_id: {profile_id} is not one of your customers in this plan",
                details={"field": "profile_id"},
            )
        row = ContactCard(
            plan_id=plan.id,
            profile_id=member.profile_id,
            user_id=viewer.user_id,
            contacted_at=when,
            reached=reached,
            effective=effective,
            rating=rating,
            feedback=_text(feedback, "feedback", MAX_TEXT),
        )
        session.add(row)
        task = session.get(Task, member.task_id) if member.task_id is not None else None
        if task is not None and task.status == "open":
            task.status, task.done_at = "done", now
        session.flush()
        return _card(row)
