"""Data scopes: an agent sees their own customers, a manager their team's, an admin all; everywhere.

Two agents with a customer each prove that lists, search, lookup, the 360 page, the timeline, the REST
API and exports all go through the same filter, and that a forged ID answers 404 and is audited.
"""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pytest

from tests.factories import lookup_profile, make_source, make_token, send
from threadline.accounts import viewer_for
from threadline.config import Settings
from threadline.errors import Forbidden
from threadline.privacy import search_audit
from threadline.profiles import CustomerQuery, assign_owner, change_tags, export_customers, list_customers
from threadline.storage import Database
from threadline.storage.models import Team, User

NOW = datetime(2026, 11, 23, 12, 0, 0)


class World:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.tokens = {
            role: make_token(db, f"{role}@example.com", role.rstrip("0123456789"))
            for role in ("admin", "manager", "agent1", "agent2", "analyst")
        }
        with db.write() as session:
            ids = {u.email.split("@")[0]: u.id for u in session.query(User)}
            team = Team(name="North", manager_id=ids["manager"], created_at=NOW)
            session.add(team)
            session.flush()
            for name in ("agent1", "manager"):
                session.get(User, ids[name]).team_id = team.id  # type: ignore[union-attr]
        self.ids = ids
        web = make_source(db)
        for n in (1, 2, 3):
            send(
                db,
                settings,
                web,
                {
                    "type": "identify",
                    "userId": f"c{n}",
                    "traits": {"name": f"Customer {n}", "phone": f"+1 415 555 01{n:02d}"},
                },
            )
        self.customers = {n: lookup_profile(db, "user_id", f"c{n}") for n in (1, 2, 3)}
        admin = viewer_for(db, ids["admin"], "admin")
        assign_owner(db, admin, [self.customers[1]], ids["agent1"])
        assign_owner(db, admin, [self.customers[2]], ids["agent2"])
        # customer 3 stays unowned: in the pool, visible to admins and analysts only

    def viewer(self, name: str):  # type: ignore[no-untyped-def]
        role = name.rstrip("0123456789")
        return viewer_for(self.db, self.ids[name], role)

    def visible(self, name: str) -> set[str]:
        rows, _ = list_customers(self.db, self.viewer(name), CustomerQuery(), region="US", now=NOW)
        return {r["id"] for r in rows}


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return World(db, settings)


def test_each_role_sees_its_scope_in_lists(world: World) -> None:
    c = world.customers
    assert world.visible("agent1") == {c[1]}
    assert world.visible("agent2") == {c[2]}
    assert world.visible("manager") == {c[1]}  # agent1 is in the manager's team
    assert world.visible("admin") == world.visible("analyst") == {c[1], c[2], c[3]}


def test_search_and_counts_respect_the_scope(world: World) -> None:
    rows, total = list_customers(
        world.db, world.viewer("agent1"), CustomerQuery(q="Customer"), region="US", now=NOW
    )
    assert total == 1 and rows[0]["id"] == world.customers[1]
    _, by_phone = list_customers(
        world.db, world.viewer("agent1"), CustomerQuery(q="5550102"), region="US", now=NOW
    )
    assert by_phone == 0
    _, admin_phone = list_customers(
        world.db, world.viewer("admin"), CustomerQuery(q="5550102"), region="US", now=NOW
    )
    assert admin_phone == 1
    for channel, expected in (("web", 1), ("store", 0)):
        query = CustomerQuery(channel=channel)
        assert list_customers(world.db, world.viewer("agent1"), query, region="US", now=NOW)[1] == expected
    unowned = list_customers(
        world.db, world.viewer("admin"), CustomerQuery(owner="none"), region="US", now=NOW
    )
    assert [r["id"] for r in unowned[0]] == [world.customers[3]]


def test_permissions_per_action(world: World) -> None:
    c = world.customers
    with pytest.raises(Forbidden):
        change_tags(world.db, world.viewer("analyst"), [c[1]], add=["vip"], remove=[])
    with pytest.raises(Forbidden):
        assign_owner(world.db, world.viewer("agent1"), [c[1]], world.ids["agent2"])
    with pytest.raises(Forbidden):
        list(export_customers(world.db, world.viewer("agent1"), CustomerQuery(), region="US", now=NOW))
    # An agent can tag their own customer but not a colleague's, however the IDs are forged.
    assert change_tags(world.db, world.viewer("agent1"), [c[1], c[2]], add=["vip"], remove=[]) == 1
    rows = list(export_customers(world.db, world.viewer("manager"), CustomerQuery(), region="US", now=NOW))
    assert [r["id"] for r in rows] == [c[1]] and rows[0]["tags"] == "vip"


