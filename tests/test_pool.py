"""The customer pool: rules return a neglected account after N days (per level) with a warning first, the
previous owner's cooldown and the cap on claims, managers assign, the daily job through the worker, each
return audited and on the timeline. Real SQLite and PostgreSQL, an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.test_follow_ups import account, customer
from threadline.accounts import create_user, viewer_for
from threadline.config import Settings
from threadline.errors import Conflict, Forbidden
from threadline.jobs import Worker, schedules_for
from threadline.privacy import Actor, search_audit
from threadline.sales import (
    assign_account,
    claim_account,
    list_pool,
    pool_warnings,
    record_follow_up,
    return_neglected_accounts,
    set_pool_rules,
    to_do,
    zone,
)
from threadline.storage import Database
from threadline.storage.models import Event, SalesAccount

T0 = datetime(2026, 3, 2, 9, 0)
RULES = {
    "levels": {"*": {"no_follow_up_days": 10}, "A": {"no_follow_up_days": 30, "no_won_deal_days": 90}},
    "warning_days": 3,
    "cooldown_days": 7,
    "cap": 2,
}


@pytest.fixture
def reps(db: Database) -> dict[str, int]:
    return {
        name: create_user(db, f"{name}@example.com", role, "correct horse battery", now=T0).id
        for name, role in (("ann", "agent"), ("bo", "agent"), ("lee", "manager"), ("root", "admin"))
    }


def owner(db: Database, account_id: int) -> int | None:
    with db.read() as session:
        row = session.get(SalesAccount, account_id)
        assert row is not None
        return row.owner_id


def test_a_neglected_account_returns_after_the_rule_with_a_warning_first(
    db: Database, settings: Settings, reps: dict[str, int]
) -> None:
    set_pool_rules(db, RULES, by=reps["root"], now=T0)
    profile = customer(db, settings, "dee@shop.example")
    neglected = account(db, "Dee", reps["ann"], profile)
    premium = account(db, "Premium", reps["ann"], level="A")
    looked_after = account(db, "Kept", reps["ann"])
    ann = viewer_for(db, reps["ann"], "agent")
    record_follow_up(
        db,
        settings,
        ann,
        subject_type="account",
        subject_id=str(looked_after),
        method="phone",
        content="ok",
        now=T0 + timedelta(days=5),
    )
    # Day 8: warnings for the one due on day 10, not the others.
    day8 = T0 + timedelta(days=8)
    assert [w.account_id for w in pool_warnings(db, frozenset({reps["ann"]}), now=day8)] == [neglected]
    assert [w.name for w in to_do(db, reps["ann"], now=day8, tz=zone("UTC")).returning] == ["Dee"]
    assert return_neglected_accounts(db, settings, now=day8) == {"returned": 0, "events": 0}
    day10 = T0 + timedelta(days=10, minutes=1)
    assert return_neglected_accounts(db, settings, now=day10) == {"returned": 1, "events": 1}
    assert (
        owner(db, neglected) is None
        and owner(db, premium) == reps["ann"]
        and owner(db, looked_after) == reps["ann"]
    )
    assert [a.id for a in list_pool(db, ann)] == [neglected]
    # Run again: nothing more (safe to retry).
    assert return_neglected_accounts(db, settings, now=day10) == {"returned": 0, "events": 0}
    audits = search_audit(db, action="pool_return")
    assert [(a.object_id, a.details["reason"]) for a in audits] == [(str(neglected), "no_follow_up")]
    with db.read() as session:
        assert (
            session.scalar(select(Event.name).where(Event.name == "Returned to Pool")) == "Returned to Pool"
        )


def test_cooldown_cap_and_assignment(db: Database, settings: Settings, reps: dict[str, int]) -> None:
    set_pool_rules(db, RULES, by=reps["root"], now=T0)
    released = account(db, "Released", None, in_pool_since=T0, previous_owner_id=reps["ann"])
    spare = [account(db, f"Spare {n}", None, in_pool_since=T0) for n in range(3)]
    ann, bo = viewer_for(db, reps["ann"], "agent"), viewer_for(db, reps["bo"], "agent")
    with pytest.raises(Conflict) as error:
        claim_account(db, ann, released, actor=Actor(reps["ann"]), now=T0 + timedelta(days=2))
    assert error.value.details["reason"] == "cooldown"
    claim_account(db, ann, released, actor=Actor(reps["ann"]), now=T0 + timedelta(days=8))
    claim_account(db, ann, spare[0], actor=Actor(reps["ann"]), now=T0 + timedelta(days=8))
    with pytest.raises(Conflict) as error:
        claim_account(db, ann, spare[1], actor=Actor(reps["ann"]), now=T0 + timedelta(days=8))
    assert error.value.details["reason"] == "cap"
    with pytest.raises(Forbidden):
        assign_account(db, bo, spare[1], reps["bo"], actor=Actor(reps["bo"]), now=T0)
    admin = viewer_for(db, reps["root"], "admin")
    assign_account(db, admin, spare[1], reps["bo"], actor=Actor(reps["root"]), now=T0 + timedelta(days=8))
    assert owner(db, spare[1]) == reps["bo"]
    # A claim restarts the clock: the claimed account is not returned the next morning.
    assert return_neglected_accounts(db, settings, now=T0 + timedelta(days=9))["returned"] == 0


def test_the_daily_job_runs_through_the_worker(
    db: Database, settings: Settings, reps: dict[str, int]
) -> None:
    set_pool_rules(db, RULES, by=reps["root"], now=T0)
    gone = account(db, "Gone", reps["bo"])
    at = T0 + timedelta(days=11)
    schedules = [s for s in schedules_for(settings) if s.kind == "sales.pool"]
    outcomes = Worker(db, settings, clock=lambda: at, schedules=schedules).run_until_idle()
    assert [o.status for o in outcomes] == ["done"]
    assert owner(db, gone) is None
