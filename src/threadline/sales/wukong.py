"""Moving over from WukongCRM (悟空CRM): its exported customers (客户), contacts (联系人), leads (线索) and
follow-ups (跟进记录), read by their Chinese column headers (wukong_files.py).

Nothing here writes on its own: each row becomes a row of Threadline's own import (spreadsheets.py, so the
identity rules, custom fields, owners and the unified profile work as for any import) or a call of
`record_follow_up` (so a follow-up moves the account's times, reminds its owner and lands on the
customer's timeline).

A bad row is rejected with its line (as the spreadsheet numbers it, title row included) and the Chinese
column at fault, and kept whole in the rejects file; every other row is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid, ThreadlineError
from threadline.identity import EMAIL, PHONE
from threadline.sales.custom_fields import list_custom_fields
from threadline.sales.follow_ups import follow_up_methods, record_follow_up
from threadline.sales.profile_links import link_to_profile
from threadline.sales.records import update_record
from threadline.sales.scope import sales_filter
from threadline.sales.spreadsheets import MODES, ImportOutcome, Reject, import_records, write_table
from threadline.sales.wukong_files import (
    KINDS,
    METHODS,
    NO,
    YES,
    Owners,
    RowError,
    columns_of,
    find_header,
    identifier,
    parse_time,
    read_lines,
)
from threadline.storage import Database
from threadline.storage.models import Contact, FollowUp, Lead, SalesAccount

ENTITY = {"customers": "account", "contacts": "contact", "leads": "lead"}


@dataclass(frozen=True, slots=True)
class Notice:
    row: int
    column: str
    message: str


@dataclass(slots=True)
class WukongOutcome:
    kind: str
    mode: str
    header: list[str]
    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # columns nothing here takes

    @property
    def object_type(self) -> str:
        """What the audit log calls the records imported."""
        return ENTITY.get(self.kind, "follow_up")

    def summary(self) -> dict[str, Any]:
        """Counts and column names only: the audit log and the API answer (cells are personal data)."""
        return {
            "from": "wukong",
            "kind": self.kind,
            "mode": self.mode,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "rejected": len(self.rejects),
            "warnings": len(self.warnings),
            "ignored_columns": self.ignored,
        }

    def rejects_file(self, fmt: str = "csv") -> bytes:
        rows = [[r.row, r.column, r.reason, *r.cells] for r in self.rejects]
        return write_table(["行号 row", "列 column", "原因 error", *self.header], rows, fmt)


# -- importing ------------------------------------------------------------------------------------------
def import_wukong(
    db: Database,
    viewer: Viewer,
    kind: str,
    filename: str,
    data: bytes,
    *,
    mode: str = "skip",
    owner_map: dict[str, str] | None = None,
    settings: Settings,
    now: datetime,
    on_progress: Callable[[int, int], None] | None = None,
) -> WukongOutcome:
    """Import a WukongCRM export of `kind` (customers, contacts, leads, follow-ups). Needs the create and
    transfer permissions: a migration hands records to their Wukong owners (admins and managers)."""
    if kind not in KINDS:
        raise Invalid(f"kind: must be one of {', '.join(KINDS)}", details={"field": "kind"})
    if mode not in MODES:
        raise Invalid(f"mode: must be one of {', '.join(MODES)}", details={"field": "mode"})
    if not (viewer.can("create") and viewer.can("transfer")):
        raise Forbidden(
            "importing from WukongCRM needs the create and transfer permissions (admins, managers)"
        )
    lines = read_lines(filename, data)
    custom = list_custom_fields(db, ENTITY[kind]) if kind in ENTITY else []
    start = find_header(kind, lines, custom)
    header = lines[start][1]
    meaning, extra = columns_of(kind, header, custom)
    body = lines[start + 1 :]
    outcome = WukongOutcome(kind, mode, header, rows=len(body))
    if kind == "follow-ups" and not {"account", "lead"} & set(meaning):
        raise Invalid("column 所属客户: is missing", details={"field": "所属客户"})
    outcome.ignored = _ignored(kind, header, meaning, extra)
    owners = Owners.load(db, owner_map)
    methods = follow_up_methods(db)
    for done, (number, raw_cells) in enumerate(body, start=1):
        cells = (raw_cells + [""] * len(header))[: len(header)]
        try:
            if kind == "follow-ups":
                _follow_up(db, viewer, meaning, header, cells, number, outcome, methods, settings, now)
            else:
                _record(
                    db, viewer, kind, meaning, extra, header, cells, number, outcome, owners, settings, now
                )
        except RowError as problem:
            outcome.rejects.append(Reject(number, problem.column, problem.reason, cells))
        if on_progress is not None:
            on_progress(done, len(body))
    return outcome


def _ignored(kind: str, header: list[str], meaning: dict[str, int], extra: dict[int, str]) -> list[str]:
    """Columns nothing takes (system columns such as 创建时间, fields without a custom field here)."""
    used = set(meaning.values()) | set(extra)
    if kind == "customers":
        # An account has no phone or email: they reach a person customer's profile, nowhere for a company.
        contact = {meaning[k] for k in ("mobile", "telephone", "email") if k in meaning} - set(extra)
        used -= contact
        return [
            h + (" (个人 only)" if i in contact else "") for i, h in enumerate(header) if h and i not in used
        ]
    return [h for i, h in enumerate(header) if h and i not in used]


def _get(meaning: dict[str, int], cells: list[str], key: str) -> str:
    return cells[meaning[key]].strip() if key in meaning else ""


def _record(
    db: Database,
    viewer: Viewer,
    kind: str,
    meaning: dict[str, int],
    extra: dict[int, str],
    header: list[str],
    cells: list[str],
    number: int,
    outcome: WukongOutcome,
    owners: Owners,
    settings: Settings,
    now: datetime,
) -> None:
    entity = ENTITY[kind]
    column = {key: header[i] for key, i in meaning.items()}
    value = {key: _get(meaning, cells, key) for key in meaning}
    row: dict[str, str] = {}
    source: dict[str, str] = {}  # the Threadline column -> the Wukong header it came from
    for key in ("name", "level", "source", "industry", "title", "company", "account"):
        if key in meaning:
            row[key], source[key] = value[key], column[key]
    # One phone here, two in Wukong: the mobile, else the landline.
    phone_key = "mobile" if value.get("mobile") else "telephone" if value.get("telephone") else None
    person = False
    if entity == "account":
        region = value.get("region") or " ".join(
            value[k] for k in ("province", "city", "district") if value.get(k)
        )
        row["region"], source["region"] = region, column.get("region") or column.get("province", "")
        type_text = value.get("kind", "")
        # A customer is a company unless Wukong says it is a person (客户类型 个人): guessing from the
        # name would merge a company's switchboard number into some person's profile.
        person = "个人" in type_text or type_text.lower() == "person"
        if "kind" in meaning:  # otherwise a new account is a company and an existing one keeps its kind
            row["kind"], source["kind"] = ("person" if person else "company"), column["kind"]
    elif phone_key or value.get("email"):
        if phone_key:
            row["phone"], source["phone"] = value[phone_key], column[phone_key]
        if value.get("email"):
            row["email"], source["email"] = value["email"], column["email"]
    if entity == "contact" and "is_decision_maker" in meaning:
        answer = value["is_decision_maker"].lower()
        if answer not in YES | NO:
            raise RowError(column["is_decision_maker"], "must be 是 or 否")
        row["is_decision_maker"], source["is_decision_maker"] = (
            ("yes" if answer in YES else "no"),
            column["is_decision_maker"],
        )
    if "owner" in meaning and entity != "contact":  # a contact belongs to its account's owner
        wanted = value["owner"]
        owner = owners.find(wanted) if wanted else None
        if wanted and owner is None:
            outcome.warnings.append(
                Notice(
                    number,
                    column["owner"],
                    f"no single user named {wanted!r}: the record goes to whoever imports it",
                )
            )
        row["owner"], source["owner"] = ("" if owner is None else str(owner)), column["owner"]
    for i, key in extra.items():
        row[key], source[key] = cells[i].strip(), header[i]
    profile_of = _person_identifiers(value, column, phone_key, settings) if person else None

    if entity == "contact" and not row.get("phone") and not row.get("email") and outcome.mode != "create":
        # Without an email or phone the identity rules find no duplicate; name within the account does,
        # so importing the same export twice stores a contact once.
        found = _contact_by_name(db, viewer, row.get("account", ""), row.get("name", ""))
        if found is not None:
            if outcome.mode == "skip":
                outcome.skipped += 1
                return
            changes = {k: v for k, v in row.items() if v and k in ("title", "is_decision_maker")}
            try:
                update_record(db, viewer, "contact", found, changes, settings=settings, now=now)
            except ThreadlineError as error:
                raise RowError(_column_of(error, source), _reason(error)) from None
            outcome.updated += 1
            return

    keys = list(row)
    result = import_records(
        db, viewer, entity, keys, [[row[k] for k in keys]], mode=outcome.mode, settings=settings, now=now
    )
    _count(outcome, result, source, cells, number)
    if result.created and profile_of is not None:
        _link_person(db, settings, viewer, row["name"], profile_of, now=now)


def _person_identifiers(
    value: dict[str, str], column: dict[str, str], phone_key: str | None, settings: Settings
) -> dict[str, str] | None:
    """A person customer's checked email and phone: they become the person's unified profile."""
    found: dict[str, str] = {}
    if phone_key:
        found["phone"] = identifier(PHONE, value[phone_key], column[phone_key], settings)
    if value.get("email"):
        found["email"] = identifier(EMAIL, value["email"], column["email"], settings)
    return found or None


def _link_person(
    db: Database, settings: Settings, viewer: Viewer, name: str, identifiers: dict[str, str], *, now: datetime
) -> None:
    """Link the person account just created to the person's profile, as converting a lead to a person
    account does, so its follow-ups land on their timeline."""
    profile_id = link_to_profile(
        db, settings, name=name, email=identifiers.get("email"), phone=identifiers.get("phone"), now=now
    )
    if profile_id is None:
        return
    with db.write() as session:
        account = session.scalars(
            select(SalesAccount)
            .where(func.lower(SalesAccount.name) == name.lower(), SalesAccount.profile_id.is_(None))
            .where(sales_filter(viewer, "account"))
            .order_by(SalesAccount.id.desc())
            .limit(1)
        ).first()
        if account is not None:
            account.profile_id = profile_id


def _contact_by_name(db: Database, viewer: Viewer, account: str, name: str) -> int | None:
    if not account or not name:
        return None
    with db.read() as session:
        found = session.scalar(
            select(Contact.id)
            .join(SalesAccount, SalesAccount.id == Contact.account_id)
            .where(func.lower(SalesAccount.name) == account.lower(), func.lower(Contact.name) == name.lower())
            .where(sales_filter(viewer, "account"))
            .order_by(Contact.id)
            .limit(1)
        )
    return None if found is None else int(found)


def _reason(error: ThreadlineError) -> str:
    return error.message.split(": ", 1)[-1] if ": " in error.message else error.message


def _column_of(error: ThreadlineError, source: dict[str, str]) -> str:
    name = error.details.get("field", "") if isinstance(error.details, dict) else ""
    for key in (name, name.removeprefix("custom."), name.removesuffix("_id"), name.split("[")[0]):
        if key in source:
            return source[key]
    return name


def _count(
    outcome: WukongOutcome, result: ImportOutcome, source: dict[str, str], cells: list[str], number: int
) -> None:
    outcome.created += result.created
    outcome.updated += result.updated
    outcome.skipped += result.skipped
    for reject in result.rejects:
        # The import names its own column ("phone", "owner"); the user knows the Wukong one ("手机").
        column = (
            source.get(reject.column) or source.get(reject.column.removeprefix("custom.")) or reject.column
        )
        outcome.rejects.append(Reject(number, column, reject.reason, cells))


def _follow_up(
    db: Database,
    viewer: Viewer,
    meaning: dict[str, int],
    header: list[str],
    cells: list[str],
    number: int,
    outcome: WukongOutcome,
    methods: tuple[str, ...],
    settings: Settings,
    now: datetime,
) -> None:
    column = {key: header[i] for key, i in meaning.items()}
    value = {key: _get(meaning, cells, key) for key in meaning}
    if not value.get("content"):
        raise RowError(column["content"], "is required")
    subject_type, subject_id = _subject(db, viewer, meaning, column, value)
    at = parse_time(value.get("at", ""), column.get("at", ""), settings) or now
    if at > now:
        raise RowError(column.get("at", ""), "is in the future")
    next_at = parse_time(value.get("next", ""), column.get("next", ""), settings)
    method = METHODS.get(value.get("method", "").strip(), "other")
    if method not in methods:  # the workspace configured its own list: what it lacks counts as "other"
        method = "other" if "other" in methods else methods[0]
    if outcome.mode != "create" and _logged_before(
        db, subject_type, subject_id, value["content"], at, bool(value.get("at"))
    ):
        outcome.skipped += 1  # a follow-up is history: "update" has nothing to change either
        return
    try:
        record_follow_up(
            db,
            settings,
            viewer,
            subject_type=subject_type,
            subject_id=subject_id,
            method=method,
            content=value["content"],
            next_contact_at=next_at,
            now=at,  # when it happened: its place on the timeline and the account's last follow-up
        )
    except ThreadlineError as error:
        source = {"content": column["content"], "next_contact_at": column.get("next", "")}
        reason = _reason(error)
        if "future" in reason:  # record_follow_up compares the next contact time with `now`, here `at`
            reason = "must be after the follow-up's own time"
        raise RowError(_column_of(error, source), reason) from None
    outcome.created += 1


def _subject(
    db: Database, viewer: Viewer, meaning: dict[str, int], column: dict[str, str], value: dict[str, str]
) -> tuple[str, str]:
    """The account (所属客户) or lead (所属线索) a follow-up is about, by name within the viewer's scope."""
    key = "account" if value.get("account") or "lead" not in meaning else "lead"
    name = value.get(key, "")
    if not name:
        raise RowError(column[key], "is required")
    model: Any = SalesAccount if key == "account" else Lead
    with db.read() as session:
        found = session.scalars(
            select(model.id).where(func.lower(model.name) == name.lower(), sales_filter(viewer, key)).limit(2)
        ).all()
    if len(found) != 1:
        what = "customer" if key == "account" else "lead"
        reason = f"no {what} named {name!r}" if not found else f"more than one {what} named {name!r}"
        raise RowError(column[key], reason + " (import the customers first)" if not found else reason)
    return key, str(found[0])


def _logged_before(
    db: Database, subject_type: str, subject_id: str, content: str, at: datetime, timed: bool
) -> bool:
    """Whether this follow-up was imported already: same record and notes, and same time when the file
    gives one."""
    query = select(FollowUp.id).where(
        FollowUp.subject_type == subject_type,
        FollowUp.subject_id == subject_id,
        FollowUp.content == content.strip(),
    )
    if timed:
        query = query.where(FollowUp.created_at == at)
    with db.read() as session:
        return session.scalar(query.limit(1)) is not None
