"""Sales records and the unified profile: a lead or contact with an email or phone is the same person
as the customer who writes in on any channel.

The link is made through the one write path: an identify message from the internal "Sales" source, so
the identity rules (normalisation, stitching, merge protection, suppression of erased people) decide the
profile exactly as they do for a web or WeChat message, and the timeline shows where the person came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import select

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.ingest import ingest, internal_source
from threadline.sales.scope import sales_filter
from threadline.storage import Database
from threadline.storage.models import Contact, Deal, Lead, Pipeline, Profile, SalesAccount

SALES_SOURCE = "Sales"


def link_to_profile(
    db: Database, settings: Settings, *, name: str | None, email: str | None, phone: str | None, now: datetime
) -> str | None:
    """The profile of the person with this email and/or phone, found or created; None without either
    (or when the person was erased: the write path drops messages naming them)."""
    traits = {k: v for k, v in (("email", email), ("phone", phone)) if v}
    if not traits:
        return None
    if name:
        traits["name"] = name
    source = internal_source(db, SALES_SOURCE, now=now)
    message = {
        "type": "identify",
        "messageId": f"sales-{uuid4().hex}",
        "timestamp": now.isoformat() + "Z",
        "traits": traits,
    }
    result = ingest(db, source, [message], settings=settings, received_at=now)
    return result.profile_ids[0] if result.profile_ids else None


def sales_for_profile(db: Database, viewer: Viewer, live_id: str) -> dict[str, list[dict[str, Any]]]:
    """The person's leads, contacts, person accounts and those accounts' deals, within the viewer's sales
    scope. Records linked to a profile since merged into this one count too."""
    with db.read() as session:
        ids = [live_id, *session.scalars(select(Profile.id).where(Profile.merged_into == live_id))]
        leads = session.execute(
            select(Lead.id, Lead.name, Lead.company, Lead.status, Lead.updated_at)
            .where(Lead.profile_id.in_(ids), sales_filter(viewer, "lead"))
            .order_by(Lead.id)
        ).all()
        contacts = session.execute(
            select(Contact.id, Contact.name, Contact.title, Contact.account_id, SalesAccount.name)
            .join(SalesAccount, SalesAccount.id == Contact.account_id)
            .where(Contact.profile_id.in_(ids), sales_filter(viewer, "contact"))
            .order_by(Contact.id)
        ).all()
        account_ids = {c[3] for c in contacts} | set(
            session.scalars(
                select(SalesAccount.id).where(
                    SalesAccount.profile_id.in_(ids), sales_filter(viewer, "account")
                )
            )
        )
        deals = session.execute(
            select(Deal.id, Deal.name, Deal.stage, Deal.status, Deal.amount, Deal.currency, Pipeline.stages)
            .join(Pipeline, Pipeline.id == Deal.pipeline_id)
            .where(Deal.account_id.in_(sorted(account_ids)), sales_filter(viewer, "deal"))
            .order_by(Deal.id)
        ).all()
    return {
        "leads": [
            {"id": r[0], "name": r[1], "company": r[2], "status": r[3], "updated_at": r[4]} for r in leads
        ],
        "contacts": [
            {"id": r[0], "name": r[1], "title": r[2], "account_id": r[3], "account_name": r[4]}
            for r in contacts
        ],
        "deals": [
            {
                "id": r[0],
                "name": r[1],
                "stage": r[2],
                "stage_name": next((s["name"] for s in r[6] if s["key"] == r[2]), r[2]),
                "status": r[3],
                "amount": None if r[4] is None else float(r[4]),
                "currency": r[5],
            }
            for r in deals
        ],
    }
