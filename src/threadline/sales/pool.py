"""The customer pool (公海): accounts nobody owns, which reps claim and managers assign, and the daily
rules that return a neglected account to it.

An account is in the pool when `owner_id` is NULL and `in_pool_since` is set. The rules (workspace
setting "sales.pool") say, per account level (with "*" for any level), after how many days without a
follow-up or without a won deal an account goes back; a warning shows `warning_days` before (to-do lists,
the digest). The previous owner may not claim it back for `cooldown_days`, and nobody may hold more than
`cap` accounts by claiming or being assigned.

The clock for a rule starts at the later of the last follow-up (or won deal) and the time the owner got the
account: its last claim or assignment here, else its creation. Claims, assignments and returns are written
to the audit log in the same transaction as the change, which is where that time is read from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Conflict, Forbidden, Invalid, NotFound
from threadline.privacy import Actor
from threadline.sales.follow_ups import reassign_reminders, record_sales_event
from threadline.sales.subjects import Subject, accounts, deals, in_scope
from threadline.storage import Database, put_setting
from threadline.storage.models import AuditEntry, User, WorkspaceSetting

POOL_KEY = "sales.pool"
ANY_LEVEL = "*"
RETURN_EVENT = "Returned to Pool"
CLAIM, ASSIGN, RETURN = "pool_claim", "pool_assign", "pool_return"
_MAX_DAYS = 3650


@dataclass(frozen=True, slots=True)
class LevelRule:
    no_follow_up_days: int | None = None
    no_won_deal_days: int | None = None


@dataclass(frozen=True, slots=True)
class PoolRules:
    levels: Mapping[str, LevelRule] = field(default_factory=dict)
    warning_days: int = 3
    cooldown_days: int = 7
    cap: int | None = None  # accounts a rep may hold; None: no cap

    def rule_for(self, level: str | None) -> LevelRule | None:
        return self.levels.get(level or "") or self.levels.get(ANY_LEVEL)

    def as_json(self) -> dict[str, Any]:
        return {
            "levels": {
                name: {"no_follow_up_days": r.no_follow_up_days, "no_won_deal_days": r.no_won_deal_days}
                for name, r in self.levels.items()
            },
            "warning_days": self.warning_days,
            "cooldown_days": self.cooldown_days,
            "cap": self.cap,
        }


def _days(value: Any, where: str, *, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_DAYS:
        raise Invalid(f"{where}: a whole number of days from 0 to {_MAX_DAYS}", details={"field": where})
    return value


def check_pool_rules(value: Any) -> PoolRules:
    """Rules from JSON; Invalid names the field at fault."""
    if not isinstance(value, dict):
        raise Invalid("rules: must be an object", details={"field": "rules"})
    unknown = set(value) - {"levels", "warning_days", "cooldown_days", "cap"}
    if unknown:
        name = sorted(unknown)[0]
        raise Invalid(f"{name}: unknown setting", details={"field": name})
    raw_levels = value.get("levels", {})
    if not isinstance(raw_levels, dict):
        raise Invalid("levels: must map a level to its rule", details={"field": "levels"})
    levels = {}
    for name, raw in raw_levels.items():
        where = f"levels.{name}"
        if not isinstance(raw, dict) or set(raw) - {"no_follow_up_days", "no_won_deal_days"}:
            raise Invalid(f"{where}: no_follow_up_days and no_won_deal_days", details={"field": where})
        rule = LevelRule(
            _days(raw.get("no_follow_up_days"), f"{where}.no_follow_up_days"),
            _days(raw.get("no_won_deal_days"), f"{where}.no_won_deal_days"),
        )
        if rule.no_follow_up_days == 0 or rule.no_won_deal_days == 0:
            raise Invalid(
                f"{where}: days must be at least 1 (leave it empty for no rule)", details={"field": where}
            )
        levels[str(name)] = rule
    cap = value.get("cap")
    return PoolRules(
        levels,
        _days(value.get("warning_days", 3), "warning_days", required=True) or 0,
        _days(value.get("cooldown_days", 7), "cooldown_days", required=True) or 0,
        None if cap is None else _days(cap, "cap"),
    )


def get_pool_rules(db: Database) -> PoolRules:
    """The workspace's rules; none returns anything until an admin sets them."""
    with db.read() as session:
        stored = session.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == POOL_KEY))
    if not stored:
        return PoolRules()
    try:
        return check_pool_rules(stored)
    except Invalid:  # written by a newer release: rather no returns than wrong ones
        return PoolRules()


def set_pool_rules(db: Database, value: Any, *, by: int | None, now: datetime) -> PoolRules:
    rules = check_pool_rules(value)
    with db.write() as session:
        put_setting(session.connection(), POOL_KEY, rules.as_json(), user_id=by, now=now)
    return rules


