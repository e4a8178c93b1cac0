"""Moving over from WukongCRM: its exports of customers, contacts, leads and follow-ups (hand-made here in
its shapes: the 9.0 Excel export with its title row, the 11.0 field names, the 11.0 PHP follow-up CSV)
imported through Threadline's own import and follow-ups. Real SQLite and PostgreSQL, real HTTP."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import select
from typer.testing import CliRunner

from tests.factories import make_token, timeline_page
from threadline.accounts import Viewer, create_team, create_user, set_user_team, viewer_for
from threadline.cli.main import app as cli
from threadline.config import Settings, get_settings
from threadline.errors import Forbidden
from threadline.sales import import_wukong, list_follow_ups, save_custom_field, schedule_items
from threadline.storage import Database
from threadline.storage.models import AuditEntry, Contact, FollowUp, Lead, SalesAccount, User

NOW = datetime(2024, 3, 8, 8, 0)  # UTC; 16:00 in Shanghai
YUNFAN = "杭州云帆科技有限公司"

CUSTOMERS_HEADER = [
    "客户名称(*)", "电话", "手机", "网址", "下次联系时间", "成交状态", "创建人", "负责人", "省市区",
    "详细地址", "创建时间", "更新时间", "备注", "客户级别", "客户来源", "客户行业", "客户类型",
]  # fmt: skip
CUSTOMERS = [
    [YUNFAN, "0571-88886666", "", "www.yunfan.example", "", "未成交", "管理员", "张三",
     "浙江省 杭州市 西湖区", "文三路 90 号", "2023-11-02 09:15:00", "", "老客户", "A（重点客户）", "转介绍",
     "IT", "企业客户"],
    ["刘芳", "", "13800138000", "", "", "已成交", "管理员", "赵六", "上海市", "", "2023-12-01", "", "",
     "B（普通客户）", "线上注册", "", "个人客户"],
    ["", "021-55556666", "", "", "", "未成交", "管理员", "张三", "", "", "", "", "", "", "", "", ""],
    ["陈静", "", "电话待补", "", "", "未成交", "管理员", "张三", "", "", "", "", "", "", "", "", "个人客户"],
]  # fmt: skip
CONTACTS_HEADER = [
    "姓名", "客户名称", "手机号", "电话", "电子邮箱", "职务", "是否关键决策人", "性别", "地址",
    "下次联系时间", "备注", "负责人",
]  # fmt: skip
CONTACTS = [
    ["王磊", YUNFAN, "13900139000", "", "wang.lei@yunfan.example", "采购经理", "是", "男", "", "", "",
     "张三"],
    ["李娜", YUNFAN, "", "", "", "财务", "否", "女", "", "", "", "张三"],
    ["周杰", "不存在的公司", "13700137000", "", "", "", "否", "", "", "", "", ""],
    ["吴刚", YUNFAN, "abc", "", "", "", "否", "", "", "", "", ""],
]  # fmt: skip
FOLLOW_UPS_HEADER = [
    "所属客户",
    "跟进内容",
    "创建人",
    "跟进时间",
    "跟进方式",
    "下次联系时间",
    "相关联系人",
    "相关商机",
]
FOLLOW_UPS = [
    [
        YUNFAN,
        "电话沟通了报价，客户下周回复",
        "张三",
        "2024-03-05 14:30:00",
        "打电话",
        "2024-03-12 09:00:00",
        "",
        "",
    ],
    ["刘芳", "微信发了产品资料", "王五", "2024/3/6 10:00", "微信", "", "", ""],
    [YUNFAN, "上门拜访", "张三", "下周二", "见面拜访", "", "", ""],
    ["", "没有客户的跟进", "张三", "2024-03-01 10:00:00", "活动", "", "", ""],
    [YUNFAN, "回访", "张三", "2024-03-07 10:00:00", "发邮件", "2024-03-01 10:00:00", "", ""],
]


def workbook(header: list[str], rows: list[list[str]], *, title: str | None = None) -> bytes:
    """A Wukong-shaped .xlsx: its 9.0 export merges a title row ("客户信息") above the header."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    if title:
        sheet.append([title])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_file(header: list[str], rows: list[list[str]]) -> bytes:
    """Wukong 11 PHP's CSV export: UTF-8 with a BOM."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode()


class Users:
    """An admin, a manager with agent 张三 in team East, and agent 王五 outside it."""

    def __init__(self, db: Database) -> None:
        self.tokens = {
            "admin": make_token(db, "admin@example.com", "admin"),
            "manager": make_token(db, "manager@example.com", "manager"),
            "agent": make_token(db, "agent@example.com", "agent"),
        }
        create_user(db, "zhang@example.com", "agent", "correct horse battery", now=NOW, name="张三")
        create_user(db, "wang@example.com", "agent", "correct horse battery", now=NOW, name="王五")
        create_team(db, "East", manager_email="manager@example.com", now=NOW)
        set_user_team(db, "zhang@example.com", "East")
        with db.read() as session:
            self.ids = {u.email.split("@")[0]: u.id for u in session.scalars(select(User))}
            self.roles = {u.email.split("@")[0]: u.role for u in session.scalars(select(User))}
        self.db = db

    def viewer(self, name: str) -> Viewer:
        return viewer_for(self.db, self.ids[name], self.roles[name])

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def users(db: Database) -> Users:
    return Users(db)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A team in China: times in Shanghai's zone, phones without +86 read as Chinese."""
    return settings.model_copy(update={"timezone": "Asia/Shanghai", "default_region": "CN"})


