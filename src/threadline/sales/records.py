"""Leads, accounts, contacts and deals: create, read, change, delete, list and transfer, within the
viewer's data scope (threadline.sales.scope) and permissions (create/edit/delete/transfer).

One table of standard columns per entity (`COLUMNS`) drives checking for forms, the API and imports, so
an error names the same field everywhere ("email: not a valid email address"). Email and phone are stored
normalised the way threadline.identity matches them; a lead or contact carrying either is linked to the
person's unified profile (profile_links.py) before it is stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.identity import EMAIL, PHONE, InvalidIdentifier, normalise
from threadline.sales.custom_fields import ENTITIES, check_custom, fields_of
from threadline.sales.pipelines import pipeline_in, record_stage_change
from threadline.sales.profile_links import link_to_profile
from threadline.sales.scope import MODELS, sales_filter
from threadline.storage import Database
from threadline.storage.models import Contact, Deal, DealStageChange, Pipeline, SalesAccount, User

LEAD_STATUSES = ("new", "contacted", "qualified", "unqualified", "converted")
ACCOUNT_KINDS = ("company", "person")
DEAL_STATUSES = ("open", "won", "lost")
PER_PAGE = 50
MAX_PER_PAGE = 500


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    kind: str  # text|email|phone|choice|bool|user|account|pipeline|stage|amount|currency|date|products
    required: bool = False
    length: int = 200
    choices: tuple[str, ...] = ()


COLUMNS: dict[str, tuple[Column, ...]] = {
    "lead": (
        Column("name", "text", True),
        Column("company", "text"),
        Column("email", "email", length=320),
        Column("phone", "phone"),
        Column("source", "text", length=100),
        # "converted" is set by converting the lead, never by hand.
        Column("status", "choice", choices=LEAD_STATUSES[:4]),
        Column("owner_id", "user"),
    ),
    "account": (
        Column("name", "text", True),
        Column("kind", "choice", choices=ACCOUNT_KINDS),
        Column("industry", "text", length=100),
        Column("region", "text", length=100),
        Column("source", "text", length=100),
        Column("level", "text", length=20),
        Column("owner_id", "user"),
    ),
    "contact": (
        Column("account_id", "account", True),
        Column("name", "text", True),
        Column("title", "text", length=100),
        Column("email", "email", length=320),
        Column("phone", "phone"),
        Column("is_decision_maker", "bool"),
    ),
    "deal": (
        Column("name", "text", True),
        Column("account_id", "account", True),
        Column("pipeline_id", "pipeline"),
        Column("stage", "stage"),
        Column("amount", "amount"),
        Column("currency", "currency"),
        Column("expected_close", "date"),
        Column("owner_id", "user"),
        Column("products", "products"),
    ),
}
DEFAULTS: dict[str, dict[str, Any]] = {
    "lead": {"status": "new"},
    "account": {"kind": "company"},
    "contact": {"is_decision_maker": False},
    "deal": {},
}
_TRUE = {"true", "yes", "y", "1", "on", "是"}


def _bad(key: str, reason: str) -> Invalid:
    return Invalid(f"{key}: {reason}", details={"field": key})


def check_entity(entity: str) -> str:
    if entity not in ENTITIES:
        raise NotFound(f"no such kind of sales record {entity!r}")
    return entity


def _empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _integer(key: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise _bad(key, "must be a whole number")
    try:
        return int(str(raw).strip()) if isinstance(raw, str) else int(raw)
    except (TypeError, ValueError):
        raise _bad(key, f"{raw!r} is not a whole number") from None


def _value(session: Session, viewer: Viewer, column: Column, raw: Any, settings: Settings) -> Any:
    key = column.key
    if _empty(raw):
        if column.required:
            raise _bad(key, "is required")
        return False if column.kind == "bool" else [] if column.kind == "products" else None
    if column.kind == "text":
        text = str(raw).strip()
        if len(text) > column.length:
            raise _bad(key, f"longer than {column.length} characters")
        return text
    if column.kind in ("email", "phone"):
        try:
            kind = EMAIL if column.kind == "email" else PHONE
            return normalise(kind, str(raw), region=settings.default_region, field=key).value
        except InvalidIdentifier as error:
            raise _bad(key, error.reason) from None
    if column.kind == "choice":
        text = str(raw).strip().lower()
        if text not in column.choices:
            raise _bad(key, f"must be one of {', '.join(column.choices)}")
        return text
    if column.kind == "bool":
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in _TRUE
    if column.kind == "user":
        return _user(session, key, raw)
    if column.kind == "account":
        account_id = _integer(key, raw)
        visible = select(SalesAccount.id).where(
            SalesAccount.id == account_id, sales_filter(viewer, "account")
        )
        if session.scalar(visible) is None:
            raise _bad(key, f"no account {account_id}")
        return account_id
    if column.kind == "pipeline":
        return pipeline_in(session, _integer(key, raw)).id
    if column.kind == "stage":
        return str(raw).strip()  # checked against the pipeline once both are known
    if column.kind == "amount":
        try:
            amount = Decimal(str(raw).strip().replace(",", ""))
        except InvalidOperation:
            raise _bad(key, f"{raw!r} is not an amount") from None
        if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
            raise _bad(key, "must be zero or more, below a trillion")
        return amount.quantize(Decimal("0.01"))
    if column.kind == "currency":
        text = str(raw).strip().upper()
        if len(text) != 3 or not text.isalpha():
            raise _bad(key, "a three-letter currency code such as CNY or USD")
        return text
    if column.kind == "date":
        if isinstance(raw, date):
            return raw
        try:
            return date.fromisoformat(str(raw).strip()[:10])
        except ValueError:
            raise _bad(key, f"{raw!r} is not a date (YYYY-MM-DD)") from None
    return _products(raw)


def _user(session: Session, key: str, raw: Any) -> int:
    text = str(raw).strip()
    where = User.id == int(text) if text.isdigit() else func.lower(User.email) == text.lower()
    user_id = session.scalar(select(User.id).where(where))
    if user_id is None:
        raise _bad(key, f"no user {raw!r}")
    return int(user_id)


def _products(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _bad("products", "must be a JSON list of {sku, name, quantity, price}") from None
    if not isinstance(raw, list):
        raise _bad("products", "must be a list of {sku, name, quantity, price}")
    out = []
    for i, item in enumerate(raw):
        where = f"products[{i}]"
        if not isinstance(item, dict) or not str(item.get("name") or item.get("sku") or "").strip():
            raise _bad(where, "needs a sku or a name")
        try:
            quantity = float(item.get("quantity", 1))
            price = float(item.get("price", 0))
        except (TypeError, ValueError):
            raise _bad(where, "quantity and price must be numbers") from None
        if quantity <= 0 or price < 0:
            raise _bad(where, "quantity must be above zero and price not below")
        out.append(
            {
                "sku": str(item.get("sku") or "").strip(),
                "name": str(item.get("name") or "").strip(),
                "quantity": int(quantity) if quantity.is_integer() else quantity,
                "price": price,
            }
        )
    return out


def check_values(
    session: Session,
    viewer: Viewer,
    entity: str,
    raw: Mapping[str, Any],
    *,
    settings: Settings,
    row: Any = None,
) -> dict[str, Any]:
    """The standard columns and `custom` to store, checked: every column for a new record (`row` None),
    only those in `raw` for a change. Raises Invalid naming the field."""
    known = {c.key for c in COLUMNS[entity]} | {"custom"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _bad(unknown[0], f"a {entity} has no field {unknown[0]!r}")
    values: dict[str, Any] = {}
    for column in COLUMNS[entity]:
        if column.key in raw:
            values[column.key] = _value(session, viewer, column, raw[column.key], settings)
        elif row is None:
            default = DEFAULTS[entity].get(column.key)
            values[column.key] = _value(session, viewer, column, default, settings)
    if entity == "deal":
        _check_stage(session, values, row)
    custom = raw.get("custom") or {}
    if not isinstance(custom, Mapping):
        raise _bad("custom", "must be an object of custom field values")
    values["custom"] = check_custom(
        session,
        entity,
        custom,
        existing=None if row is None else row.custom,
        record_id=None if row is None else row.id,
    )
    return values


def _check_stage(session: Session, values: dict[str, Any], row: Deal | None) -> None:
    if row is not None and "stage" not in values and "pipeline_id" not in values:
        return
    pipeline = pipeline_in(session, values.get("pipeline_id") or (None if row is None else row.pipeline_id))
    values["pipeline_id"] = pipeline.id
    wanted = values.get("stage") or (None if row is None else row.stage)
    if not wanted:
        values["stage"] = pipeline.stages[0]["key"]
        return
    stage = pipeline.stage(wanted)
    if stage is None:
        keys = ", ".join(s["key"] for s in pipeline.stages)
        raise _bad("stage", f"{wanted!r} is not a stage of pipeline {pipeline.name!r} ({keys})")
    values["stage"] = stage["key"]


def _owner_rules(viewer: Viewer, entity: str, values: dict[str, Any], row: Any) -> None:
    if "owner_id" not in COLUMNS_KEYS[entity]:
        return
    if row is None and values.get("owner_id") is None:
        values["owner_id"] = viewer.user_id  # a new record is its creator's
    owner = values.get("owner_id", None if row is None else row.owner_id)
    before = viewer.user_id if row is None else row.owner_id
    if owner != before and not viewer.can("transfer"):
        raise Forbidden("owner_id: giving a record to someone else needs the transfer permission")


COLUMNS_KEYS = {entity: {c.key for c in columns} for entity, columns in COLUMNS.items()}


def insert_record(
    session: Session, viewer: Viewer, entity: str, values: dict[str, Any], *, now: datetime
) -> Any:
    """Store checked values as a new row (in the caller's transaction; conversion makes three)."""
    model = MODELS[entity]
    extra = {"status": "open"} if entity == "deal" else {}
    row = model(**values, **extra, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    if entity == "deal":
        record_stage_change(session, row.id, None, row.stage, viewer.user_id, now)
    return row


def _linked_profile(
    db: Database,
    viewer: Viewer,
    entity: str,
    raw: Mapping[str, Any],
    *,
    settings: Settings,
    row: Any,
    now: datetime,
) -> tuple[bool, str | None]:
    """(changed, profile) for a lead or contact whose email or phone is set or changed."""
    if entity not in ("lead", "contact") or not ({"email", "phone"} & set(raw)):
        return False, None
    with db.read() as session:  # check first: a refused record must not create a profile
        values = check_values(session, viewer, entity, raw, settings=settings, row=row)
    email = values.get("email", None if row is None else row.email)
    phone = values.get("phone", None if row is None else row.phone)
    if row is not None and (email, phone) == (row.email, row.phone):
        return False, None
    name = values.get("name", None if row is None else row.name)
    return True, link_to_profile(db, settings, name=name, email=email, phone=phone, now=now)


def create_record(
    db: Database, viewer: Viewer, entity: str, raw: Mapping[str, Any], *, settings: Settings, now: datetime
) -> dict[str, Any]:
    check_entity(entity)
    if not viewer.can("create"):
        raise Forbidden(f"creating a {entity} needs the create permission")
    _, profile_id = _linked_profile(db, viewer, entity, raw, settings=settings, row=None, now=now)
    with db.write() as session:
        values = check_values(session, viewer, entity, raw, settings=settings)
        _owner_rules(viewer, entity, values, None)
        if entity in ("lead", "contact"):
            values["profile_id"] = profile_id
        row = insert_record(session, viewer, entity, values, now=now)
        return _view(session, entity, row)


def scoped_row(session: Session, viewer: Viewer, entity: str, record_id: int) -> Any:
    model = MODELS[entity]
    row = session.scalar(select(model).where(model.id == record_id, sales_filter(viewer, entity)))
    if row is None:
        exists = session.scalar(select(model.id).where(model.id == record_id)) is not None
        raise NotFound(f"{entity} {record_id} does not exist", details={"out_of_scope": exists})
    return row


def get_record(db: Database, viewer: Viewer, entity: str, record_id: int) -> dict[str, Any]:
    check_entity(entity)
    with db.read() as session:
        row = scoped_row(session, viewer, entity, record_id)
        view = _view(session, entity, row)
        if entity == "account":
            view["contacts"] = [
                _view(session, "contact", c)
                for c in session.scalars(
                    select(Contact).where(Contact.account_id == row.id).order_by(Contact.name, Contact.id)
                )
            ]
            view["deals"] = [
                _view(session, "deal", d)
                for d in session.scalars(
                    select(Deal)
                    .where(Deal.account_id == row.id, sales_filter(viewer, "deal"))
                    .order_by(Deal.id)
                )
            ]
        if entity == "deal":
            view["stage_history"] = [
                {
                    "from_stage": h.from_stage,
                    "to_stage": h.to_stage,
                    "changed_at": h.changed_at,
                    "user_id": h.user_id,
                }
                for h in session.scalars(
                    select(DealStageChange)
                    .where(DealStageChange.deal_id == row.id)
                    .order_by(DealStageChange.changed_at, DealStageChange.id)
                )
            ]
        return view


def update_record(
    db: Database,
    viewer: Viewer,
    entity: str,
    record_id: int,
    raw: Mapping[str, Any],
    *,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    check_entity(entity)
    if not viewer.can("edit"):
        raise Forbidden(f"changing a {entity} needs the edit permission")
    with db.read() as session:
        before = scoped_row(session, viewer, entity, record_id)
    changed, profile_id = _linked_profile(db, viewer, entity, raw, settings=settings, row=before, now=now)
    with db.write() as session:
        row = scoped_row(session, viewer, entity, record_id)
        values = check_values(session, viewer, entity, raw, settings=settings, row=row)
        _owner_rules(viewer, entity, values, row)
        if changed:
            values["profile_id"] = profile_id
        if entity == "deal" and values.get("stage", row.stage) != row.stage:
            record_stage_change(session, row.id, row.stage, values["stage"], viewer.user_id, now)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = now
        session.flush()
        return _view(session, entity, row)


def delete_record(db: Database, viewer: Viewer, entity: str, record_id: int) -> None:
    """Delete a record; an account takes its contacts and deals with it."""
    check_entity(entity)
    if not viewer.can("delete"):
        raise Forbidden(f"deleting a {entity} needs the delete permission")
    with db.write() as session:
        row = scoped_row(session, viewer, entity, record_id)
        deal_ids: list[int] = []
        if entity == "account":
            deal_ids = list(session.scalars(select(Deal.id).where(Deal.account_id == row.id)))
            session.execute(delete(Contact).where(Contact.account_id == row.id))
        elif entity == "deal":
            deal_ids = [row.id]
        if deal_ids:
            session.execute(delete(DealStageChange).where(DealStageChange.deal_id.in_(deal_ids)))
            session.execute(
                delete(Deal).where(Deal.id.in_(deal_ids)).execution_options(synchronize_session=False)
            )
        if entity != "deal":
            session.delete(row)


def transfer_records(
    db: Database, viewer: Viewer, entity: str, record_ids: list[int], owner: Any, *, now: datetime
) -> int:
    """Give records to another owner (needs `transfer`). An account's open deals go with it, so the new
    owner can work them."""
    check_entity(entity)
    if entity == "contact":
        raise Invalid(
            "owner_id: a contact belongs to its account; transfer the account", details={"field": "owner_id"}
        )
    if not viewer.can("transfer"):
        raise Forbidden("transferring records needs the transfer permission")
    with db.write() as session:
        owner_id = None if _empty(owner) else _user(session, "owner_id", owner)
        rows = [scoped_row(session, viewer, entity, i) for i in sorted(set(record_ids))]
        for row in rows:
            row.owner_id, row.updated_at = owner_id, now
        if entity == "account" and rows:
            session.execute(
                update(Deal)
                .where(Deal.account_id.in_([r.id for r in rows]), Deal.status == "open")
                .values(owner_id=owner_id, updated_at=now)
            )
        return len(rows)


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """A list's search and filters. `owner` is "me", "none" or a user id."""

    q: str = ""
    status: str = ""
    owner: str = ""
    kind: str = ""
    account_id: int | None = None
    pipeline_id: int | None = None
    stage: str = ""
    custom: dict[str, str] = field(default_factory=dict)
    page: int = 1
    per_page: int = PER_PAGE

    def names(self) -> list[str]:
        """Which filters are set, for the audit log (never their values: a search may be a phone)."""
        set_ = [k for k in ("q", "status", "owner", "kind", "stage") if getattr(self, k)]
        set_ += [k for k in ("account_id", "pipeline_id") if getattr(self, k) is not None]
        return set_ + [f"custom.{k}" for k in sorted(self.custom)]


@dataclass(frozen=True, slots=True)
class RecordPage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    per_page: int


def _conditions(session: Session, viewer: Viewer, entity: str, query: RecordQuery) -> list[Any]:
    model = MODELS[entity]
    where: list[Any] = [sales_filter(viewer, entity)]
    text = query.q.strip()
    if text:
        like = f"%{text.lower()}%"
        options = [func.lower(model.name).like(like)]
        for name in ("email", "company", "title"):
            if hasattr(model, name):
                options.append(func.lower(getattr(model, name)).like(like))
        digits = "".join(ch for ch in text if ch.isdigit())
        if hasattr(model, "phone") and len(digits) >= 4:
            options.append(model.phone.like(f"%{digits}%"))
        where.append(or_(*options))
    if query.status and hasattr(model, "status"):
        where.append(model.status == query.status)
    if query.kind and entity == "account":
        where.append(SalesAccount.kind == query.kind)
    if query.owner and hasattr(model, "owner_id"):
        if query.owner == "me":
            where.append(model.owner_id == viewer.user_id)
        elif query.owner == "none":
            where.append(model.owner_id.is_(None))
        elif query.owner.isdigit():
            where.append(model.owner_id == int(query.owner))
    if query.account_id is not None and hasattr(model, "account_id"):
        where.append(model.account_id == query.account_id)
    if entity == "deal":
        if query.pipeline_id is not None:
            where.append(Deal.pipeline_id == query.pipeline_id)
        if query.stage:
            where.append(Deal.stage == query.stage)
    types = {f.key: f.type for f in fields_of(session, entity)}
    for key, wanted in query.custom.items():
        if key not in types:
            raise _bad(f"custom.{key}", f"{entity} has no custom field {key!r}")
        if not wanted.strip():
            continue
        stored = model.custom[key].as_string()
        if types[key] == "multi_select":
            where.append(stored.like(f'%"{wanted.strip()}"%'))
        elif types[key] == "boolean":
            yes = wanted.strip().lower() in _TRUE
            where.append(stored.in_(("true", "1") if yes else ("false", "0")))
        elif types[key] == "text":
            where.append(func.lower(stored).like(f"%{wanted.strip().lower()}%"))
        else:
            where.append(func.lower(stored) == wanted.strip().lower())
    return where


def list_records(db: Database, viewer: Viewer, entity: str, query: RecordQuery) -> RecordPage:
    check_entity(entity)
    model = MODELS[entity]
    per_page = max(1, min(query.per_page, MAX_PER_PAGE))
    page = max(1, query.page)
    with db.read() as session:
        where = _conditions(session, viewer, entity, query)
        total = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        order = model.updated_at.desc() if hasattr(model, "updated_at") else model.id.desc()
        rows = session.scalars(
            select(model)
            .where(*where)
            .order_by(order, model.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        return RecordPage(_views(session, entity, list(rows)), total, page, per_page)


def iter_records(db: Database, viewer: Viewer, entity: str, query: RecordQuery) -> list[dict[str, Any]]:
    """Every matching record (exports), in id order."""
    check_entity(entity)
    model = MODELS[entity]
    with db.read() as session:
        where = _conditions(session, viewer, entity, query)
        rows = session.scalars(select(model).where(*where).order_by(model.id)).all()
        return _views(session, entity, list(rows))


def _views(session: Session, entity: str, rows: list[Any]) -> list[dict[str, Any]]:
    owners = {getattr(r, "owner_id", None) for r in rows} - {None}
    accounts = {getattr(r, "account_id", None) for r in rows} - {None}
    emails = (
        dict(session.execute(select(User.id, User.email).where(User.id.in_(owners))).all()) if owners else {}
    )
    names = (
        dict(
            session.execute(
                select(SalesAccount.id, SalesAccount.name).where(SalesAccount.id.in_(accounts))
            ).all()
        )
        if accounts
        else {}
    )
    pipelines = {}
    if entity == "deal":
        pipelines = {p.id: p for p in session.scalars(select(Pipeline))}
    return [_view(session, entity, r, emails, names, pipelines) for r in rows]


def _view(
    session: Session,
    entity: str,
    row: Any,
    emails: dict[int, str] | None = None,
    names: dict[int, str] | None = None,
    pipelines: dict[int, Pipeline] | None = None,
) -> dict[str, Any]:
    view: dict[str, Any] = {"id": row.id, "entity": entity}
    for column in COLUMNS[entity]:
        value = getattr(row, column.key)
        view[column.key] = float(value) if isinstance(value, Decimal) else value
    view["custom"] = dict(row.custom or {})
    view["created_at"], view["updated_at"] = row.created_at, row.updated_at
    owner_id = getattr(row, "owner_id", None)
    if hasattr(row, "owner_id"):
        view["owner"] = (
            (
                (emails or {}).get(owner_id)
                if emails is not None
                else session.scalar(select(User.email).where(User.id == owner_id))
            )
            if owner_id is not None
            else None
        )
    if hasattr(row, "account_id"):
        view["account_name"] = (
            (names or {}).get(row.account_id)
            if names is not None
            else session.scalar(select(SalesAccount.name).where(SalesAccount.id == row.account_id))
        )
    if hasattr(row, "profile_id"):
        view["profile_id"] = row.profile_id
    for name in ("last_follow_up_at", "next_follow_up_at", "converted_at", "converted_account_id",
                 "converted_contact_id", "converted_deal_id", "in_pool_since", "status", "lost_reason",
                 "closed_at"):  # fmt: skip
        if hasattr(row, name):
            view[name] = getattr(row, name)
    if entity == "deal":
        pipeline = (pipelines or {}).get(row.pipeline_id) or session.get(Pipeline, row.pipeline_id)
        stage = next((s for s in (pipeline.stages if pipeline else []) if s["key"] == row.stage), None)
        view["pipeline_name"] = pipeline.name if pipeline else None
        view["stage_name"] = stage["name"] if stage else row.stage
        view["probability"] = (
            100 if row.status == "won" else 0 if row.status == "lost" else (stage or {}).get("probability", 0)
        )
    return view