@dataclass(frozen=True, slots=True)
class PoolAccount:
    id: int
    name: str
    level: str | None
    in_pool_since: datetime | None
    previous_owner_id: int | None
    last_follow_up_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.isoformat() + "Z"

        return {
            "id": self.id,
            "name": self.name,
            "level": self.level,
            "in_pool_since": iso(self.in_pool_since),
            "previous_owner_id": self.previous_owner_id,
            "last_follow_up_at": iso(self.last_follow_up_at),
        }


def list_pool(db: Database, viewer: Viewer, *, limit: int = 100, offset: int = 0) -> list[PoolAccount]:
    """Accounts in the pool, longest waiting first. Everyone who may read customers sees the pool: that
    is what it is for."""
    if not viewer.can("read"):
        raise Forbidden("your role may not see the pool")
    with db.read() as session:
        rows = session.execute(
            select(
                accounts.c.id,
                accounts.c.name,
                accounts.c.level,
                accounts.c.in_pool_since,
                accounts.c.previous_owner_id,
                accounts.c.last_follow_up_at,
            )
            .where(accounts.c.owner_id.is_(None), accounts.c.in_pool_since.is_not(None))
            .order_by(accounts.c.in_pool_since, accounts.c.id)
            .limit(min(max(limit, 1), 500))
            .offset(max(offset, 0))
        ).all()
    return [PoolAccount(*row) for row in rows]


def _audit(
    session: Session, actor: Actor, action: str, account_id: int, at: datetime, details: dict[str, Any]
) -> None:
    # In the change's own transaction: the return rule reads when an owner got the account from here.
    session.execute(
        insert(AuditEntry).values(
            at=at,
            user_id=actor.user_id,
            action=action,
            object_type="account",
            object_id=str(account_id),
            ip=actor.ip,
            user_agent=(actor.user_agent or "")[:300] or None,
            details=details,
        )
    )


def _held(session: Session, user_id: int) -> int:
    return (
        session.scalar(select(func.count()).select_from(accounts).where(accounts.c.owner_id == user_id)) or 0
    )


def _take(session: Session, account_id: int, owner_id: int, now: datetime) -> None:
    taken = session.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.owner_id.is_(None))
        .values(owner_id=owner_id, in_pool_since=None, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not taken:  # someone else was quicker
        raise Conflict(f"account {account_id} is no longer in the pool")
    subject = Subject("account", str(account_id), "", owner_id, None, account_id=account_id)
    reassign_reminders(session, subject=subject, owner_id=owner_id)


def _pool_row(session: Session, account_id: int) -> Any:
    row = session.execute(
        select(
            accounts.c.id, accounts.c.owner_id, accounts.c.in_pool_since, accounts.c.previous_owner_id
        ).where(accounts.c.id == account_id)
    ).first()
    if row is None or row.owner_id is not None or row.in_pool_since is None:
        raise NotFound(f"account {account_id} is not in the pool")
    return row


def claim_account(db: Database, viewer: Viewer, account_id: int, *, actor: Actor, now: datetime) -> None:
    """Take an account from the pool, within the cap and after the previous owner's cooldown."""
    if not viewer.can("edit") or viewer.user_id is None:
        raise Forbidden("your role may not claim customers")
    rules = get_pool_rules(db)
    with db.write() as session:
        row = _pool_row(session, account_id)
        if row.previous_owner_id == viewer.user_id and rules.cooldown_days:
            until = row.in_pool_since + timedelta(days=rules.cooldown_days)
            if now < until:
                raise Conflict(
                    f"account: you released it on {row.in_pool_since:%Y-%m-%d}; you can claim it again "
                    f"from {until:%Y-%m-%d %H:%M} UTC",
                    details={"field": "account", "reason": "cooldown", "until": until.isoformat() + "Z"},
                )
        if rules.cap is not None and _held(session, viewer.user_id) >= rules.cap:
            raise Conflict(
                f"account: you already hold {rules.cap} customers, the most one person may",
                details={"field": "account", "reason": "cap", "cap": rules.cap},
            )
        _take(session, account_id, viewer.user_id, now)
        _audit(session, actor, CLAIM, account_id, now, {"via": "pool"})


def assign_account(
    db: Database, viewer: Viewer, account_id: int, user_id: int, *, actor: Actor, now: datetime
) -> None:
    """A manager or admin gives a pool account to someone in their scope, within the cap (the cooldown
    is the rep's own restraint; a manager may decide otherwise)."""
    if not viewer.can("transfer"):
        raise Forbidden("assigning customers needs the transfer permission (managers and admins)")
    rules = get_pool_rules(db)
    with db.write() as session:
        active = session.scalar(select(User.id).where(User.id == user_id, User.is_active.is_(True)))
        if active is None or not in_scope(viewer, user_id):
            raise Invalid(f"user_id: no active user {user_id} in your team", details={"field": "user_id"})
        _pool_row(session, account_id)
        if rules.cap is not None and _held(session, user_id) >= rules.cap:
            raise Conflict(
                f"user_id: that person already holds {rules.cap} customers, the most one person may",
                details={"field": "user_id", "reason": "cap", "cap": rules.cap},
            )
        _take(session, account_id, user_id, now)
        _audit(session, actor, ASSIGN, account_id, now, {"via": "pool", "to": user_id})


@dataclass(frozen=True, slots=True)
class PoolDeadline:
    """When an owned account goes back to the pool, and why ("no_follow_up" or "no_won_deal")."""

    account_id: int
    name: str
    owner_id: int
    level: str | None
    returns_at: datetime
    reason: str
    days: int

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "name": self.name,
            "owner_id": self.owner_id,
            "level": self.level,
            "returns_at": self.returns_at.isoformat() + "Z",
            "reason": self.reason,
            "days": self.days,
        }


