"""A chart's data as one small table: what a page draws, the API returns and an export writes.

Keeping one shape for every chart means one CSV/XLSX writer serves them all, and the exported file holds
exactly the numbers the chart shows.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str  # a file name and a JSON key: "revenue_by_month"
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    # Why a chart is empty or what its numbers leave out ("no service data yet").
    note: str | None = None
    # When part of the figures come from a daily snapshot (first_seen.py): that snapshot's moment.
    as_of: datetime | None = None

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        at = self.columns.index(name)
        return [row[at] for row in self.rows]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "columns": list(self.columns),
            "rows": self.records(),
            "note": self.note,
            "as_of": self.as_of.isoformat() if self.as_of else None,
        }


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def dataset_csv(dataset: Dataset) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(dataset.columns)
    writer.writerows([_cell(v) for v in row] for row in dataset.rows)
    return out.getvalue()


def dataset_xlsx(dataset: Dataset) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(dataset.name[:31])  # Excel's limit on a sheet's name
    sheet.append(list(dataset.columns))
    for row in dataset.rows:
        sheet.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