def bearer(world: World, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[name]}"}


def test_api_answers_404_for_another_agents_customer_and_audits_it(world: World, http: httpx.Client) -> None:
    theirs = world.customers[2]
    for path in (f"/api/v1/profiles/{theirs}", f"/api/v1/profiles/{theirs}/events"):
        response = http.get(path, headers=bearer(world, "agent1"))
        assert response.status_code == 404
        assert response.json()["error"]["details"] is None  # nothing says it exists
    lookup = http.get("/api/v1/profiles/lookup", params={"user_id": "c2"}, headers=bearer(world, "agent1"))
    assert lookup.status_code == 404
    listed = http.get("/api/v1/profiles", params={"q": "Customer"}, headers=bearer(world, "agent1")).json()
    assert [p["id"] for p in listed["profiles"]] == [world.customers[1]]
    assert http.get(f"/api/v1/profiles/{theirs}", headers=bearer(world, "agent2")).status_code == 200
    denied = search_audit(world.db, user_email="agent1@example.com", action="denied")
    assert {d.object_id for d in denied} == {theirs}
    assert all(d.details["out_of_scope"] for d in denied)
    viewed = search_audit(world.db, user_email="agent2@example.com", action="view")
    assert [v.object_id for v in viewed] == [theirs]


def sign_in(http: httpx.Client, email: str) -> None:
    form = http.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    response = http.post(
        "/login", data={"email": email, "password": "correct horse battery", "csrf": csrf.group(1)}
    )
    assert response.status_code == 303


def test_pages_hide_other_agents_customers(world: World, http: httpx.Client) -> None:
    sign_in(http, "agent1@example.com")
    listing = http.get("/customers")
    assert "Customer 1" in listing.text and "Customer 2" not in listing.text
    forged = http.get(f"/customers/{world.customers[2]}")
    assert forged.status_code == 404 and "Customer 2" not in forged.text
    assert http.get(f"/customers/{world.customers[1]}").status_code == 200
    assert http.get("/customers/export.csv").status_code == 403
    assert any(d.details.get("via") == "web" for d in search_audit(world.db, action="denied"))