def pool_deadlines(
    db: Database, *, owner_ids: frozenset[int] | None = None, rules: PoolRules | None = None
) -> list[PoolDeadline]:
    """Every owned account a rule applies to, with when it returns (soonest first); `owner_ids` narrows
    it to those people's accounts."""
    rules = rules or get_pool_rules(db)
    if not rules.levels:
        return []
    query = select(
        accounts.c.id,
        accounts.c.name,
        accounts.c.owner_id,
        accounts.c.level,
        accounts.c.created_at,
        accounts.c.last_follow_up_at,
    ).where(accounts.c.owner_id.is_not(None))
    if owner_ids is not None:
        query = query.where(accounts.c.owner_id.in_(sorted(owner_ids)))
    with db.read() as session:
        rows = session.execute(query).all()
        ids = [row.id for row in rows]
        won: dict[int, datetime] = {}
        owned_since: dict[str | None, datetime] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            won |= dict(
                session.execute(
                    select(deals.c.account_id, func.max(deals.c.closed_at))
                    .where(deals.c.account_id.in_(chunk), deals.c.status == "won")
                    .group_by(deals.c.account_id)
                ).all()
            )
            owned_since |= dict(
                session.execute(
                    select(AuditEntry.object_id, func.max(AuditEntry.at))
                    .where(
                        AuditEntry.object_type == "account",
                        AuditEntry.object_id.in_([str(i) for i in chunk]),
                        AuditEntry.action.in_((CLAIM, ASSIGN)),
                    )
                    .group_by(AuditEntry.object_id)
                ).all()
            )
    found = []
    for row in rows:
        rule = rules.rule_for(row.level)
        if rule is None:
            continue
        since = max(row.created_at, owned_since.get(str(row.id), row.created_at))
        candidates = []
        if rule.no_follow_up_days:
            start = max(since, row.last_follow_up_at or since)
            candidates.append(
                (start + timedelta(days=rule.no_follow_up_days), "no_follow_up", rule.no_follow_up_days)
            )
        if rule.no_won_deal_days:
            start = max(since, won.get(row.id) or since)
            candidates.append(
                (start + timedelta(days=rule.no_won_deal_days), "no_won_deal", rule.no_won_deal_days)
            )
        if candidates:
            at, reason, days = min(candidates)
            found.append(PoolDeadline(row.id, row.name, row.owner_id, row.level, at, reason, days))
    found.sort(key=lambda d: (d.returns_at, d.account_id))
    return found


def pool_warnings(db: Database, owner_ids: frozenset[int] | None, *, now: datetime) -> list[PoolDeadline]:
    """Accounts that return to the pool within the warning days (not yet returned)."""
    rules = get_pool_rules(db)
    horizon = now + timedelta(days=rules.warning_days)
    return [d for d in pool_deadlines(db, owner_ids=owner_ids, rules=rules) if now <= d.returns_at <= horizon]


def return_neglected_accounts(db: Database, settings: Settings, *, now: datetime) -> dict[str, int]:
    """The daily run: every account past its rule goes back to the pool, audited, with an event on the
    customer's timeline. Safe to run again: an account already back is not owned, so not found again."""
    returned = events = 0
    system = Actor(None)
    for due in pool_deadlines(db):
        if due.returns_at > now:
            break
        with db.write() as session:
            moved = session.execute(
                update(accounts)
                .where(accounts.c.id == due.account_id, accounts.c.owner_id == due.owner_id)
                .values(owner_id=None, previous_owner_id=due.owner_id, in_pool_since=now, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if not moved:  # changed hands since the deadlines were read
                continue
            subject = Subject("account", str(due.account_id), due.name, None, None, account_id=due.account_id)
            reassign_reminders(session, subject=subject, owner_id=None)
            details = {"reason": due.reason, "days": due.days, "previous_owner_id": due.owner_id}
            _audit(session, system, RETURN, due.account_id, now, details)
            profile_id = session.scalar(select(accounts.c.profile_id).where(accounts.c.id == due.account_id))
        returned += 1
        if profile_id and record_sales_event(
            db,
            settings,
            profile_id=profile_id,
            name=RETURN_EVENT,
            properties={"account_id": due.account_id, "reason": due.reason, "days": due.days},
            message_id=f"pool-return-{due.account_id}-{now:%Y%m%dT%H%M%S}",
            channel="other",
            now=now,
        ):
            events += 1
    return {"returned": returned, "events": events}
