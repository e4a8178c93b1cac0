"""Importing and exporting leads, accounts, contacts and deals as CSV or XLSX.

The template and the export share the columns (`columns_for`): the standard fields, then one per custom
field (by key). An import checks each row like a form (records.check_values), finds duplicates through
the identity rules (email and phone normalised as threadline.identity matches them; accounts by name,
deals by name within their account) and skips, updates or creates them. A rejected row keeps its cells
in the rejects file with the row number, the column and the reason; every valid row is stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, or_, select

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid, NotFound, ThreadlineError
from threadline.identity import EMAIL, PHONE, InvalidIdentifier, normalise
from threadline.sales.custom_fields import FieldDefinition, list_custom_fields, show_custom
from threadline.sales.records import RecordQuery, check_entity, create_record, iter_records, update_record
from threadline.sales.scope import MODELS, sales_filter
from threadline.storage import Database
from threadline.storage.models import Deal, Pipeline, SalesAccount

FORMATS = ("csv", "xlsx")
MODES = ("skip", "update", "create")
MAX_ROWS = 50_000
STANDARD: dict[str, tuple[str, ...]] = {
    "lead": ("name", "company", "email", "phone", "source", "status", "owner"),
    "account": ("name", "kind", "industry", "region", "source", "level", "owner"),
    "contact": ("account", "name", "title", "email", "phone", "is_decision_maker"),
    "deal": (
        "name",
        "account",
        "pipeline",
        "stage",
        "amount",
        "currency",
        "expected_close",
        "owner",
        "products",
    ),
}
# In an export, not taken back by an import (so an exported file can be re-imported as it is).
READ_ONLY: dict[str, tuple[str, ...]] = {
    "lead": ("id", "created_at", "last_follow_up_at", "next_follow_up_at", "converted_at"),
    "account": ("id", "created_at", "last_follow_up_at", "next_follow_up_at"),
    "contact": ("id", "created_at"),
    "deal": ("id", "created_at", "status", "lost_reason", "closed_at"),
}
# A standard column -> the field the records take.
FIELD_OF = {"owner": "owner_id", "account": "account_id", "pipeline": "pipeline_id"}


def columns_for(db: Database, entity: str) -> tuple[list[str], list[FieldDefinition]]:
    check_entity(entity)
    custom = list_custom_fields(db, entity)
    return [*STANDARD[entity], *(f.key for f in custom)], custom


def _csv_safe(value: str) -> str:
    # A cell starting with = or @ is a formula to a spreadsheet; a leading quote keeps it text.
    return "'" + value if value[:1] in ("=", "@") else value


def write_table(header: list[str], rows: list[list[Any]], fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise Invalid(f"format: must be one of {', '.join(FORMATS)}", details={"field": "format"})
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_csv_safe(_cell(v)) for v in row])
        return ("\ufeff" + out.getvalue()).encode()  # the BOM makes Excel read UTF-8 (Chinese names)
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(header)
    for row in rows:
        sheet.append([_csv_safe(_cell(v)) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def template(db: Database, entity: str, fmt: str) -> bytes:
    """An empty file with the entity's columns, custom fields included."""
    header, _ = columns_for(db, entity)
    return write_table(header, [], fmt)


def export_records(
    db: Database, viewer: Viewer, entity: str, query: RecordQuery, fmt: str
) -> tuple[bytes, int]:
    """Every matching record in the viewer's scope as a file, and how many. Needs `export`; the caller
    audits it."""
    if not viewer.can("export"):
        raise Forbidden(f"exporting {entity}s needs the export permission")
    header, custom = columns_for(db, entity)
    header = [READ_ONLY[entity][0], *header, *READ_ONLY[entity][1:]]
    rows = []
    for view in iter_records(db, viewer, entity, query):
        standard = {
            "owner": view.get("owner"),
            "account": view.get("account_name"),
            "pipeline": view.get("pipeline_name"),
            **view,
        }
        values = {f.key: show_custom(f, view["custom"].get(f.key)) for f in custom}
        rows.append([values[h] if h in values else standard.get(h) for h in header])
    return write_table(header, rows, fmt), len(rows)


