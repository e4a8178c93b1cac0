"""Custom fields per entity (lead, account, contact, deal): their definitions, and checking the values a
form, the API or an import gives for them.

Values live in each record's `custom` JSON, typed: text and select as strings, number as a number, date
as an ISO date, multi-select as a list, user as a user id, boolean as a bool. Errors name the field as
`custom.<key>`, the way forms, the API and the rejects file show it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.sales.scope import MODELS
from threadline.storage import Database
from threadline.storage.models import CustomField, User

ENTITIES = ("lead", "account", "contact", "deal")
TYPES = ("text", "number", "date", "select", "multi_select", "user", "boolean")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_TRUE = {"true", "yes", "y", "1", "是", "on"}
_FALSE = {"false", "no", "n", "0", "否", "off", ""}
MAX_TEXT = 1000
# Standard columns: a custom key may not shadow one, so an error or a spreadsheet column names one thing.
RESERVED = {
    "id", "name", "company", "email", "phone", "source", "status", "owner", "owner_id", "profile_id",
    "custom", "kind", "industry", "region", "level", "account", "account_id", "title",
    "is_decision_maker", "pipeline", "pipeline_id", "stage", "amount", "currency", "expected_close",
    "lost_reason", "products", "created_at", "updated_at", "last_follow_up_at", "next_follow_up_at",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    id: int
    entity: str
    key: str
    label: str
    type: str
    options: tuple[str, ...]
    required: bool
    unique: bool
    position: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "key": self.key,
            "label": self.label,
            "type": self.type,
            "options": list(self.options),
            "required": self.required,
            "unique": self.unique,
            "position": self.position,
        }


def _definition(row: CustomField) -> FieldDefinition:
    return FieldDefinition(
        row.id,
        row.entity,
        row.key,
        row.label,
        row.type,
        tuple(row.options or ()),
        row.required,
        row.unique,
        row.position,
    )


def _entity(entity: str) -> str:
    if entity not in ENTITIES:
        raise Invalid(f"entity: must be one of {', '.join(ENTITIES)}", details={"field": "entity"})
    return entity


def fields_of(session: Session, entity: str) -> list[FieldDefinition]:
    rows = session.scalars(
        select(CustomField).where(CustomField.entity == entity).order_by(CustomField.position, CustomField.id)
    )
    return [_definition(row) for row in rows]


def list_custom_fields(db: Database, entity: str | None = None) -> list[FieldDefinition]:
    with db.read() as session:
        if entity is not None:
            return fields_of(session, _entity(entity))
        rows = session.scalars(
            select(CustomField).order_by(CustomField.entity, CustomField.position, CustomField.id)
        )
        return [_definition(row) for row in rows]


def _admin(viewer: Viewer) -> None:
    if viewer.role not in ("admin", "system"):
        raise Forbidden("custom fields are managed by admins")


def save_custom_field(
    db: Database, viewer: Viewer, spec: Mapping[str, Any], *, field_id: int | None = None
) -> FieldDefinition:
    """Create a field, or change one (`field_id`); its entity and key never change once values exist."""
    _admin(viewer)
    label = str(spec.get("label") or "").strip()
    if not label or len(label) > 100:
        raise Invalid("label: is required (at most 100 characters)", details={"field": "label"})
    kind = spec.get("type", "text")
    if kind not in TYPES:
        raise Invalid(f"type: must be one of {', '.join(TYPES)}", details={"field": "type"})
    options = spec.get("options") or []
    if isinstance(options, str):
        options = [o for o in re.split(r"[\n;,]", options)]
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise Invalid("options: must be a list of strings", details={"field": "options"})
    options = [o.strip() for o in options if o.strip()]
    if kind in ("select", "multi_select") and not options:
        raise Invalid("options: a select field needs at least one option", details={"field": "options"})
    position = spec.get("position", 0)
    if isinstance(position, bool) or not isinstance(position, int):
        raise Invalid("position: must be a whole number", details={"field": "position"})
    with db.write() as session:
        if field_id is None:
            entity = _entity(str(spec.get("entity", "")))
            key = str(spec.get("key") or "").strip()
            if not _KEY.match(key) or key in RESERVED:
                raise Invalid(
                    "key: lower-case letters, digits and _ starting with a letter, not a standard field",
                    details={"field": "key"},
                )
            taken = session.scalar(
                select(CustomField.id).where(CustomField.entity == entity, CustomField.key == key)
            )
            if taken is not None:
                raise Invalid(f"key: {entity} already has a field {key!r}", details={"field": "key"})
            row = CustomField(entity=entity, key=key, label=label, type=kind)
            session.add(row)
        else:
            found = session.get(CustomField, field_id)
            if found is None:
                raise NotFound(f"custom field {field_id} does not exist")
            row = found
            row.label, row.type = label, kind
        row.options = options
        row.required = bool(spec.get("required", False))
        row.unique = bool(spec.get("unique", False))
        row.position = position
        session.flush()
        return _definition(row)


def delete_custom_field(db: Database, viewer: Viewer, field_id: int) -> None:
    """The definition goes; values already stored stay in `custom` (an export still shows them)."""
    _admin(viewer)
    with db.write() as session:
        row = session.get(CustomField, field_id)
        if row is None:
            raise NotFound(f"custom field {field_id} does not exist")
        session.delete(row)


def _bad(key: str, reason: str) -> Invalid:
    return Invalid(f"custom.{key}: {reason}", details={"field": f"custom.{key}"})


def _empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def coerce_value(session: Session, field: FieldDefinition, raw: Any) -> Any:
    """`raw` (typed JSON, or the text of a form or a spreadsheet cell) as the field stores it."""
    key = field.key
    if _empty(raw):
        return None
    if field.type == "text":
        text = str(raw).strip()
        if len(text) > MAX_TEXT:
            raise _bad(key, f"longer than {MAX_TEXT} characters")
        return text
    if field.type == "number":
        if isinstance(raw, bool):
            raise _bad(key, "must be a number")
        try:
            number = float(str(raw).strip().replace(",", "")) if isinstance(raw, str) else float(raw)
        except (TypeError, ValueError):
            raise _bad(key, f"{raw!r} is not a number") from None
        return int(number) if number.is_integer() else number
    if field.type == "date":
        try:
            return date.fromisoformat(str(raw).strip()[:10]).isoformat()
        except ValueError:
            raise _bad(key, f"{raw!r} is not a date (YYYY-MM-DD)") from None
    if field.type == "boolean":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise _bad(key, f"{raw!r} is not yes or no")
    if field.type == "select":
        return _option(field, str(raw).strip())
    if field.type == "multi_select":
        items = raw if isinstance(raw, list) else re.split(r"[;|,]", str(raw))
        chosen = [_option(field, str(i).strip()) for i in items if str(i).strip()]
        return sorted(set(chosen), key=chosen.index) or None
    return _user(session, key, raw)


def _option(field: FieldDefinition, text: str) -> str:
    for option in field.options:
        if option.lower() == text.lower():
            return option
    raise _bad(field.key, f"{text!r} is not one of {', '.join(field.options)}")


def _user(session: Session, key: str, raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        user_id = session.scalar(select(User.id).where(User.id == raw))
    else:
        text = str(raw).strip()
        where = User.id == int(text) if text.isdigit() else func.lower(User.email) == text.lower()
        user_id = session.scalar(select(User.id).where(where))
    if user_id is None:
        raise _bad(key, f"no user {raw!r}")
    return int(user_id)


def check_custom(
    session: Session,
    entity: str,
    raw: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None = None,
    record_id: int | None = None,
) -> dict[str, Any]:
    """The record's new `custom`: `existing` with the values in `raw` checked and applied. Required fields
    must end up with a value and unique ones with a value no other record of the entity has."""
    fields = {f.key: f for f in fields_of(session, entity)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise _bad(unknown[0], f"{entity} has no custom field {unknown[0]!r}")
    merged = dict(existing or {})
    for key, value in raw.items():
        coerced = coerce_value(session, fields[key], value)
        if coerced is None:
            merged.pop(key, None)
        else:
            merged[key] = coerced
    model = MODELS[entity]
    for field in fields.values():
        value = merged.get(field.key)
        if field.required and value is None:
            raise _bad(field.key, f"{field.label} is required")
        if field.unique and value is not None and field.key in raw:
            stored = model.custom[field.key].as_string()
            clash = select(model.id).where(func.lower(stored) == str(_plain(value)).lower())
            if record_id is not None:
                clash = clash.where(model.id != record_id)
            if session.scalar(clash.limit(1)) is not None:
                raise _bad(field.key, f"another {entity} already has {field.label} {_plain(value)!r}")
    return merged


def _plain(value: Any) -> Any:
    # How the databases give a stored JSON scalar back as text (true/false for booleans, as JSON does).
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def show_custom(field: FieldDefinition, value: Any) -> str:
    """A stored value as a cell of an export or a list: multi-select joined with "; "."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