def test_manager_exports_their_teams_customers_as_csv_and_it_is_audited(
    world: World, http: httpx.Client
) -> None:
    sign_in(http, "manager@example.com")
    response = http.get("/customers/export.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert lines[0].startswith("id,name,email,phone") and len(lines) == 2 and "Customer 1" in lines[1]
    [entry] = search_audit(world.db, action="export")
    assert entry.details["count"] == 1 and entry.user_email == "manager@example.com"


def test_bulk_actions_from_the_list(world: World, http: httpx.Client) -> None:
    sign_in(http, "admin@example.com")
    page = http.get("/customers").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    c = world.customers
    data = {"csrf": csrf.group(1), "action": "add_tag", "value": "vip", "ids": [c[1], c[3]]}
    assert http.post("/customers/bulk", data=data).status_code == 303
    tagged = http.get("/customers", params={"tag": "vip"}).text
    assert "Customer 1" in tagged and "Customer 3" in tagged and "Customer 2" not in tagged
    owner = {
        "csrf": csrf.group(1),
        "action": "assign_owner",
        "value": str(world.ids["agent2"]),
        "ids": [c[3]],
    }
    assert http.post("/customers/bulk", data=owner).status_code == 303
    assert world.visible("agent2") == {c[2], c[3]}
    assert http.post("/customers/bulk", data={**owner, "csrf": "forged"}).status_code == 403
    assert [e.details["action"] for e in search_audit(world.db, action="change")] == [
        "assign_owner",
        "add_tag",
    ]


def test_rest_owner_tags_and_sharing(world: World, http: httpx.Client) -> None:
    c, ids = world.customers, world.ids
    agent2 = bearer(world, "agent2")
    # agent2 cannot see customer 1 until its owner shares it.
    assert http.get(f"/api/v1/profiles/{c[1]}", headers=agent2).status_code == 404
    shared = http.put(
        f"/api/v1/profiles/{c[1]}/members/{ids['agent2']}",
        json={"access": "read"},
        headers=bearer(world, "agent1"),
    )
    assert shared.status_code == 200
    assert http.get(f"/api/v1/profiles/{c[1]}", headers=agent2).status_code == 200
    # Read-only sharing: agent2 can read but not tag it.
    tagged = http.patch(f"/api/v1/profiles/{c[1]}/tags", json={"add": ["x"]}, headers=agent2)
    assert tagged.status_code == 403
    assert http.patch(
        f"/api/v1/profiles/{c[1]}/tags", json={"add": ["gold"]}, headers=bearer(world, "agent1")
    ).json()["tags"] == ["gold"]
    assert (
        http.delete(
            f"/api/v1/profiles/{c[1]}/members/{ids['agent2']}", headers=bearer(world, "agent1")
        ).status_code
        == 200
    )
    assert http.get(f"/api/v1/profiles/{c[1]}", headers=agent2).status_code == 404
    # Transfer needs the permission: agents may not, managers may within their team.
    moved = http.put(f"/api/v1/profiles/{c[1]}/owner", json={"owner_id": ids["agent2"]}, headers=agent2)
    assert moved.status_code == 403
    assert (
        http.put(
            f"/api/v1/profiles/{c[3]}/owner", json={"owner_id": ids["agent1"]}, headers=bearer(world, "admin")
        ).status_code
        == 200
    )
    assert world.visible("agent1") == {c[1], c[3]}
    assert (
        "bad access"
        not in http.put(
            f"/api/v1/profiles/{c[1]}/members/{ids['agent2']}",
            json={"access": "own"},
            headers=bearer(world, "agent1"),
        ).text
    )
    actions = [e.details.get("action") for e in search_audit(world.db, action="change")]
    assert {"share", "unshare", "tags", "assign_owner"} <= set(actions)


def test_teams_from_the_cli_widen_a_managers_scope(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from threadline.cli.main import app
    from threadline.config import get_settings

    monkeypatch.setenv("THREADLINE_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        made = runner.invoke(app, ["teams", "create", "North East", "--parent", "North"])
        assert made.exit_code == 0, made.output
        assert runner.invoke(app, ["users", "set-team", "agent2@example.com", "North East"]).exit_code == 0
        listed = runner.invoke(app, ["teams", "list"], env={"COLUMNS": "200"})
        assert "North East" in listed.output and "manager@example.com" in listed.output
        bad = runner.invoke(app, ["teams", "create", "X", "--parent", "Nowhere"])
        assert bad.exit_code == 1 and "no team 'Nowhere'" in bad.output
    finally:
        get_settings.cache_clear()
    # agent2 is now in a sub-team of the manager's team: the manager sees their customer too.
    assert world.visible("manager") == {world.customers[1], world.customers[2]}


def test_list_filters_by_source_in_the_page(world: World, http: httpx.Client, settings: Settings) -> None:
    store = make_source(world.db, "store-pos", "store")
    send(world.db, settings, store, {"type": "track", "event": "Order Completed", "userId": "c3"})
    sign_in(http, "admin@example.com")
    page = http.get("/customers", params={"source": "store-pos"})
    assert "Customer 3" in page.text and "Customer 1" not in page.text
    assert '<option value="store-pos" selected>' in page.text


def test_sharing_and_owner_from_the_360_page(world: World, http: httpx.Client) -> None:
    c, ids = world.customers, world.ids
    sign_in(http, "agent1@example.com")
    page = http.get(f"/customers/{c[1]}")
    assert "Owner and team" in page.text and "Change owner" not in page.text  # agents may not transfer
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    shared = http.post(
        f"/customers/{c[1]}/sharing",
        data={"csrf": csrf.group(1), "action": "share", "user_id": str(ids["agent2"]), "access": "write"},
    )
    assert shared.status_code == 303
    assert c[1] in world.visible("agent2")
    assert "agent2@example.com" in http.get(f"/customers/{c[1]}").text
    # agent1 cannot share agent2's own customer: out of scope answers 404.
    forged = http.post(
        f"/customers/{c[2]}/sharing",
        data={"csrf": csrf.group(1), "action": "share", "user_id": str(ids["agent1"]), "access": "read"},
    )
    assert forged.status_code == 404
    unshared = http.post(
        f"/customers/{c[1]}/sharing",
        data={"csrf": csrf.group(1), "action": "unshare", "user_id": str(ids["agent2"])},
    )
    assert unshared.status_code == 303 and c[1] not in world.visible("agent2")
