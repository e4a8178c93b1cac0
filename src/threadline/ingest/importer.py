"""Importing offline channels (store tills, call-center lists, event sign-ups) from CSV or XLSX.

Each row becomes one Segment Spec message sent through the same write path as the HTTP API, so a row
is validated, quarantined, deduplicated and stitched exactly like a live event. Rows that fail
validation are also written to `<stem>.rejects.csv` beside the input with the line and the reason, so
whoever owns the spreadsheet can fix them there and import that file again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tomllib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from threadline import __version__
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.ingest.import_files import Cell, Row, Table, open_table
from threadline.ingest.pipeline import ingest
from threadline.ingest.sources import SourceInfo
from threadline.privacy import InvalidConsent, statement
from threadline.storage import Database

IMPORT_KINDS = ("identify", "track", "page", "screen", "group")
FIELDS = (
    *("userId", "anonymousId", "email", "phone", "timestamp", "event", "messageId", "name"),
    *("groupId", "first_name", "last_name"),
)
PREFIXES = ("traits.", "properties.", "context.")
CONSENT_PREFIX = "consent."  # consent.<purpose>.<channel> (or consent.<purpose> for every channel)
# What a consent cell may say; spreadsheets say yes and no (or tick a box: TRUE, 1) more than "granted".
CONSENT_VALUES = {
    **{word: "granted" for word in ("granted", "yes", "y", "true", "1", "是", "同意")},
    **{word: "denied" for word in ("denied", "no", "n", "false", "0", "否", "不同意")},
    "withdrawn": "withdrawn",
}
# Columns a rejects file adds: ignored on import, so a fixed rejects file can be imported as it is.
REJECT_COLUMNS = ("_line", "_field", "_reason")

# Header spellings recognised without a mapping, compared after _squash (case, spaces, _ - . removed).
# The first column matching a field wins; the rest of the columns become traits or properties.
_COMMON_HEADERS: dict[str, tuple[str, ...]] = {
    "userId": ("userid", "customerid", "customerno", "customernumber", "客户编号", "客户id", "用户id"),
    "anonymousId": ("anonymousid",),
    "email": ("email", "emailaddress", "mail", "邮箱", "电子邮箱", "电子邮件", "邮箱地址"),
    "phone": (
        *("phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "telephone", "tel", "cell"),
        *("cellphone", "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话"),
    ),
    "name": ("name", "fullname", "customername", "姓名", "客户姓名", "客户名称"),
    "first_name": ("firstname", "givenname", "名"),
    "last_name": ("lastname", "surname", "familyname", "姓"),
    "timestamp": (
        *("timestamp", "date", "time", "datetime", "createdat", "created", "eventtime", "eventdate"),
        *("orderdate", "purchasedate", "时间", "日期", "创建时间", "下单时间"),
    ),
    "event": ("event", "eventname", "事件"),
    "messageId": ("messageid",),
    "groupId": ("groupid", "companyid", "accountid"),
}


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int
    accepted: int
    duplicates: int
    rejected: int
    rejects_path: Path | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where each column of the file goes in a message: (column index, field path), in column order."""

    kind: str
    event: str | None
    columns: list[tuple[int, str]]
    # consent.<purpose>.<channel> columns: (column index, header, purpose, channel)
    consents: list[tuple[int, str, str, str]] = field(default_factory=list)


