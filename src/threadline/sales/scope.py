"""The one data-scope condition for sales records, exactly like customers' (threadline.accounts.access):
admins and analysts see all, managers their teams' (with sub-teams), agents their own, by `owner_id`.

Every sales query starts from `sales_filter`; a contact has no owner of its own and is in scope when its
account is. A record outside the scope answers like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, select, true

from threadline.accounts import Viewer
from threadline.storage.models import Contact, Deal, Lead, SalesAccount

ALL = "all"
MODELS: dict[str, Any] = {"lead": Lead, "account": SalesAccount, "contact": Contact, "deal": Deal}


def owner_filter(viewer: Viewer, owner_column: Any) -> ColumnElement[bool]:
    """`owner_column` holds an owner in the viewer's scope. Unowned records (the customer pool) are
    only in an all-records scope, as unowned customers are."""
    if viewer.scope == ALL:
        return true()
    if viewer.user_id is None:
        return false()
    owners = viewer.owner_ids or frozenset({viewer.user_id})
    return owner_column.in_(sorted(owners))  # type: ignore[no-any-return]


def sales_filter(viewer: Viewer, entity: str) -> ColumnElement[bool]:
    """The `entity` rows (lead, account, contact, deal) `viewer` may read."""
    if entity == "contact":
        if viewer.scope == ALL:
            return true()
        accounts = select(SalesAccount.id).where(owner_filter(viewer, SalesAccount.owner_id))
        return Contact.account_id.in_(accounts)
    return owner_filter(viewer, MODELS[entity].owner_id)