def run(db: Database, settings: Settings, viewer: Viewer, kind: str, name: str, data: bytes) -> Any:
    return import_wukong(db, viewer, kind, name, data, settings=settings, now=NOW)


def test_customers_contacts_and_follow_ups_move_over_once(
    db: Database, settings: Settings, users: Users
) -> None:
    admin = users.viewer("admin")
    # An admin defined 网址 before the move: a Wukong column with a custom field's label lands in it.
    save_custom_field(db, admin, {"entity": "account", "key": "website", "label": "网址", "type": "text"})
    customers = workbook(CUSTOMERS_HEADER, CUSTOMERS, title="客户信息")
    outcome = run(db, settings, admin, "customers", "customer.xlsx", customers)

    assert (outcome.rows, outcome.created, outcome.skipped) == (4, 2, 0)
    # Lines as the spreadsheet numbers them: the title is line 1, the header line 2.
    assert [(r.row, r.column) for r in outcome.rejects] == [(5, "客户名称(*)"), (6, "手机")]
    assert "is required" in outcome.rejects[0].reason and "phone" in outcome.rejects[1].reason
    assert [(w.row, w.column) for w in outcome.warnings] == [(4, "负责人")]
    assert "赵六" in outcome.warnings[0].message
    assert "创建时间" in outcome.ignored and "电话 (个人 only)" in outcome.ignored
    with db.read() as session:
        accounts = {a.name: a for a in session.scalars(select(SalesAccount))}
    yunfan, liu = accounts[YUNFAN], accounts["刘芳"]
    assert (yunfan.kind, yunfan.owner_id, yunfan.level, yunfan.source, yunfan.industry, yunfan.region) == (
        "company", users.ids["zhang"], "A（重点客户）", "转介绍", "IT", "浙江省 杭州市 西湖区"
    )  # fmt: skip
    assert list(yunfan.custom.values()) == ["www.yunfan.example"] and yunfan.profile_id is None
    # A person customer is the person: linked to their unified profile; an unknown owner -> the importer's.
    assert (liu.kind, liu.owner_id) == ("person", users.ids["admin"]) and liu.profile_id
    # The rejects file keeps the whole row, its line, the column and the reason, ready to fix.
    rejects = list(csv.reader(io.StringIO(outcome.rejects_file("csv").decode("utf-8-sig"))))
    assert rejects[0][3:] == CUSTOMERS_HEADER and rejects[2][:2] == ["6", "手机"] and rejects[2][3] == "陈静"

    contacts = workbook(CONTACTS_HEADER, CONTACTS)  # 11.0 has no title row; 手机号 / 电子邮箱 are 9.0's names
    outcome = run(db, settings, admin, "contacts", "contacts.xlsx", contacts)
    assert (outcome.created, [(r.row, r.column) for r in outcome.rejects]) == (
        2,
        [(4, "客户名称"), (5, "手机号")],
    )
    assert "不存在的公司" in outcome.rejects[0].reason
    with db.read() as session:
        wang = session.scalars(select(Contact).where(Contact.name == "王磊")).one()
    assert (wang.account_id, wang.phone, wang.email, wang.title, wang.is_decision_maker) == (
        yunfan.id, "+8613900139000", "wang.lei@yunfan.example", "采购经理", True
    )  # fmt: skip
    assert wang.profile_id

    follow_ups = csv_file(FOLLOW_UPS_HEADER, FOLLOW_UPS)
    outcome = run(db, settings, admin, "follow-ups", "activity_record.csv", follow_ups)
    assert outcome.created == 2
    assert [(r.row, r.column) for r in outcome.rejects] == [
        (4, "跟进时间"),
        (5, "所属客户"),
        (6, "下次联系时间"),
    ]
    assert "after the follow-up" in outcome.rejects[2].reason
    logged = list_follow_ups(
        db, admin, subject_type="account", subject_id=str(yunfan.id), include_automatic=False
    )
    assert len(logged) == 1
    call = logged[0]
    # Times are the workspace's (Shanghai, UTC+8), stored in UTC.
    assert (call.method, call.created_at, call.next_contact_at) == (
        "phone", datetime(2024, 3, 5, 6, 30), datetime(2024, 3, 12, 1, 0)
    )  # fmt: skip
    assert call.owner_id == users.ids["zhang"]  # the reminder is the account owner's
    with db.read() as session:
        account = session.get(SalesAccount, yunfan.id)
        assert account is not None
        assert (account.last_follow_up_at, account.next_follow_up_at) == (
            call.created_at,
            call.next_contact_at,
        )
    reminders = schedule_items(db, users.ids["zhang"], NOW, NOW + timedelta(days=7), logged=False)
    assert [(i.kind, i.starts_at, i.subject_id) for i in reminders] == [
        ("reminder", datetime(2024, 3, 12, 1, 0), str(yunfan.id))
    ]
    # The person customer's follow-up lands on their unified timeline, on the channel of its method.
    events = timeline_page(db, liu.profile_id)["events"]
    logged_event = next(e for e in events if e["event"] == "Follow-up Logged")
    assert logged_event["properties"]["method"] == "wechat" and logged_event["channel"] == "social"

    # The same three files again store nothing twice (contacts without a phone or email by name).
    again = [
        run(db, settings, admin, kind, name, data)
        for kind, name, data in (
            ("customers", "customer.xlsx", customers),
            ("contacts", "contacts.xlsx", contacts),
            ("follow-ups", "activity_record.csv", follow_ups),
        )
    ]
    assert [(o.created, o.skipped) for o in again] == [(0, 2), (0, 2), (0, 2)]
    with db.read() as session:
        counts = [len(session.scalars(select(m)).all()) for m in (SalesAccount, Contact, FollowUp)]
    assert counts == [2, 2, 2]