def import_file(
    db: Database,
    settings: Settings,
    path: Path,
    *,
    source: SourceInfo,
    kind: str = "identify",
    mapping: dict[str, str] | None = None,
    event: str | None = None,
    batch_size: int = 500,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Send every row of a CSV/XLSX file through `ingest` as a `kind` message from `source`.

    `mapping` is FIELD -> column; columns it leaves out are matched by common header names, and the
    rest become traits (identify, group) or properties (track, page, screen).
    """
    if kind not in IMPORT_KINDS:
        raise Invalid(f"kind: must be one of {', '.join(IMPORT_KINDS)}", details={"field": "kind"})
    if source.revoked:
        raise Invalid(f"source {source.name!r} is revoked")
    if batch_size < 1:
        raise Invalid("batch_size: must be at least 1")
    zone = _zone(settings.timezone)
    table = open_table(path)
    plan = plan_columns(table.header, kind, mapping or {}, (event or "").strip() or None, path)
    rejects = _RejectsFile(path.with_name(f"{path.stem}.rejects.csv"), table)
    occurrences: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    batch: list[tuple[Row, dict[str, Any]]] = []

    def send() -> None:
        result = ingest(
            db, source, [message for _, message in batch], settings=settings, received_at=utcnow()
        )
        for rejection in result.rejected:
            rejects.write(batch[rejection.index][0], rejection.field, rejection.reason)
        totals.update(accepted=result.accepted, duplicates=result.duplicates, rejected=len(result.rejected))
        totals["done"] += len(batch)
        batch.clear()
        if on_progress:
            on_progress(totals["done"], table.row_count)

    try:
        for row in table.rows():
            if row.extra:
                # Cells past the header have no column name to go under; better refused than dropped.
                reason = (
                    f"has {len(row.extra)} non-empty cells beyond the header's {len(table.header)} columns"
                )
                rejects.write(row, None, reason)
                totals.update(rejected=1, done=1)
                continue
            message = _message(plan, row.cells, zone)
            try:
                _add_consent(message, plan, row.cells)
            except InvalidConsent as error:
                rejects.write(row, error.field, error.reason)
                totals.update(rejected=1, done=1)
                continue
            if "messageId" not in message:
                content = _fingerprint(source.name, kind, message)
                occurrences[content] += 1
                message["messageId"] = f"import-{content}-{occurrences[content]}"
            message["context"] = {
                **message.get("context", {}),
                "library": {"name": "threadline-import", "version": __version__},
                "import": {"file": path.name, "line": row.line},
            }
            if "consent" in message["context"]:  # evidence: which file said so (not in the fingerprint)
                message["context"]["consent"]["form"] = f"import: {path.name}"
            batch.append((row, message))
            if len(batch) >= batch_size:
                send()
        if batch:
            send()
    finally:
        rejects.close()
    return ImportReport(
        rows=totals["done"],
        accepted=totals["accepted"],
        duplicates=totals["duplicates"],
        rejected=totals["rejected"],
        rejects_path=rejects.path if rejects.written else None,
    )


def plan_columns(
    header: list[str], kind: str, mapping: dict[str, str], event: str | None, path: Path
) -> _Plan:
    """Resolve explicit mapping, then common header names, then the catch-all, for every column."""
    if event is not None and kind != "track":
        raise Invalid(f"--event applies to track imports, not {kind}", details={"field": "event"})
    taken = _mapped_columns(header, mapping, path)
    mapped = {target for targets in taken.values() for target in targets}
    if event is not None:
        mapped.add("event")  # --event names every row; an "Event" column is then just a property
    for index, target in _common_columns(header, kind, taken, mapped):
        taken[index] = [target]
        mapped.add(target)
    if kind == "track" and "event" not in mapped:
        raise Invalid(
            f"{path}: a track import needs --event NAME or an event column (map one with event=COLUMN)"
        )
    rest = "traits" if kind in ("identify", "group") else "properties"
    keys: set[str] = set()
    columns: list[tuple[int, str]] = []
    consents: list[tuple[int, str, str, str]] = []
    for index, name in enumerate(header):
        if index in taken:
            columns += [(index, _path(target, kind)) for target in taken[index]]
        elif name.strip().casefold().startswith(CONSENT_PREFIX):
            consents.append((index, name, *_consent_column(name, path)))
        elif name and name not in REJECT_COLUMNS:
            key = base = snake_case(name) or f"column_{index + 1}"
            suffix = 2
            while key in keys:
                key, suffix = f"{base}_{suffix}", suffix + 1
            keys.add(key)
            columns.append((index, f"{rest}.{key}"))
    return _Plan(kind, event, columns, consents)


def _consent_column(header: str, path: Path) -> tuple[str, str]:
    """The (purpose, channel) a consent.<purpose>.<channel> header stands for; Invalid naming it."""
    parts = header.strip().casefold()[len(CONSENT_PREFIX) :].split(".")
    purpose, channel = parts[0], parts[1] if len(parts) > 1 else "all"
    try:
        if len(parts) > 2:
            raise InvalidConsent(header, "use consent.<purpose>.<channel>")
        said = statement(purpose, channel, "granted")
    except InvalidConsent as error:
        raise Invalid(f"{path}: column {header!r}: {error.reason}", details={"field": header}) from None
    return said.purpose, said.channel


def _add_consent(message: dict[str, Any], plan: _Plan, cells: list[Cell]) -> None:
    """The row's consent cells as context.consent statements; InvalidConsent naming the column."""
    preferences = []
    for index, header, purpose, channel in plan.consents:
        value = cells[index]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # Excel keeps 1 as 1.0
        word = str(value).strip().casefold()
        if word == "":
            continue  # an empty cell says nothing
        status = CONSENT_VALUES.get(word)
        if status is None:
            choices = "granted, denied, withdrawn, yes, no, true, false, 1 or 0"
            raise InvalidConsent(header, f"{str(value)[:40]!r} is not a consent; use {choices}")
        preferences.append({"purpose": purpose, "channel": channel, "status": status})
    if preferences:
        message.setdefault("context", {})["consent"] = {"preferences": preferences}


def _mapped_columns(header: list[str], mapping: dict[str, str], path: Path) -> dict[int, list[str]]:
    """Column index -> the fields an explicit mapping sends it to (one column may feed several)."""
    by_name = {name.casefold(): index for index, name in enumerate(header) if name}
    taken: dict[int, list[str]] = {}
    for target, column in mapping.items():
        _check_target(target)
        index = by_name.get(column.strip().casefold())
        if index is None:
            names = ", ".join(repr(name) for name in header if name)
            raise Invalid(
                f"{path}: mapping {target}={column!r}: no such column (the file has {names})",
                details={"field": target},
            )
        taken.setdefault(index, []).append(target)
    return taken


def _common_columns(
    header: list[str], kind: str, taken: dict[int, list[str]], mapped: set[str]
) -> list[tuple[int, str]]:
    """Columns whose header is a common spelling of a field no other column feeds yet."""
    wanted = {t: names for t, names in _COMMON_HEADERS.items() if t not in mapped}
    if kind != "track":
        wanted.pop("event", None)
    if kind != "group":
        wanted.pop("groupId", None)
    found: list[tuple[int, str]] = []
    for index, name in enumerate(header):
        if index in taken or not name or name in REJECT_COLUMNS:
            continue
        squashed = _squash(name)
        target = next((t for t, names in wanted.items() if squashed in names), None)
        if target is not None:
            found.append((index, target))
            del wanted[target]
    return found


def load_mapping(path: Path) -> dict[str, str]:
    """A mapping file: a JSON object or a TOML table of FIELD = "Column".

    Nested objects are read as dotted fields, so TOML's `[traits]` table with `tier = "Tier"` means
    traits.tier = "Tier".
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise Invalid(f"{path}: a mapping file is .json or .toml")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise Invalid(f"{path}: not a valid mapping file ({error})") from None
    if not isinstance(data, dict):
        raise Invalid(f'{path}: a mapping file holds an object of FIELD: "Column" pairs')
    mapping: dict[str, str] = {}

    def flatten(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                flatten(f"{prefix}{key}.", value)
            elif isinstance(value, str) and value.strip():
                mapping[f"{prefix}{key}"] = value
            else:
                raise Invalid(f"{path}: {prefix}{key}: the column must be a non-empty string")

    flatten("", data)
    return mapping


def _check_target(target: str) -> None:
    if target in FIELDS or (target.startswith(PREFIXES) and target.split(".", 1)[1].strip(".")):
        return
    raise Invalid(
        f"mapping: {target!r} is not a field; use one of {', '.join(FIELDS)}"
        " or traits.X, properties.X, context.X",
        details={"field": target},
    )


def _path(target: str, kind: str) -> str:
    """A mapping field as the path it takes in a message of `kind`."""
    person = "traits" if kind == "identify" else "context.traits"
    if target == "name" and kind in ("page", "screen"):
        return "name"  # the Segment field: the page's or screen's name
    if target in ("email", "phone", "name", "first_name", "last_name"):
        # Where the pipeline looks for the person: identify's traits describe them, other messages
        # (a group's traits describe the group) carry them in context.traits.
        return f"{person}.{target}"
    return target


_IDENTIFIER_PATHS = {"userId", "anonymousId", "messageId", "groupId", "event", "name"}


def _message(plan: _Plan, cells: list[Cell], zone: ZoneInfo) -> dict[str, Any]:
    message: dict[str, Any] = {"type": plan.kind}
    if plan.event is not None:
        message["event"] = plan.event
    for index, path in plan.columns:
        value = cells[index]
        if isinstance(value, str):
            value = value.strip()
        if value == "":
            continue
        if path in _IDENTIFIER_PATHS or path.endswith((".email", ".phone")):
            value = str(value)  # an ID typed into Excel is a number; the pipeline wants strings
        if path == "timestamp":
            value = _timestamp(str(value), zone)
        _put(message, path, value)
    return message


def _put(message: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = message
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            # "context.x" and "context.x.y" both mapped: keep the first, as a dict cannot be both.
            return
        node = child
    node[leaf] = value


# 2024/3/1 9:05 and 2024.03.01: year first, so unambiguous, and common in exports fromisoformat refuses.
_YEAR_FIRST = re.compile(r"^(\d{4})[/.-](\d{1,2})[/.-](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def _timestamp(text: str, zone: ZoneInfo) -> str:
    """A time from a file, with an offset; one written without an offset is in THREADLINE_TIMEZONE.

    Only unambiguous spellings are read (ISO 8601, 2024/3/1 14:30); anything else goes on as it is for
    the pipeline to reject with its reason, rather than guessing whether 03/04 is March or April.
    """
    try:
        match = _YEAR_FIRST.match(text)
        if match:
            year, month, day, hour, minute, second = (int(part) for part in match.groups(default="0"))
            moment = datetime(year, month, day, hour, minute, second)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"THREADLINE_TIMEZONE: unknown time zone {name!r}") from None


def _fingerprint(source: str, kind: str, message: dict[str, Any]) -> str:
    """Same source, kind and row content -> same messageId, so importing a file again stores nothing twice."""
    payload = orjson.dumps([source, kind, message], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:32]


def _squash(header: str) -> str:
    return re.sub(r"[\s_\-.]+", "", header.casefold())


def snake_case(header: str) -> str:
    """A header as a trait key: "Loyalty Tier" -> loyalty_tier, "storeID" -> store_id, 会员等级 kept."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", header.strip())
    return re.sub(r"\W+", "_", text).strip("_").lower()


class _RejectsFile:
    """`<stem>.rejects.csv`: the rejected rows as they were, plus where and why; only when there are some."""

    def __init__(self, path: Path, table: Table) -> None:
        self.path = path
        self.table = table
        self.written = 0
        self._handle: IO[str] | None = None
        self._writer: Any = None
        # A rejects file left by an earlier run would describe rows that may now be fixed.
        path.unlink(missing_ok=True)

    def write(self, row: Row, field: str | None, reason: str) -> None:
        if self._writer is None:
            # utf-8-sig: Excel shows Chinese headers right only when the file starts with a BOM.
            self._handle = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._handle, delimiter=self.table.delimiter)
            header = [name for name in self.table.header if name not in REJECT_COLUMNS]
            self._writer.writerow([*header, *REJECT_COLUMNS])
        keep = [i for i, name in enumerate(self.table.header) if name not in REJECT_COLUMNS]
        self._writer.writerow([*(row.cells[i] for i in keep), row.line, field or "", reason])
        self.written += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
