"""Converting a lead: an account (a company, or the person themself for a consumer), a contact and,
when asked, a deal, in one transaction, keeping the link to the person's unified profile.

The field mapping says where each lead field goes ("company" -> "account.name", "custom.budget" ->
"deal.amount"); values given for the account, contact or deal outright win over mapped ones. Errors
name the target field ("account.name: is required").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Conflict, Forbidden, Invalid
from threadline.privacy import live_profile_id
from threadline.profiles import adopt_unowned
from threadline.sales.records import ACCOUNT_KINDS, check_values, get_record, insert_record, scoped_row
from threadline.storage import Database
from threadline.storage.models import Lead

TARGETS = ("account", "contact", "deal")
DEFAULT_MAPPING: dict[str, str] = {
    "name": "contact.name",
    "email": "contact.email",
    "phone": "contact.phone",
    "company": "account.name",
    "source": "account.source",
}


def _lead_value(lead: Lead, source: str) -> Any:
    if source.startswith("custom."):
        return (lead.custom or {}).get(source[len("custom.") :])
    if source not in ("name", "company", "email", "phone", "source", "status"):
        raise Invalid(
            f"mapping.{source}: a lead has no field {source!r}", details={"field": f"mapping.{source}"}
        )
    return getattr(lead, source)


def _mapped(lead: Lead, mapping: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {t: {} for t in TARGETS}
    for source, target in mapping.items():
        entity, _, key = str(target).partition(".")
        if entity not in TARGETS or not key:
            raise Invalid(
                f"mapping.{source}: target must be account.<field>, contact.<field> or deal.<field>",
                details={"field": f"mapping.{source}"},
            )
        value = _lead_value(lead, source)
        if value is None:
            continue
        if key.startswith("custom."):
            out[entity].setdefault("custom", {})[key[len("custom.") :]] = value
        else:
            out[entity][key] = value
    return out


def _checked(
    session: Any, viewer: Viewer, entity: str, raw: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    try:
        return check_values(session, viewer, entity, raw, settings=settings)
    except Invalid as error:
        name = (error.details or {}).get("field", "") if isinstance(error.details, dict) else ""
        raise Invalid(f"{entity}.{error.message}", details={"field": f"{entity}.{name}"}) from None


def convert_lead(
    db: Database,
    viewer: Viewer,
    lead_id: int,
    *,
    kind: str = "company",
    mapping: Mapping[str, str] | None = None,
    account: Mapping[str, Any] | None = None,
    contact: Mapping[str, Any] | None = None,
    deal: Mapping[str, Any] | None = None,
    account_id: int | None = None,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """Returns the converted lead's view with `converted_account_id`, `_contact_id`, `_deal_id`. With
    `account_id` the contact (and deal) join that account instead of a new one. `deal` None: no deal."""
    if not (viewer.can("create") and viewer.can("edit")):
        raise Forbidden("converting a lead needs the create and edit permissions")
    if kind not in ACCOUNT_KINDS:
        raise Invalid(f"kind: must be one of {', '.join(ACCOUNT_KINDS)}", details={"field": "kind"})
    with db.write() as session:
        lead: Lead = scoped_row(session, viewer, "lead", lead_id)
        if lead.status == "converted":
            raise Conflict(f"lead {lead_id} was converted already", details={"field": "status"})
        values = _mapped(lead, {**DEFAULT_MAPPING, **(mapping or {})})
        owner = lead.owner_id if lead.owner_id is not None else viewer.user_id  # converting is no transfer
        if account_id is None:
            raw_account = {**values["account"], **(account or {}), "kind": kind}
            if kind == "person":
                raw_account.setdefault("name", lead.name)  # a consumer's account is the person
            raw_account.pop("owner_id", None)
            if not raw_account.get("name"):
                raise Invalid(
                    "account.name: is required (the lead has no company)", details={"field": "account.name"}
                )
            checked = _checked(session, viewer, "account", raw_account, settings)
            checked["owner_id"] = owner
            if kind == "person":
                checked["profile_id"] = lead.profile_id
            new_account = insert_record(session, viewer, "account", checked, now=now)
            account_id = new_account.id
        else:
            scoped_row(session, viewer, "account", account_id)
        raw_contact = {**values["contact"], **(contact or {}), "account_id": account_id}
        checked_contact = _checked(session, viewer, "contact", raw_contact, settings)
        checked_contact["profile_id"] = lead.profile_id
        new_contact = insert_record(session, viewer, "contact", checked_contact, now=now)
        deal_id = None
        if deal is not None:
            raw_deal = {**values["deal"], **deal, "account_id": account_id}
            raw_deal.setdefault("name", lead.company or lead.name)
            raw_deal.pop("owner_id", None)
            checked_deal = _checked(session, viewer, "deal", raw_deal, settings)
            checked_deal["owner_id"] = owner
            deal_id = insert_record(session, viewer, "deal", checked_deal, now=now).id
        if lead.profile_id is not None and owner is not None:
            # The person becomes the owner's customer unless someone owns them already: the rep who
            # converted them must see their 360 page (data scope follows the profile's owner).
            live = live_profile_id(session.connection(), lead.profile_id)
            adopt_unowned(session, [live], owner)
        lead.status, lead.converted_at, lead.updated_at = "converted", now, now
        lead.converted_account_id, lead.converted_contact_id = account_id, new_contact.id
        lead.converted_deal_id = deal_id
    return get_record(db, viewer, "lead", lead_id)
