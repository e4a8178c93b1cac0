"""The sales records a follow-up, task or pool rule is about (leads, accounts, contacts, deals, customers):
who owns them, which unified profile they are, and whether a viewer may see or change them.

The tables belong to the records module (records.py, migration 0016). Scope is the records' own
`sales_filter` (scope.py), customers' `customer_filter` for a customer; a contact is in scope when its
account is. Out of scope answers exactly like missing: NotFound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer, customer_filter, customer_write_filter
from threadline.errors import Invalid, NotFound
from threadline.sales.scope import MODELS, sales_filter
from threadline.storage.models import Contact, Deal, Lead, Profile, SalesAccount

SUBJECT_TYPES = ("lead", "account", "contact", "deal", "profile")

# Their tables (threadline.sales records, migration 0016) as Core tables: these modules read columns.
leads = cast(Table, Lead.__table__)
accounts = cast(Table, SalesAccount.__table__)
contacts = cast(Table, Contact.__table__)
deals = cast(Table, Deal.__table__)


@dataclass(frozen=True, slots=True)
class Subject:
    """A record as follow-ups and tasks see it. `account_id`/`lead_id` say whose last and next
    follow-up times a follow-up on it moves (a contact's or deal's moves its account's)."""

    type: str
    id: str
    label: str
    owner_id: int | None
    profile_id: str | None
    account_id: int | None = None
    lead_id: int | None = None


def in_scope(viewer: Viewer, owner_id: int | None) -> bool:
    """scope.owner_filter's rule, for an owner already read: unowned records (the pool) are only in an
    all-records scope."""
    if viewer.scope == "all":
        return True
    if viewer.user_id is None or owner_id is None:
        return False
    return owner_id in (viewer.owner_ids or frozenset({viewer.user_id}))


def check_subject_type(subject_type: str, field: str = "subject_type") -> str:
    if subject_type not in SUBJECT_TYPES:
        raise Invalid(f"{field}: must be one of {', '.join(SUBJECT_TYPES)}", details={"field": field})
    return subject_type


def _integer(subject_id: str, field: str) -> int:
    try:
        return int(subject_id)
    except (TypeError, ValueError):
        raise Invalid(
            f"{field}: must be a whole number for this record type", details={"field": field}
        ) from None


def find_subject(
    session: Session, subject_type: str, subject_id: str, *, field: str = "subject_id"
) -> Subject:
    """The record, whatever the viewer; NotFound when there is none."""
    check_subject_type(subject_type)
    missing = NotFound(f"{subject_type} {subject_id} does not exist")
    if subject_type == "profile":
        row = session.execute(
            select(Profile.id, Profile.display_name, Profile.owner_id, Profile.merged_into).where(
                Profile.id == str(subject_id)
            )
        ).first()
        if row is None:
            raise missing
        if row.merged_into:  # a merged-away customer's follow-ups belong to the survivor
            return find_subject(session, "profile", row.merged_into, field=field)
        return Subject("profile", row.id, row.display_name or row.id, row.owner_id, row.id)
    key = _integer(subject_id, field)
    if subject_type == "lead":
        lead = session.execute(select(leads).where(leads.c.id == key)).first()
        if lead is None:
            raise missing
        return Subject("lead", str(key), lead.name, lead.owner_id, lead.profile_id, lead_id=key)
    if subject_type == "account":
        account = session.execute(select(accounts).where(accounts.c.id == key)).first()
        if account is None:
            raise missing
        return Subject(
            "account", str(key), account.name, account.owner_id, account.profile_id, account_id=key
        )
    if subject_type == "contact":
        found = session.execute(
            select(contacts.c.name, contacts.c.profile_id, contacts.c.account_id, accounts.c.owner_id)
            .join(accounts, accounts.c.id == contacts.c.account_id)
            .where(contacts.c.id == key)
        ).first()
        if found is None:
            raise missing
        return Subject("contact", str(key), found.name, found.owner_id, found.profile_id, found.account_id)
    deal = session.execute(
        select(deals.c.name, deals.c.owner_id, deals.c.account_id, accounts.c.profile_id)
        .join(accounts, accounts.c.id == deals.c.account_id)
        .where(deals.c.id == key)
    ).first()
    if deal is None:
        raise missing
    return Subject("deal", str(key), deal.name, deal.owner_id, deal.profile_id, deal.account_id)


def subject_for(
    session: Session, viewer: Viewer, subject_type: str, subject_id: str, *, write: bool = False
) -> Subject:
    """The record if `viewer` may read it (or, with `write`, change it); NotFound otherwise."""
    subject = find_subject(session, subject_type, subject_id)
    if subject.type == "profile":
        rule = customer_write_filter(viewer) if write else customer_filter(viewer)
        visible = session.scalar(select(Profile.id).where(Profile.id == subject.id, rule))
        if visible is None:
            raise NotFound(f"profile {subject_id} does not exist", details={"out_of_scope": True})
        return subject
    model = MODELS[subject.type]
    visible = session.scalar(
        select(model.id).where(model.id == int(subject.id), sales_filter(viewer, subject.type))
    )
    if visible is None:
        raise NotFound(f"{subject_type} {subject_id} does not exist", details={"out_of_scope": True})
    return subject


def move_follow_up_times(
    session: Session, subject: Subject, *, last: datetime | None, next_at: datetime | None
) -> None:
    """Set the account's or lead's last and next follow-up times (shown on their lists). `last` only ever
    moves forward, so logging an older call afterwards does not hide a newer one."""
    for target, key in ((accounts, subject.account_id), (leads, subject.lead_id)):
        if key is None:
            continue
        current = session.execute(
            select(target.c.last_follow_up_at).where(target.c.id == key)
        ).scalar_one_or_none()
        values: dict[str, datetime | None] = {}
        if last is not None and (current is None or last >= current):
            values["last_follow_up_at"] = last
            values["next_follow_up_at"] = next_at
        if values:
            session.execute(target.update().where(target.c.id == key).values(**values))
