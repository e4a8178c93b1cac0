"""Importing marketing spend (the ad platforms' and agencies' exports) from CSV or XLSX: CAC's numerator.

Columns, matched case-insensitively (the other names seen in exports in brackets): channel, day
[date], amount [spend, cost], currency, campaign (optional, "" when absent). A row is stored when every
cell is valid; otherwise it is rejected with its line and the column at fault, and the rest still go in.
Importing a corrected export again replaces the amounts of the same (channel, day, campaign).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from threadline.errors import Invalid
from threadline.storage import Database
from threadline.storage.models import MarketingSpend

COLUMNS = {
    "channel": ("channel",),
    "day": ("day", "date"),
    "amount": ("amount", "spend", "cost"),
    "currency": ("currency",),
    "campaign": ("campaign",),
}
REQUIRED = ("channel", "day", "amount", "currency")
_CHANNEL = re.compile(r"^[a-z_]{1,20}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int  # as a spreadsheet numbers it: the header is line 1
    column: str
    reason: str


@dataclass(slots=True)
class SpendImport:
    stored: int = 0
    replaced: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def _rows(path: Path) -> Iterator[list[Any]]:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            yield from (list(row) for row in book.worksheets[0].iter_rows(values_only=True))
        finally:
            book.close()
        return
    if suffix not in (".csv", ".tsv", ".txt"):
        raise Invalid(f"{path.name}: unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
        delimiter = max((",", ";", "\t"), key=first.count)
        handle.seek(0)
        yield from csv.reader(handle, delimiter=delimiter)


def _positions(header: list[Any]) -> dict[str, int]:
    names = [str(h or "").strip().lower() for h in header]
    found = {}
    for column, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in names:
                found[column] = names.index(alias)
                break
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise Invalid(f"header: missing column {', '.join(missing)}", details={"missing": missing})
    return found


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip())


def _amount(value: Any) -> float:
    amount = (
        float(str(value).strip().replace(",", "")) if not isinstance(value, int | float) else float(value)
    )
    if amount < 0 or amount != amount:  # NaN is not equal to itself
        raise ValueError
    return amount


def _parse(cells: list[Any], at: dict[str, int]) -> tuple[dict[str, Any], Rejected | None]:
    def cell(column: str) -> Any:
        index = at.get(column)
        value = cells[index] if index is not None and index < len(cells) else None
        return "" if value is None else value

    row: dict[str, Any] = {"campaign": str(cell("campaign")).strip()[:100]}
    row["channel"] = str(cell("channel")).strip().lower()
    if not _CHANNEL.match(row["channel"]):
        return row, Rejected(0, "channel", "a channel name such as web, app, email, social")
    try:
        row["day"] = _day(cell("day"))
    except ValueError:
        return row, Rejected(0, "day", "a date such as 2024-03-31")
    try:
        row["amount"] = _amount(cell("amount"))
    except ValueError:
        return row, Rejected(0, "amount", "a number of 0 or more")
    row["currency"] = str(cell("currency")).strip().upper()
    if not _CURRENCY.match(row["currency"]):
        return row, Rejected(0, "currency", "a three-letter ISO 4217 code such as USD or CNY")
    return row, None


def import_spend(db: Database, path: Path, *, now: datetime) -> SpendImport:
    """Store the valid rows of `path` in one transaction; report the rejected ones."""
    if not path.is_file():
        raise Invalid(f"{path}: no such file")
    rows = _rows(path)
    header = next(rows, None)
    if header is None:
        raise Invalid(f"{path.name}: the file is empty")
    at = _positions(header)
    report = SpendImport()
    with db.write() as session:
        for line, cells in enumerate(rows, start=2):
            if not any(str(c or "").strip() for c in cells):
                continue
            row, problem = _parse(cells, at)
            if problem is not None:
                report.rejected.append(Rejected(line, problem.column, problem.reason))
                continue
            existing = session.scalar(
                select(MarketingSpend).where(
                    MarketingSpend.channel == row["channel"],
                    MarketingSpend.day == row["day"],
                    MarketingSpend.campaign == row["campaign"],
                )
            )
            if existing is None:
                session.add(MarketingSpend(**row, created_at=now))
                session.flush()  # a second row of the same key in this file replaces, not collides
                report.stored += 1
            else:
                existing.amount, existing.currency = row["amount"], row["currency"]
                report.replaced += 1
    return report
