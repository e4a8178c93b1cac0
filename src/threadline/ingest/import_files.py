"""Reading the spreadsheets offline channels export: CSV (UTF-8, comma/semicolon/tab) and XLSX.

A file is read twice: once by `open_table` to check it and count its rows, so a file that is not UTF-8
fails before anything is stored and a progress bar knows its total, then row by row by `rows`.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from threadline.errors import Invalid

Cell = str | int | float | bool
CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
XLSX_EXTENSIONS = (".xlsx", ".xlsm")
_DELIMITERS = (",", ";", "\t")
_LOOKS_LIKE_DATA = re.compile(r"^\+?[\d\s().-]{7,}$|@")
csv.field_size_limit(10 * 1024 * 1024)  # a long free-text note must not stop an import


@dataclass(frozen=True, slots=True)
class Row:
    line: int  # 1-based, counting the header, as a spreadsheet shows it
    cells: list[Cell]  # one per header column, "" where the file had nothing
    extra: list[Cell]  # non-empty cells beyond the header's last column


@dataclass(frozen=True, slots=True)
class Table:
    path: Path
    header: list[str]
    row_count: int
    delimiter: str  # CSV's own, so a rejects file looks like its input; "," for XLSX

    def rows(self) -> Iterator[Row]:
        if self.path.suffix.lower() in XLSX_EXTENSIONS:
            return _xlsx_rows(self.path, len(self.header))
        return _csv_rows(self.path, self.delimiter, len(self.header))


def open_table(path: Path) -> Table:
    """Check that `path` is a readable CSV or XLSX file with a header row; count its data rows."""
    suffix = path.suffix.lower()
    if suffix not in CSV_EXTENSIONS + XLSX_EXTENSIONS:
        raise Invalid(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx")
    if not path.is_file():
        raise Invalid(f"{path}: no such file")
    if suffix in XLSX_EXTENSIONS:
        header, count = _xlsx_header_and_count(path)
        return Table(path, header, count, ",")
    delimiter = _sniff_delimiter(path)
    header, count = _csv_header_and_count(path, delimiter)
    return Table(path, header, count, delimiter)


def _check_header(path: Path, cells: list[Cell] | None) -> list[str]:
    names = [_text(cell) for cell in cells or []]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise Invalid(f"{path}: no header row (the first line is empty)")
    if any(_LOOKS_LIKE_DATA.search(name) for name in names):
        raise Invalid(f"{path}: no header row (the first line looks like data: {', '.join(names[:3])})")
    seen: set[str] = set()
    for name in names:
        if name and name.casefold() in seen:
            raise Invalid(f"{path}: column {name!r} appears twice in the header")
        seen.add(name.casefold())
    return names


def _text(cell: Any) -> str:
    return "" if cell is None else str(cell).strip()


# CSV


def _open_csv(path: Path) -> IO[str]:
    # utf-8-sig drops the BOM Excel writes with "CSV UTF-8" and reads files without one unchanged.
    return path.open(encoding="utf-8-sig", newline="")


def _not_utf8(path: Path, line: int) -> Invalid:
    return Invalid(
        f"{path}: not UTF-8 text (undecodable bytes near line {line}); "
        "save it as 'CSV UTF-8' (Excel) or convert it, e.g. `iconv -f GB18030 -t UTF-8`"
    )


def _sniff_delimiter(path: Path) -> str:
    """The candidate the header line uses most: headers rarely contain delimiters, data often does."""
    try:
        with _open_csv(path) as handle:
            first = handle.readline()
    except UnicodeDecodeError:
        raise _not_utf8(path, 1) from None
    if not first.strip():
        raise Invalid(
            f"{path}: the file is empty" if not first else f"{path}: no header row (the first line is empty)"
        )
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_header_and_count(path: Path, delimiter: str) -> tuple[list[str], int]:
    with _open_csv(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = _check_header(path, list(next(reader, [])))
            count = sum(1 for cells in reader if any(cell.strip() for cell in cells))
        except UnicodeDecodeError:
            raise _not_utf8(path, reader.line_num + 1) from None
        except csv.Error as error:
            raise Invalid(f"{path}: line {reader.line_num}: {error}") from None
    return header, count


def _csv_rows(path: Path, delimiter: str, width: int) -> Iterator[Row]:
    with _open_csv(path) as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader)
        line = reader.line_num + 1
        for cells in reader:
            # A quoted cell may span lines: a row is where it starts, as an editor shows it.
            start, line = line, reader.line_num + 1
            if any(cell.strip() for cell in cells):
                yield _row(start, list(cells), width)


def _row(line: int, cells: list[Cell], width: int) -> Row:
    padded = cells[:width] + [""] * (width - len(cells))
    return Row(line, padded, [c for c in cells[width:] if _text(c)])


# XLSX


def _workbook_rows(path: Path) -> Iterator[tuple[Any, ...]]:
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError) as error:
        raise Invalid(f"{path}: not a readable XLSX workbook ({error})") from None
    try:
        if not book.worksheets:
            return
        yield from book.worksheets[0].iter_rows(values_only=True)
    finally:
        book.close()


def _xlsx_header_and_count(path: Path) -> tuple[list[str], int]:
    rows = _workbook_rows(path)
    first = next(rows, None)
    if first is None:
        raise Invalid(f"{path}: the file is empty (its first sheet has no rows)")
    header = _check_header(path, [_xlsx_cell(value) for value in first])
    return header, sum(1 for values in rows if any(_text(v) for v in values))


def _xlsx_rows(path: Path, width: int) -> Iterator[Row]:
    rows = _workbook_rows(path)
    next(rows)
    for number, values in enumerate(rows, start=2):
        cells = [_xlsx_cell(value) for value in values]
        if any(_text(cell) for cell in cells):
            yield _row(number, cells, width)


def _xlsx_cell(value: Any) -> Cell:
    """Spreadsheet values as an import wants them: whole numbers without ".0", dates as ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # Phone numbers and IDs typed into Excel arrive as 13800138000.0.
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds" if not value.microsecond else "milliseconds")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)
