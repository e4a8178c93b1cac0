"""Reading WukongCRM (悟空CRM) exports: their Chinese headers, under or without Wukong's title row, and
their values (times in the workspace's zone, owners by a user's name). The import is wukong.py.

The headers matched, and where they come from, are listed in docs/sales.md ("Moving over from
WukongCRM"); keep that list in sync with `COLUMNS`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from threadline.config import Settings
from threadline.errors import Invalid
from threadline.identity import InvalidIdentifier, normalise
from threadline.sales.custom_fields import FieldDefinition
from threadline.sales.schedule import to_utc, zone
from threadline.sales.spreadsheets import MAX_ROWS
from threadline.storage import Database
from threadline.storage.models import User

KINDS = ("customers", "contacts", "leads", "follow-ups")

# Wukong's header -> what it means here, per export. The 11.0 field defaults (crm_field), the 9.0
# exports (CrmCustomerController/CrmContactsController.export) and the 11.0 PHP follow-up export name
# the same thing differently (手机 / 手机号, 邮箱 / 电子邮箱, 职务 / 职位), so every spelling is listed.
_PHONES = {"手机": "mobile", "手机号": "mobile", "手机号码": "mobile", "电话": "telephone"}
_EMAILS = {"邮箱": "email", "电子邮箱": "email", "email": "email"}
COLUMNS: dict[str, dict[str, str]] = {
    "customers": {
        "客户名称": "name",
        "客户级别": "level",
        "客户来源": "source",
        "客户行业": "industry",
        "负责人": "owner",
        "省市区": "region",
        "地区": "region",
        "地区定位": "region",
        "省": "province",
        "市": "city",
        "区": "district",
        "区/县": "district",
        "客户类型": "kind",
        "客户性质": "kind",
        **_PHONES,
        **_EMAILS,
    },
    "contacts": {
        "姓名": "name",
        "联系人姓名": "name",
        "客户名称": "account",
        "职务": "title",
        "职位": "title",
        "是否关键决策人": "is_decision_maker",
        "关键决策人": "is_decision_maker",
        **_PHONES,
        **_EMAILS,
    },
    "leads": {
        "线索名称": "name",
        "客户名称": "company",
        "公司名称": "company",
        "线索来源": "source",
        "负责人": "owner",
        **_PHONES,
        **_EMAILS,
    },
    "follow-ups": {
        "跟进内容": "content",
        "内容": "content",
        "跟进记录": "content",
        "跟进方式": "method",
        "跟进类型": "method",
        "跟进时间": "at",
        "创建时间": "at",
        "下次联系时间": "next",
        "所属客户": "account",
        "客户名称": "account",
        "关联客户": "account",
        "所属线索": "lead",
        "线索名称": "lead",
    },
}
# The column a file of this kind cannot do without: it also finds the header under Wukong's title row.
NAME_COLUMN = {"customers": "name", "contacts": "name", "leads": "name", "follow-ups": "content"}
# Wukong's follow-up categories (its default crm_config record_type, plus common custom ones).
METHODS = {
    "打电话": "phone",
    "电话": "phone",
    "发邮件": "email",
    "邮件": "email",
    "发短信": "sms",
    "短信": "sms",
    "见面拜访": "visit",
    "拜访": "visit",
    "上门拜访": "visit",
    "活动": "meeting",
    "会议": "meeting",
    "微信": "wechat",
}
YES = {"是", "yes", "y", "true", "1"}
NO = {"否", "no", "n", "false", "0", ""}


# -- reading --------------------------------------------------------------------------------------------
def clean_header(name: str) -> str:
    """A header without Wukong's required-field marks ("*客户名称", "客户名称(*)")."""
    text = name.strip().replace("（", "(").replace("）", ")").lstrip("*").strip()
    return text[:-3].strip() if text.endswith("(*)") else text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into a number cell
    return str(value).strip()


