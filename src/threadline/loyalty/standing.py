"""A customer's standing: balance, lifetime points, 12-month figures and the tier they hold, computed from
the ledger and the events, and cached in `loyalty_status`.

Merges: a ledger line stays on the profile it was written for (an earn line on its event's
`original_profile_id`, the profile an unmerge gives the event back to). A live customer's standing is
computed over the live profile and the profiles merged into it (kept one hop by threadline.identity),
so a merge adds both people's points and an unmerge gives each their own back, with nothing rewritten.

Tiers: a customer holds the highest tier their figure (the program's `tier_basis`) reached at any moment
of the last `keep_tier_months`. So an upgrade is immediate and a downgrade comes only once a whole
holding period has passed below the threshold (re-evaluated whenever points change and by the daily
`loyalty.expire` job). Being a function of the ledger and the events, the tier is right after a merge
or an unmerge without any state to repair.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from threadline.loyalty.program import Program
from threadline.storage.models import Event, LoyaltyEntry, LoyaltyStatus, Profile

WINDOW_MONTHS = 12  # the rolling window of points_12m and spend_12m
CREDITS = ("earn", "adjust")


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the 31st becomes the month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def months_after(moment: datetime, months: int) -> datetime:
    return months_before(moment, -months)


def family(conn: Connection, live: str) -> list[str]:
    """The live profile and the profiles merged into it: whose ledger lines make its balance."""
    return [live, *conn.scalars(select(Profile.id).where(Profile.merged_into == live).order_by(Profile.id))]


@dataclass(frozen=True, slots=True)
class Standing:
    profile_id: str
    points: int  # the balance
    lifetime_points: int  # every point ever credited (earned or adjusted up)
    points_12m: int  # credited in the last 12 months
    spend_12m: float
    tier: str | None
    figure: float  # the tier basis's figure now


def _window_sum(credits: Sequence[tuple[datetime, float]], end: datetime) -> float:
    start = months_before(end, WINDOW_MONTHS)
    return sum(amount for at, amount in credits if start < at <= end)


def _held(program: Program, credits: Sequence[tuple[datetime, float]], now: datetime) -> str | None:
    """The highest tier a rolling-window figure reached during the holding period up to `now`. The
    figure only rises at a credit, so its highest points are the credits in the period and the
    period's start (credits before it may still count then)."""
    since = months_before(now, program.keep_tier_months)
    moments = [since, now, *(at for at, _ in credits if since < at <= now)]
    best = max(_window_sum(credits, moment) for moment in moments)
    return program.tier_for(best)


def purchases(
    conn: Connection, live: str, program: Program, *, since: datetime, now: datetime
) -> list[tuple[datetime, float]]:
    """(time, amount) of the customer's purchases (events of the per-amount earn rules) in (since, now].
    Events follow merges (threadline.identity moves them to the survivor), so the live profile's are all."""
    rules = {rule.event: rule for rule in program.purchase_rules}
    if not rules:
        return []
    rows = conn.execute(
        select(Event.timestamp, Event.name, Event.properties).where(
            Event.profile_id == live,
            Event.name.in_(sorted(rules)),
            Event.timestamp > since,
            Event.timestamp <= now,
        )
    )
    found = []
    for at, name, properties in rows:
        amount = rules[name].amount(properties or {})
        if amount is not None and amount > 0:  # a refund earns nothing and lowers no spend either
            found.append((at, amount))
    return sorted(found)


def compute_standing(conn: Connection, live: str, program: Program, *, now: datetime) -> Standing:
    ids = family(conn, live)
    total = func.coalesce(func.sum(LoyaltyEntry.points), 0)
    mine = LoyaltyEntry.profile_id.in_(ids)
    is_credit = (LoyaltyEntry.kind.in_(CREDITS)) & (LoyaltyEntry.points > 0)
    points = int(conn.scalar(select(total).where(mine)) or 0)
    lifetime = int(conn.scalar(select(total).where(mine, is_credit)) or 0)
    credited = select(LoyaltyEntry.created_at, LoyaltyEntry.points).where(mine, is_credit)
    # What the rolling figures and the holding period can see: a window before the period's start.
    horizon = months_before(months_before(now, program.keep_tier_months), WINDOW_MONTHS)
    point_credits = sorted(
        (at, float(amount))
        for at, amount in conn.execute(credited.where(LoyaltyEntry.created_at > horizon))
        if at <= now
    )
    spend_credits = purchases(conn, live, program, since=horizon, now=now)
    points_12m = int(_window_sum(point_credits, now))
    spend_12m = round(_window_sum(spend_credits, now), 2)
    if program.tier_basis == "lifetime_points":
        tier = program.tier_for(lifetime)  # never falls: lifetime points only grow
    else:
        tier = _held(program, point_credits if program.tier_basis == "points_12m" else spend_credits, now)
    figure = {"lifetime_points": float(lifetime), "points_12m": float(points_12m)}.get(
        program.tier_basis, spend_12m
    )
    return Standing(live, points, lifetime, points_12m, spend_12m, tier, figure)


@dataclass(frozen=True, slots=True)
class TierChange:
    profile_id: str
    old: str | None
    new: str | None
    upgrade: bool


def refresh_status(conn: Connection, live: str, program: Program, *, now: datetime) -> TierChange | None:
    """Recompute the live customer's standing into `loyalty_status`; answers the tier change, if any.
    Call inside the write transaction that changed the ledger, so the cache and the ledger agree."""
    standing = compute_standing(conn, live, program, now=now)
    row = conn.execute(select(LoyaltyStatus.tier).where(LoyaltyStatus.profile_id == live)).first()
    values: dict[str, Any] = {
        "points": standing.points,
        "lifetime_points": standing.lifetime_points,
        "spend": standing.spend_12m,
        "updated_at": now,
    }
    old = row[0] if row is not None else None
    if row is None:
        if standing.tier is None and not standing.points and not standing.lifetime_points:
            return None  # no standing to keep for someone the program has never touched
        conn.execute(
            insert(LoyaltyStatus).values(
                profile_id=live, tier=standing.tier, tier_since=now if standing.tier else None, **values
            )
        )
    else:
        if standing.tier != old:
            values |= {"tier": standing.tier, "tier_since": now}
        conn.execute(update(LoyaltyStatus).where(LoyaltyStatus.profile_id == live).values(**values))
    if standing.tier == old:
        return None
    return TierChange(live, old, standing.tier, program.rank(standing.tier) > program.rank(old))


def lock_status(conn: Connection, live: str, *, now: datetime) -> None:
    """Hold the customer's status row until the transaction ends, so two redemptions cannot both spend
    the same balance (PostgreSQL; SQLite's writers take turns anyway). Made on first use."""
    exists = select(LoyaltyStatus.profile_id).where(LoyaltyStatus.profile_id == live)
    if conn.execute(exists.with_for_update()).first() is not None:
        return
    first_use = insert(LoyaltyStatus).values(
        profile_id=live, points=0, lifetime_points=0, spend=0.0, tier=None, tier_since=None, updated_at=now
    )
    try:
        with conn.begin_nested():
            conn.execute(first_use)
    except IntegrityError:  # a racing first use inserted it: lock theirs
        conn.execute(exists.with_for_update()).first()


def live_of(conn: Connection, profile_ids: Iterable[str]) -> set[str]:
    """The live profiles of these ids (merged-away ones answer with their survivor; unknown ones drop)."""
    ids = sorted(set(profile_ids))
    if not ids:
        return set()
    rows = conn.execute(select(Profile.id, Profile.merged_into).where(Profile.id.in_(ids)))
    return {merged_into or profile_id for profile_id, merged_into in rows}
