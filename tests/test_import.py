"""CSV/XLSX import for offline channels, through the real write path, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import typer
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.factories import lookup_profile, make_source, profile_view, send, timeline_page
from threadline.cli.main import app
from threadline.config import Settings, get_settings
from threadline.errors import Invalid
from threadline.ingest import list_quarantine
from threadline.ingest.importer import import_file
from threadline.storage import Database
from threadline.storage.models import Event, Profile

STORE_CUSTOMERS = """\
Customer ID,Name,Email,Mobile,Loyalty Tier,Store
C-1001,Ann Lee,Ann.Lee@Example.com,(415) 555-0100,gold,Union Square
C-1002,Bob Stone,bob.stone(at)example.com,(415) 555-0101,silver,Union Square
C-1003,Cara Diaz,cara@example.com,,bronze,Mission
,Walk-in Guest,,,,Mission
C-1004,Dev Patel,,+1 415 555 0104,gold,Union Square
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding, newline="")
    return path


def count(db: Database, model: type[Event] | type[Profile]) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        dialect = csv.Sniffer().sniff(handle.readline(), delimiters=",;\t")
        handle.seek(0)
        return list(csv.DictReader(handle, dialect=dialect))


def test_store_customers_land_on_profiles_and_bad_rows_go_to_rejects(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    store = make_source(db, "union-square-pos", "store")
    file = write(tmp_path / "customers.csv", STORE_CUSTOMERS)

    report = import_file(db, settings, file, source=store)

    assert (report.rows, report.accepted, report.duplicates, report.rejected) == (5, 3, 0, 2)
    ann = profile_view(db, lookup_profile(db, "email", "ann.lee@example.com", region="US"))
    assert ann["traits"]["name"] == "Ann Lee"
    assert ann["traits"]["loyalty_tier"] == "gold"
    assert ann["channels"] == ["store"]
    assert {(i["kind"], i["value"]) for i in ann["identities"]} == {
        ("user_id", "C-1001"),
        ("email", "ann.lee@example.com"),
        ("phone", "+14155550100"),
    }
    assert lookup_profile(db, "user_id", "C-1004", region="US") == lookup_profile(
        db, "phone", "4155550104", region="US"
    )
    # The two bad rows keep their original cells and say where (line in the file) and why.
    assert report.rejects_path == tmp_path / "customers.rejects.csv"
    rejects = read_rejects(report.rejects_path)
    assert [(r["_line"], r["_field"], r["Customer ID"], r["Name"]) for r in rejects] == [
        ("3", "traits.email", "C-1002", "Bob Stone"),
        ("5", "userId", "", "Walk-in Guest"),
    ]
    assert "not a valid email address" in rejects[0]["_reason"]
    assert "needs userId or anonymousId" in rejects[1]["_reason"]
    quarantined = list_quarantine(db, source="union-square-pos")
    assert sorted(q.field or "" for q in quarantined) == ["traits.email", "userId"]
    assert any("bob.stone(at)example.com" in q.payload for q in quarantined)


def test_importing_the_same_file_again_stores_nothing_twice(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    store = make_source(db, "store-pos", "store")
    file = write(tmp_path / "customers.csv", STORE_CUSTOMERS)
    import_file(db, settings, file, source=store, batch_size=2)
    events, profiles = count(db, Event), count(db, Profile)

    again = import_file(db, settings, file, source=store, batch_size=2)

    assert (again.rows, again.accepted, again.duplicates, again.rejected) == (5, 0, 3, 2)
    assert (count(db, Event), count(db, Profile)) == (events, profiles)


def test_identical_rows_within_a_file_are_each_kept(db: Database, settings: Settings, tmp_path: Path) -> None:
    # Two customers buying the same thing at the same minute is two purchases, not a duplicate.
    store = make_source(db, "store-pos", "store")
    receipts = (
        "email,date,sku\nann@example.com,2024-05-01 10:00,TEA-1\nann@example.com,2024-05-01 10:00,TEA-1\n"
    )
    file = write(tmp_path / "receipts.csv", receipts)

    first = import_file(db, settings, file, source=store, kind="track", event="Order Completed")
    second = import_file(db, settings, file, source=store, kind="track", event="Order Completed")

    assert (first.accepted, second.accepted, second.duplicates) == (2, 0, 2)


def test_fixing_the_rejects_file_and_importing_it_completes_the_import(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    store = make_source(db, "store-pos", "store")
    report = import_file(db, settings, write(tmp_path / "customers.csv", STORE_CUSTOMERS), source=store)
    assert report.rejects_path is not None
    fixed = report.rejects_path.read_text(encoding="utf-8-sig").replace(
        "bob.stone(at)example.com", "bob@example.com"
    )
    fixed_file = write(
        tmp_path / "fixed.csv", fixed.replace("Walk-in Guest,", "Walk-in Guest,walkin@example.com")
    )

    again = import_file(db, settings, fixed_file, source=store)

    assert (again.accepted, again.rejected, again.rejects_path) == (2, 0, None)
    bob = profile_view(db, lookup_profile(db, "email", "bob@example.com", region="US"))
    assert "_reason" not in bob["traits"] and "reason" not in bob["traits"]


def test_a_clean_run_removes_the_rejects_file_of_an_earlier_run(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    store = make_source(db, "store-pos", "store")
    file = write(tmp_path / "customers.csv", STORE_CUSTOMERS)
    assert import_file(db, settings, file, source=store).rejects_path is not None
    write(
        file,
        "\n".join(
            line for line in STORE_CUSTOMERS.splitlines() if "C-1002" not in line and "Walk-in" not in line
        ),
    )

    report = import_file(db, settings, file, source=store)

    assert report.rejected == 0 and report.rejects_path is None
    assert not (tmp_path / "customers.rejects.csv").exists()


def test_xlsx_import_converts_numbers_and_dates(db: Database, settings: Settings, tmp_path: Path) -> None:
    store = make_source(db, "store-pos", "store")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Customer ID", "Full Name", "Phone", "Created At", "Visits"])
    sheet.append([1001, "Ann Lee", 4155550100, datetime(2024, 3, 1, 14, 30), 12])
    sheet.append([None, None, None, None, None])  # blank rows in a sheet are skipped, not rejected
    sheet.append([1002, "Bob Stone", 4155550101, datetime(2024, 3, 2, 9, 0), 3.5])
    book.save(tmp_path / "members.xlsx")

    report = import_file(db, settings, tmp_path / "members.xlsx", source=store)

    assert (report.rows, report.accepted, report.rejected) == (2, 2, 0)
    profile_id = lookup_profile(db, "phone", "+1 415 555 0100", region="US")
    assert profile_id == lookup_profile(db, "user_id", "1001", region="US")
    ann = profile_view(db, profile_id)
    assert ann["traits"]["name"] == "Ann Lee"
    assert ann["traits"]["visits"] == 12
    assert ann["summary"]["first_seen"] == "2024-03-01T14:30:00.000Z"


def test_track_import_with_event_puts_columns_in_properties(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    store = make_source(db, "store-pos", "store")
    purchases = (
        "Mobile\tOrder Date\tTotal\tStore\n"
        "4155550100\t2024-05-01T12:00:00+08:00\t99.50\tMission\n"
        "4155550101\t05/01/2024\t12.00\tMission\n"  # May or January? Refused rather than guessed.
    )
    file = write(tmp_path / "purchases.tsv", purchases)

    report = import_file(db, settings, file, source=store, kind="track", event="Order Completed")

    assert (report.accepted, report.rejected) == (1, 1)
    assert report.rejects_path is not None
    [reject] = read_rejects(report.rejects_path)
    assert (reject["_line"], reject["_field"], reject["Order Date"]) == ("3", "timestamp", "05/01/2024")
    profile_id = lookup_profile(db, "phone", "+14155550100", region="US")
    [event] = timeline_page(db, profile_id)["events"]
    assert (event["type"], event["event"], event["channel"]) == ("track", "Order Completed", "store")
    assert event["timestamp"] == "2024-05-01T04:00:00.000Z"
    assert event["properties"] == {"total": "99.50", "store": "Mission"}
    assert event["context"]["traits"] == {"phone": "4155550100"}


def test_track_import_needs_an_event_name(db: Database, settings: Settings, tmp_path: Path) -> None:
    store = make_source(db, "store-pos", "store")
    file = write(tmp_path / "purchases.csv", "email,total\nann@example.com,10\n")

    with pytest.raises(Invalid, match="needs --event"):
        import_file(db, settings, file, source=store, kind="track")
    report = import_file(db, settings, file, source=store, kind="track", mapping={"event": "total"})
    assert report.accepted == 1


def test_chinese_headers_map_without_a_mapping(db: Database, settings: Settings, tmp_path: Path) -> None:
    china = settings.model_copy(update={"default_region": "CN", "timezone": "Asia/Shanghai"})
    store = make_source(db, "shanghai-store", "store")
    members = "姓名;手机;会员等级;日期\n张伟;138 0013 8000;金卡;2024/03/01 10:00\n"
    file = write(tmp_path / "会员.csv", members)

    report = import_file(db, china, file, source=store)

    assert report.accepted == 1
    zhang = profile_view(db, lookup_profile(db, "phone", "+8613800138000", region="CN"))
    assert zhang["traits"]["name"] == "张伟"
    assert zhang["traits"]["会员等级"] == "金卡"
    assert zhang["summary"]["first_seen"] == "2024-03-01T02:00:00.000Z"  # 10:00 in Shanghai


def test_explicit_mapping_and_missing_columns(db: Database, settings: Settings, tmp_path: Path) -> None:
    store = make_source(db, "store-pos", "store")
    file = write(tmp_path / "list.csv", "Contact,Member No,Note\nann@example.com,M-7,likes tea\n")

    with pytest.raises(Invalid, match=r"'Mail'.*no such column"):
        import_file(db, settings, file, source=store, mapping={"email": "Mail"})
    with pytest.raises(Invalid, match="not a field"):
        import_file(db, settings, file, source=store, mapping={"mail": "Contact"})

    mapping = {"email": "contact", "traits.loyalty_id": "Member No", "traits.notes": "Note"}
    report = import_file(db, settings, file, source=store, mapping=mapping)

    assert report.accepted == 1
    profile_id = lookup_profile(db, "loyalty_id", "M-7", region="US")
    assert profile_view(db, profile_id)["traits"]["notes"] == "likes tea"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("gbk.csv", "姓名,手机\n张伟,13800138000\n".encode("gbk"), "not UTF-8"),
        ("empty.csv", b"", "empty"),
        ("headless.csv", b"ann@example.com,4155550100\n", "no header row"),
        ("broken.xlsx", b"not a zip file", "not a readable XLSX"),
        ("customers.pdf", b"%PDF-1.4", "unsupported file type"),
    ],
)
def test_unreadable_files_give_a_clear_error_and_store_nothing(
    db: Database, settings: Settings, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    store = make_source(db, "store-pos", "store")
    (tmp_path / name).write_bytes(content)

    with pytest.raises(Invalid, match=message) as error:
        import_file(db, settings, tmp_path / name, source=store)

    assert name in error.value.message
    assert count(db, Event) == 0


def test_store_rows_join_the_web_profile_that_shares_their_phone(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    web = make_source(db, "website", "web")
    store = make_source(db, "store-pos", "store")
    send(
        db,
        settings,
        web,
        {"type": "identify", "anonymousId": "browser-1", "traits": {"phone": "+1 415 555 0100"}},
    )
    web_profile = lookup_profile(db, "anonymous_id", "browser-1", region="US")

    import_file(db, settings, write(tmp_path / "customers.csv", STORE_CUSTOMERS), source=store)

    assert lookup_profile(db, "user_id", "C-1001", region="US") == web_profile
    view = profile_view(db, web_profile)
    assert view["channels"] == ["store", "web"]
    assert view["traits"]["email"] == "ann.lee@example.com"  # shown as it matches


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield app
    get_settings.cache_clear()


def test_cli_imports_and_reports_rejects(db: Database, cli: typer.Typer, tmp_path: Path) -> None:
    make_source(db, "store-pos", "store")
    file = write(tmp_path / "customers.csv", STORE_CUSTOMERS)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('userId = "Customer ID"\n[traits]\ntier = "Loyalty Tier"\n', encoding="utf-8")

    result = CliRunner().invoke(
        cli, ["import", str(file), "--source", "store-pos", "--mapping", str(mapping)]
    )

    assert result.exit_code == 0, result.output
    assert "5 rows, 3 accepted, 0 duplicates (already imported), 2 rejected" in result.stdout
    assert str(tmp_path / "customers.rejects.csv") in result.stdout
    ann = profile_view(db, lookup_profile(db, "user_id", "C-1001", region="US"))
    assert ann["traits"]["tier"] == "gold"

    again = CliRunner().invoke(
        cli, ["import", str(file), "--source", "store-pos", "--map", "tier=Loyalty Tier"]
    )
    assert again.exit_code == 1
    assert again.stderr.strip().splitlines() == [again.stderr.strip()]
    assert "error: mapping: 'tier' is not a field" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "store-pos", "--map", "email"], "expected FIELD=COLUMN"),
        (["--source", "store-pos", "--map", "email=Mail"], "no such column"),
        (["--source", "nowhere"], "source 'nowhere' does not exist"),
        (["--source", "store-pos", "--kind", "alias"], "kind: must be one of"),
        (["--source", "store-pos", "--kind", "track"], "needs --event"),
    ],
)
def test_cli_refuses_bad_options_with_one_line(
    db: Database, cli: typer.Typer, tmp_path: Path, args: list[str], message: str
) -> None:
    make_source(db, "store-pos", "store")
    file = write(tmp_path / "customers.csv", STORE_CUSTOMERS)

    result = CliRunner().invoke(cli, ["import", str(file), *args])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert count(db, Event) == 0