# -- reading ------------------------------------------------------------------------------------------
def read_table(filename: str, data: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of an uploaded CSV or XLSX file, as text."""
    name = filename.lower()
    if name.endswith((".xlsx", ".xlsm")):
        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # openpyxl raises many kinds for a file that is not a workbook
            raise Invalid("file: not a readable XLSX workbook", details={"field": "file"}) from None
        lines = [[_text(c) for c in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    elif name.endswith((".csv", ".txt", ".tsv")):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Invalid("file: not UTF-8 text; save the CSV as UTF-8", details={"field": "file"}) from None
        first = text.split("\n", 1)[0]
        delimiter = max((",", ";", "\t"), key=first.count)
        lines = [list(r) for r in csv.reader(io.StringIO(text), delimiter=delimiter)]
    else:
        raise Invalid("file: use a .csv or .xlsx file", details={"field": "file"})
    lines = [line for line in lines if any(c.strip() for c in line)]
    if not lines:
        raise Invalid("file: has no header row", details={"field": "file"})
    if len(lines) - 1 > MAX_ROWS:
        raise Invalid(f"file: more than {MAX_ROWS} rows; split it", details={"field": "file"})
    header = [h.strip() for h in lines[0]]
    width = len(header)
    return header, [(line + [""] * width)[:width] for line in lines[1:]]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True, slots=True)
class Reject:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str
    reason: str
    cells: list[str]


@dataclass(slots=True)
class ImportOutcome:
    entity: str
    mode: str
    header: list[str]
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejects: list[Reject] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts only: the audit log and the API answer (rejected cells stay in the rejects file)."""
        return {
            "mode": self.mode,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "rejected": len(self.rejects),
        }

    def rejects_file(self, fmt: str = "csv") -> bytes:
        rows = [[r.row, r.column, r.reason, *r.cells] for r in self.rejects]
        return write_table(["row", "column", "error", *self.header], rows, fmt)


def _headers(db: Database, entity: str, header: list[str]) -> tuple[dict[int, str], list[FieldDefinition]]:
    """Column index -> field (standard name or `custom.<key>`); an unknown column fails the file."""
    standard, custom = columns_for(db, entity)
    by_label = {f.label.lower(): f.key for f in custom}
    keys = {f.key for f in custom}
    fields: dict[int, str] = {}
    for i, name in enumerate(header):
        low = name.lower()
        if low in STANDARD[entity] or low in ("account_id", "pipeline_id", "owner_id"):
            fields[i] = low
        elif name in keys or low in by_label:
            fields[i] = "custom." + (name if name in keys else by_label[low])
        elif low in READ_ONLY[entity]:
            continue
        elif name:
            raise Invalid(
                f"column {name!r}: not a {entity} field (see the template: {', '.join(standard)})",
                details={"field": name},
            )
    if "name" not in fields.values():
        raise Invalid("column 'name': is missing", details={"field": "name"})
    return fields, custom


def _raw(fields: dict[int, str], cells: list[str], *, keep_blank: bool) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for i, name in fields.items():
        value = cells[i].strip()
        if not value and not keep_blank:
            continue  # an update leaves what a blank cell does not say
        if name.startswith("custom."):
            raw.setdefault("custom", {})[name[len("custom.") :]] = value
        else:
            raw[FIELD_OF.get(name, name)] = value
    return raw


def _resolve_names(session: Any, viewer: Viewer, raw: dict[str, Any]) -> None:
    """An account or pipeline written by name becomes its id."""
    account = raw.get("account_id")
    if isinstance(account, str) and account and not account.isdigit():
        found = session.scalars(
            select(SalesAccount.id)
            .where(func.lower(SalesAccount.name) == account.lower(), sales_filter(viewer, "account"))
            .limit(2)
        ).all()
        if len(found) != 1:
            reason = "no account named" if not found else "more than one account named"
            raise Invalid(f"account_id: {reason} {account!r}", details={"field": "account_id"})
        raw["account_id"] = found[0]
    pipeline = raw.get("pipeline_id")
    if isinstance(pipeline, str) and pipeline and not pipeline.isdigit():
        pipeline_id = session.scalar(select(Pipeline.id).where(func.lower(Pipeline.name) == pipeline.lower()))
        if pipeline_id is None:
            raise Invalid(f"pipeline_id: no pipeline named {pipeline!r}", details={"field": "pipeline_id"})
        raw["pipeline_id"] = pipeline_id


def _duplicate(session: Any, entity: str, raw: Mapping[str, Any], settings: Settings) -> int | None:
    """The id of the record this row repeats, by the identity rules; None for a new one."""
    model = MODELS[entity]
    if entity in ("lead", "contact"):
        ors = []
        for kind, key in ((EMAIL, "email"), (PHONE, "phone")):
            if raw.get(key):
                try:
                    value = normalise(kind, raw[key], region=settings.default_region, field=key).value
                except InvalidIdentifier:
                    continue  # the row's own check names the field
                ors.append(getattr(model, key) == value)
        if not ors:
            return None
        found = session.scalar(select(model.id).where(or_(*ors)).order_by(model.id).limit(1))
        return None if found is None else int(found)
    name = str(raw.get("name") or "").strip().lower()
    if not name:
        return None
    query = select(model.id).where(func.lower(model.name) == name)
    if entity == "deal":
        if not raw.get("account_id"):
            return None
        query = query.where(Deal.account_id == int(raw["account_id"]))
    found = session.scalar(query.order_by(model.id).limit(1))
    return None if found is None else int(found)


def import_records(
    db: Database,
    viewer: Viewer,
    entity: str,
    header: list[str],
    rows: list[list[str]],
    *,
    mode: str,
    settings: Settings,
    now: datetime,
) -> ImportOutcome:
    """Store each valid row (its own transaction, so one bad row costs only itself)."""
    check_entity(entity)
    if mode not in MODES:
        raise Invalid(f"mode: must be one of {', '.join(MODES)}", details={"field": "mode"})
    if not viewer.can("create"):
        raise Forbidden(f"importing {entity}s needs the create permission")
    fields, _ = _headers(db, entity, header)
    column_of = {FIELD_OF.get(name, name): header[i] for i, name in fields.items()}
    outcome = ImportOutcome(entity, mode, header)
    for number, cells in enumerate(rows, start=2):
        raw = _raw(fields, cells, keep_blank=False)
        try:
            with db.read() as session:
                _resolve_names(session, viewer, raw)
                duplicate = None if mode == "create" else _duplicate(session, entity, raw, settings)
            if duplicate is not None and mode == "skip":
                outcome.skipped += 1
            elif duplicate is not None:
                update_record(db, viewer, entity, duplicate, raw, settings=settings, now=now)
                outcome.updated += 1
            else:
                create_record(db, viewer, entity, raw, settings=settings, now=now)
                outcome.created += 1
        except NotFound:
            reason = f"repeats a {entity} outside your data scope"
            outcome.rejects.append(Reject(number, "", reason, cells))
        except ThreadlineError as error:
            name = error.details.get("field", "") if isinstance(error.details, dict) else ""
            column = column_of.get(name) or column_of.get(name.split("[")[0]) or name
            reason = error.message.split(": ", 1)[-1] if ": " in error.message else error.message
            outcome.rejects.append(Reject(number, column, reason, cells))
    return outcome