def test_leads_owners_by_email_or_map_and_who_may_import(
    db: Database, settings: Settings, users: Users
) -> None:
    header = [
        "*线索名称",
        "线索来源",
        "手机",
        "电话",
        "邮箱",
        "客户行业",
        "客户级别",
        "地址",
        "下次联系时间",
        "备注",
        "负责人",
    ]
    rows = [
        ["宁波海川贸易", "搜索引擎", "13600136000", "", "", "贸易", "C（非优先客户）", "", "", "",
         "zhang@example.com"],
        ["温州鼎盛", "陌拜", "", "0577-66668888", "", "", "", "", "", "", "小王"],
    ]  # fmt: skip
    data = workbook(header, rows, title="线索信息（*代表必填项；时间格式：2024-03-08 16:00:00）")
    with pytest.raises(Forbidden):  # agents cannot hand records to their Wukong owners
        run(db, settings, users.viewer("agent"), "leads", "leads.xlsx", data)
    outcome = import_wukong(
        db, users.viewer("manager"), "leads", "leads.xlsx", data, owner_map={"小王": "wang@example.com"},
        settings=settings, now=NOW,
    )  # fmt: skip
    assert (outcome.created, outcome.rejects, outcome.warnings) == (2, [], [])
    with db.read() as session:
        leads = {lead.name: lead for lead in session.scalars(select(Lead))}
    assert (
        leads["宁波海川贸易"].owner_id == users.ids["zhang"]
        and leads["宁波海川贸易"].phone == "+8613600136000"
    )
    assert leads["温州鼎盛"].owner_id == users.ids["wang"] and leads["温州鼎盛"].phone == "+8657766668888"


