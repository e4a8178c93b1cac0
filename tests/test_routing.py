"""Routing new conversations to a team and an agent (threadline.service.routing) on both databases:
rules by channel, keyword, tier and customer segment, round-robin and least-loaded, away agents,
validation, the admin page and REST; and the open deals in the inbox's 360 side panel."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.factories import SYSTEM, make_source, make_token, send
from tests.test_service_email import sign_in
from threadline.accounts import create_team, set_user_team, viewer_for
from threadline.config import Settings
from threadline.errors import Invalid
from threadline.sales import convert_lead, create_record
from threadline.segments import create_segment, recompute
from threadline.service import (
    Received,
    away_agents,
    receive_inbound,
    routing_rules,
    set_away,
    set_routing_rules,
)
from threadline.storage import Database
from threadline.storage.models import Conversation, User, WorkspaceSetting

T0 = datetime(2026, 5, 4, 9, 0)
_numbers = count(1)


class Desk:
    """Teams Support (agents a1, a2, a3 and an analyst) and VIP (agent v1), and an admin."""

    def __init__(self, db: Database) -> None:
        self.db = db
        for name, role in (("admin", "admin"), ("a1", "agent"), ("a2", "agent"), ("a3", "agent")):
            make_token(db, f"{name}@example.com", role)
        make_token(db, "v1@example.com", "agent")
        make_token(db, "reader@example.com", "analyst")
        self.teams = {name: create_team(db, name, now=T0).id for name in ("Support", "VIP", "Empty")}
        for email, team in (("a1", "Support"), ("a2", "Support"), ("a3", "Support"), ("reader", "Support")):
            set_user_team(db, f"{email}@example.com", team)
        set_user_team(db, "v1@example.com", "VIP")
        with db.read() as session:
            self.ids = {u.email.split("@")[0]: u.id for u in session.scalars(select(User))}

    def rules(self, *rules: dict[str, Any]) -> None:
        set_routing_rules(self.db, list(rules), user_id=self.ids["admin"], now=T0)


@pytest.fixture
def desk(db: Database) -> Desk:
    return Desk(db)


def write(
    db: Database,
    settings: Settings,
    *,
    channel: str = "chat",
    email: str | None = None,
    subject: str | None = None,
    text: str = "Hello",
) -> Received:
    n = next(_numbers)
    got = receive_inbound(
        db,
        settings,
        channel=channel,
        identifiers={"email": email or f"customer{n}@example.com"},
        thread_key=f"thread-{n}",
        sender=email,
        subject=subject,
        body_text=text,
        message_id_header=f"<m{n}@example.com>" if channel == "email" else None,
        at=T0 + timedelta(minutes=n),
    )
    assert got is not None
    return got


def placed(db: Database, received: Received) -> tuple[int | None, int | None]:
    with db.read() as session:
        row = session.get(Conversation, received.conversation_id)
        assert row is not None
        return row.team_id, row.assignee_id


def test_a_rule_by_channel_and_no_match_leaves_it_unassigned(
    db: Database, settings: Settings, desk: Desk
) -> None:
    desk.rules({"channels": ["sms"], "team_id": desk.teams["Support"]})
    assert placed(db, write(db, settings, channel="chat")) == (None, None)
    team, agent = placed(db, write(db, settings, channel="sms", text="Where is my parcel?"))
    assert team == desk.teams["Support"] and agent == desk.ids["a1"]


def test_a_rule_by_keyword_in_the_subject_or_the_message(
    db: Database, settings: Settings, desk: Desk
) -> None:
    desk.rules(
        {"keywords": ["Refund", "退款"], "team_id": desk.teams["VIP"], "name": "Refunds"},
        {"team_id": desk.teams["Support"]},  # everything else
    )
    assert placed(db, write(db, settings, text="I want a REFUND please"))[0] == desk.teams["VIP"]
    assert placed(db, write(db, settings, text="我要退款"))[0] == desk.teams["VIP"]
    by_subject = write(db, settings, channel="email", subject="refund for order 12", text="see subject")
    assert placed(db, by_subject)[0] == desk.teams["VIP"]
    assert placed(db, write(db, settings, text="Just a question"))[0] == desk.teams["Support"]


def test_vip_customers_go_to_the_vip_team_by_tier(db: Database, settings: Settings, desk: Desk) -> None:
    desk.rules(
        {"tiers": ["vip"], "team_id": desk.teams["VIP"], "name": "VIP desk"},
        {"languages": ["zh"], "team_id": desk.teams["Support"], "strategy": "least_loaded"},
    )
    send(
        db,
        settings,
        make_source(db),
        {"type": "identify", "userId": "u-vip", "traits": {"email": "vip@example.com", "tier": "VIP"}},
    )
    assert placed(db, write(db, settings, email="vip@example.com")) == (desk.teams["VIP"], desk.ids["v1"])
    # Not a VIP: the language rule, from the message's Chinese.
    assert placed(db, write(db, settings, text="我的订单发货了吗？"))[0] == desk.teams["Support"]
    assert placed(db, write(db, settings, text="Is my order shipped?")) == (None, None)


def identify(db: Database, settings: Settings, user_id: str, **traits: Any) -> None:
    shop = make_source(db, f"shop-{next(_numbers)}")
    send(db, settings, shop, {"type": "identify", "userId": user_id, "traits": traits})


def test_a_customer_in_a_segment_goes_to_the_segments_team(
    db: Database, settings: Settings, desk: Desk
) -> None:
    plan = {"type": "trait", "key": "plan", "op": "eq", "value": "enterprise"}
    enterprise = create_segment(db, SYSTEM, name="Enterprise", definition=plan, now=T0)
    desk.rules(
        {"segment_ids": [enterprise.id], "team_id": desk.teams["VIP"], "name": "Enterprise desk"},
        {"team_id": desk.teams["Support"]},  # everyone else
    )
    identify(db, settings, "u-ent", email="ent@example.com", plan="enterprise")
    identify(db, settings, "u-free", email="free@example.com", plan="free")
    assert recompute(db, enterprise.id, now=T0, settings=settings).members == 1

    member = write(db, settings, email="ent@example.com", text="Our SSO is down")
    assert placed(db, member) == (desk.teams["VIP"], desk.ids["v1"])
    # The same words from a customer outside the segment: the next rule.
    assert (
        placed(db, write(db, settings, email="free@example.com", text="Our SSO is down"))[0]
        == (desk.teams["Support"])
    )
    # By email too, and in Chinese: the segment is the customer's, whatever the channel or words.
    by_email = write(db, settings, channel="email", email="ent@example.com", subject="发票", text="请开发票")
    assert placed(db, by_email)[0] == desk.teams["VIP"]

    # Downgraded and recomputed: out of the segment, so a new conversation is the Support team's.
    identify(db, settings, "u-ent", plan="free")
    assert recompute(db, enterprise.id, now=T0, settings=settings).members == 0
    assert placed(db, write(db, settings, email="ent@example.com"))[0] == desk.teams["Support"]


def test_round_robin_cycles_the_agents_in_order_skipping_the_away(
    db: Database, settings: Settings, desk: Desk
) -> None:
    desk.rules({"team_id": desk.teams["Support"], "strategy": "round_robin"})
    agents = [placed(db, write(db, settings))[1] for _ in range(4)]
    a1, a2, a3 = desk.ids["a1"], desk.ids["a2"], desk.ids["a3"]
    assert agents == [a1, a2, a3, a1]  # the analyst in the team gets none
    with db.read() as session:
        state = session.get(WorkspaceSetting, "service.routing.round_robin")
        assert state is not None and state.value == {str(desk.teams["Support"]): a1}

    set_away(db, a2, True, now=T0)
    assert away_agents(db) == {a2}
    assert [placed(db, write(db, settings))[1] for _ in range(3)] == [a3, a1, a3]
    set_away(db, a2, False, now=T0)
    assert placed(db, write(db, settings))[1] == a1 and away_agents(db) == set()


def test_least_loaded_picks_the_agent_with_fewest_open(db: Database, settings: Settings, desk: Desk) -> None:
    a1, a2, a3 = desk.ids["a1"], desk.ids["a2"], desk.ids["a3"]
    earlier = [write(db, settings) for _ in range(4)]
    with db.write() as session:  # a1 has two open, a2 one open and one resolved, a3 none
        for received, agent, status in zip(
            earlier, (a1, a1, a2, a2), ("open", "pending", "open", "resolved"), strict=True
        ):
            row = session.get(Conversation, received.conversation_id)
            assert row is not None
            row.assignee_id, row.status = agent, status
    desk.rules({"team_id": desk.teams["Support"], "strategy": "least_loaded"})
    assert placed(db, write(db, settings))[1] == a3
    assert placed(db, write(db, settings))[1] == a2  # a2 and a3 have one each: the lower id
    set_away(db, a2, True, now=T0)
    set_away(db, a3, True, now=T0)
    assert placed(db, write(db, settings))[1] == a1  # the only one available
    set_away(db, a1, True, now=T0)
    # Nobody available: the team's queue.
    assert placed(db, write(db, settings)) == (desk.teams["Support"], None)


def test_a_team_without_agents_gets_the_conversation_unassigned(
    db: Database, settings: Settings, desk: Desk
) -> None:
    desk.rules({"channels": ["chat"], "team_id": desk.teams["Empty"]})
    assert placed(db, write(db, settings)) == (desk.teams["Empty"], None)


def test_validation_names_the_field(db: Database, desk: Desk) -> None:
    good = {"team_id": desk.teams["Support"]}
    cases: list[tuple[Any, str]] = [
        ("nope", "rules"),
        ([good, good, {"team_id": 99999}], "rules[2].team_id"),
        ([{}], "rules[0].team_id"),
        ([{**good, "strategy": "random"}], "rules[0].strategy"),
        ([{**good, "channels": ["fax"]}], "rules[0].channels"),
        ([{**good, "keywords": ["x" * 101]}], "rules[0].keywords"),
        ([{**good, "segment_ids": [12345]}], "rules[0].segment_ids"),
        ([{**good, "active": "yes"}], "rules[0].active"),
    ]
    for value, field in cases:
        with pytest.raises(Invalid) as bad:
            set_routing_rules(db, value, user_id=None, now=T0)
        assert bad.value.details == {"field": field}, value
    assert routing_rules(db) == []
    [saved] = set_routing_rules(
        db, [{**good, "tiers": [" VIP "], "keywords": "Refund", "languages": ["zh_CN"]}], user_id=None, now=T0
    )
    assert (saved.tiers, saved.keywords, saved.languages) == (("vip",), ("refund",), ("zh-cn",))


def test_the_admin_page_and_rest(db: Database, settings: Settings, desk: Desk, http: httpx.Client) -> None:
    admin = {"Authorization": f"Bearer {make_token(db, 'root@example.com', 'admin')}"}
    agent = {"Authorization": f"Bearer {make_token(db, 'rest-agent@example.com', 'agent')}"}
    body = {"rules": [{"tiers": ["vip"], "team_id": desk.teams["VIP"]}]}
    assert http.put("/api/v1/service/routing", json=body, headers=agent).status_code == 403
    bad = http.put("/api/v1/service/routing", json={"rules": [{"team_id": 0}]}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "rules[0].team_id"
    put = http.put("/api/v1/service/routing", json=body, headers=admin)
    assert put.status_code == 200 and put.json()["rules"][0]["team_id"] == desk.teams["VIP"]
    assert http.get("/api/v1/service/routing", headers=agent).json()["rules"][0]["tiers"] == ["vip"]

    csrf = sign_in(http, "admin@example.com")
    page = http.get("/settings/routing")
    assert page.status_code == 200 and "Rule 1" in page.text and "Add a rule" in page.text
    form = {
        "csrf": csrf,
        "count": "2",
        "rule0_team_id": str(desk.teams["VIP"]),
        "rule0_tiers": "vip, gold",
        "rule0_active": "on",
        "rule0_position": "2",
        "rule1_name": "SMS",
        "rule1_channels": "sms",
        "rule1_keywords": "退款，refund",
        "rule1_team_id": str(desk.teams["Support"]),
        "rule1_strategy": "least_loaded",
        "rule1_active": "on",
        "rule1_position": "1",
    }
    saved = http.post("/settings/routing", data=form, follow_redirects=True)
    assert saved.status_code == 200 and "Routing rules saved" in saved.text
    rules = routing_rules(db)
    assert [(r.name, r.keywords, r.strategy) for r in rules] == [
        ("SMS", ("退款", "refund"), "least_loaded"),
        ("", (), "round_robin"),
    ]
    assert rules[1].tiers == ("vip", "gold")
    wrong = http.post("/settings/routing", data={**form, "rule1_team_id": "99999"})
    assert wrong.status_code == 400 and "rules[0].team_id" in wrong.text
    assert len(routing_rules(db)) == 2  # nothing saved

    # The agent's own toggle on the inbox.
    http.post("/logout", data={"csrf": csrf})
    http.cookies.clear()
    csrf = sign_in(http, "a1@example.com")
    assert http.get("/settings/routing").status_code == 403
    assert "Mark me away" in http.get("/inbox").text
    assert http.post("/inbox/availability", data={"csrf": csrf, "away": "1"}).status_code == 303
    assert desk.ids["a1"] in away_agents(db) and "I am back" in http.get("/inbox").text
    http.post("/inbox/availability", data={"csrf": csrf, "away": "0"})
    assert away_agents(db) == set()


def test_the_side_panel_shows_the_customers_open_deals(
    db: Database, settings: Settings, desk: Desk, http: httpx.Client
) -> None:
    admin = viewer_for(db, desk.ids["admin"], "admin")
    made = create_record(
        db,
        admin,
        "lead",
        {"name": "Wei Zhang", "company": "Acme", "email": "wei@acme.example"},
        settings=settings,
        now=T0,
    )
    convert_lead(
        db, admin, made["id"], deal={"name": "Acme renewal", "amount": "1200"}, settings=settings, now=T0
    )
    received = write(db, settings, email="wei@acme.example", text="About our renewal")
    assert received.profile_id == made["profile_id"]
    sign_in(http, "admin@example.com")
    page = http.get(f"/inbox/{received.conversation_id}").text
    panel = page[page.index("Open deals") :]
    assert re.search(r'href="/deals/\d+">Acme renewal</a>', panel), panel[:500]