def read_lines(filename: str, data: bytes) -> list[tuple[int, list[str]]]:
    """(line number, cells) of each non-blank line of a Wukong export, numbered as the spreadsheet
    numbers them (so a rejected line can be found in the original file)."""
    name = filename.lower()
    if name.endswith(".xls"):
        # Wukong 9 writes the old binary format; nothing here reads it, and Excel or WPS convert it.
        raise Invalid(
            "file: an .xls workbook; open it in Excel or WPS and save it as .xlsx", details={"field": "file"}
        )
    if name.endswith((".xlsx", ".xlsm")):
        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # openpyxl raises many kinds for a file that is not a workbook
            raise Invalid("file: not a readable XLSX workbook", details={"field": "file"}) from None
        rows = book.worksheets[0].iter_rows(values_only=True)
        lines = [(n, [_cell(c) for c in row]) for n, row in enumerate(rows, start=1)]
    elif name.endswith((".csv", ".txt")):
        # Wukong 11's CSV export carries a UTF-8 BOM; one saved again by Excel in China is often GBK.
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError:
                raise Invalid("file: neither UTF-8 nor GBK text", details={"field": "file"}) from None
        lines = [
            (n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        ]
    else:
        raise Invalid("file: use the .xlsx or .csv file WukongCRM exported", details={"field": "file"})
    lines = [(n, cells) for n, cells in lines if any(cells)]
    if len(lines) - 1 > MAX_ROWS:
        raise Invalid(f"file: more than {MAX_ROWS} rows; split it", details={"field": "file"})
    return lines


def columns_of(
    kind: str, header: list[str], custom: list[FieldDefinition]
) -> tuple[dict[str, int], dict[int, str]]:
    """(meaning -> column index, column index -> custom field key) for a header row."""
    known = COLUMNS[kind]
    by_label = {f.label.strip().lower(): f.key for f in custom} | {f.key.lower(): f.key for f in custom}
    meaning: dict[str, int] = {}
    extra: dict[int, str] = {}
    for i, raw in enumerate(header):
        name = clean_header(raw)
        # Wukong 11 PHP's follow-up template calls the next contact time "跟进时间-例:2020-2-1".
        target = "next" if name.startswith("跟进时间-") else known.get(name) or known.get(name.lower())
        if target and target not in meaning:
            meaning[target] = i
        if name.lower() in by_label:  # also when it has a meaning: a company's 电话 has no other home
            extra[i] = by_label[name.lower()]
    return meaning, extra


def find_header(kind: str, lines: list[tuple[int, list[str]]], custom: list[FieldDefinition]) -> int:
    """Index in `lines` of the header: Wukong's exports and templates put a title row ("客户信息") above
    it, some files not."""
    for index, (_, cells) in enumerate(lines[:3]):
        if NAME_COLUMN[kind] in columns_of(kind, cells, custom)[0]:
            return index
    wanted = next(h for h, m in COLUMNS[kind].items() if m == NAME_COLUMN[kind])
    raise Invalid(
        f"column {wanted}: is missing; is this a WukongCRM {kind} export?", details={"field": wanted}
    )


# -- values ---------------------------------------------------------------------------------------------
class RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column, self.reason = column, reason


def parse_time(text: str, column: str, settings: Settings) -> datetime | None:
    """A Wukong time ("2020-02-01 10:00:00", "2020-2-1", "2020/2/1 10:00", "2020年2月1日") in the
    workspace's time zone, as naive UTC like every stored time."""
    value = text.strip()
    if not value:
        return None
    for mark, by in (("年", "-"), ("月", "-"), ("日", " "), ("/", "-"), ("T", " ")):
        value = value.replace(mark, by)
    day, _, clock = value.strip().partition(" ")
    try:
        year, month, date_ = (int(p) for p in day.split("-"))
        parts = [int(p) for p in clock.split(".")[0].split(":")] if clock.strip() else []
        if len(parts) not in (0, 2, 3):
            raise ValueError(clock)
        hour, minute, second = [*parts, 0, 0, 0][:3]
        local = datetime(year, month, date_, hour, minute, second)
    except ValueError:
        raise RowError(column, f"{text!r} is not a date and time (YYYY-MM-DD HH:MM)") from None
    return to_utc(local, zone(settings.timezone))


def identifier(kind: str, text: str, column: str, settings: Settings) -> str:
    try:
        return normalise(kind, text, region=settings.default_region, field=column).value
    except InvalidIdentifier as error:
        raise RowError(column, error.reason) from None


@dataclass(frozen=True, slots=True)
class Owners:
    """Wukong owners (负责人, a user's real name) -> Threadline users, by name or email, with an explicit
    map (`--owner-map 张三=zhang@example.com`) for names that differ."""

    ids: dict[str, int | None]  # lower-cased name or email -> user; None when two users share it

    @classmethod
    def load(cls, db: Database, owner_map: dict[str, str] | None = None) -> Owners:
        ids: dict[str, int | None] = {}
        with db.read() as session:
            users = session.execute(select(User.id, User.name, User.email).where(User.is_active)).all()
        for user_id, name, email in users:
            ids[email.lower()] = user_id
            if name:
                key = name.strip().lower()
                ids[key] = None if key in ids and ids[key] != user_id else user_id
        for wukong_name, user in (owner_map or {}).items():
            target = ids.get(user.strip().lower())
            if target is None and not user.strip().isdigit():
                raise Invalid(
                    f"owner map: no user {user!r} for {wukong_name!r}", details={"field": "owner_map"}
                )
            ids[wukong_name.strip().lower()] = target if target is not None else int(user)
        return cls(ids)

    def find(self, name: str) -> int | None:
        return self.ids.get(name.strip().lower())


def parse_owner_map(items: list[str] | str) -> dict[str, str]:
    """`NAME=EMAIL` items (a list, or lines of text from a form) as a map."""
    lines = items.splitlines() if isinstance(items, str) else items
    found: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        name, sep, user = line.partition("=")
        if not sep or not name.strip() or not user.strip():
            raise Invalid(
                f"owner map {line!r}: expected NAME=EMAIL, e.g. 张三=zhang@example.com",
                details={"field": "owner_map"},
            )
        found[name.strip()] = user.strip()
    return found