def test_the_api_page_and_cli_import_and_audit_counts_only(
    db: Database,
    settings: Settings,
    users: Users,
    http: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    customers = workbook(CUSTOMERS_HEADER, CUSTOMERS, title="客户信息")
    files = {"file": ("customer.xlsx", customers)}
    refused = http.post(
        "/api/v1/wukong/import", headers=users.bearer("agent"), data={"kind": "customers"}, files=files
    )
    assert refused.status_code == 403
    answer = http.post(
        "/api/v1/wukong/import", headers=users.bearer("manager"), data={"kind": "customers"}, files=files
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["created"], body["rejected"]) == (2, 2)
    assert {"row": 6, "column": "手机", "error": body["rejects"][1]["error"]} == body["rejects"][1]
    rejects = http.post(
        "/api/v1/wukong/import",
        headers=users.bearer("manager"),
        data={"kind": "customers", "respond": "rejects"},
        files=files,
    )
    assert rejects.headers["content-type"].startswith("text/csv") and "陈静" in rejects.text
    with db.read() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "import")))
    assert [e.details["from"] for e in entries] == ["wukong", "wukong"]
    assert not any("刘芳" in str(e.details) or "13800138000" in str(e.details) for e in entries)

    # The page: managers upload and see the rejects; agents are told no; the sales import page links here.
    for email in ("agent@example.com", "manager@example.com"):
        http.cookies.clear()
        form = http.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', form)
        assert token
        http.post(
            "/login", data={"email": email, "password": "correct horse battery", "csrf": token.group(1)}
        )
        page = http.get("/import/wukong")
        if email.startswith("agent"):
            assert page.status_code == 403
            continue
        assert page.status_code == 200 and 'href="/import/wukong"' in http.get("/accounts/import").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf
        follow_ups = csv_file(FOLLOW_UPS_HEADER, FOLLOW_UPS)
        shown = http.post(
            "/import/wukong",
            data={"csrf": csrf.group(1), "kind": "follow-ups", "mode": "skip"},
            files={"file": ("activity_record.csv", follow_ups)},
        )
        assert shown.status_code == 200 and "跟进时间" in shown.text and "所属客户" in shown.text
        assert "Download the rejects file" in shown.text

    # The command line: the system imports; an unknown owner leaves the record unowned (the pool).
    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        leads = tmp_path / "leads.xlsx"
        leads.write_bytes(
            workbook(
                ["线索名称", "手机", "负责人"],
                [["台州远航", "13500135000", "无名氏"], ["", "", ""], ["", "1", ""]],
            )
        )
        result = CliRunner().invoke(cli, ["import-wukong", str(leads), "--kind", "leads"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "1 created" in result.output and "1 rejected" in result.output and "无名氏" in result.output
    assert (tmp_path / "leads.xlsx.rejects.csv").exists()
    with db.read() as session:
        assert session.scalars(select(Lead.owner_id).where(Lead.name == "台州远航")).one() is None
