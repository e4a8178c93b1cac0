"""Teams as an admin manages them at /teams and /users: create, rename, nest (never in a circle), set the
manager, delete an empty team, move people in and out; audited, and refused to everyone else."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import LiveServer
from tests.factories import make_token
from tests.test_accounts import PASSWORD, error_of, post_form, signed_in, user_row
from threadline.accounts import create_team, create_user, viewer_for
from threadline.privacy import search_audit
from threadline.storage import Database
from threadline.storage.models import Team

START = datetime(2025, 3, 1, 9, 0)


@pytest.fixture
def browser(server: LiveServer) -> Iterator[Callable[[], httpx.Client]]:
    opened: list[httpx.Client] = []

    def open_one() -> httpx.Client:
        opened.append(httpx.Client(base_url=server.url, timeout=30))
        return opened[-1]

    yield open_one
    for client in opened:
        client.close()


def team(db: Database, name: str) -> Team:
    with db.read() as session:
        found = session.scalar(select(Team).where(Team.name == name))
    assert found is not None, name
    return found


def error(response: httpx.Response) -> str:
    return html.unescape(error_of(response.text))


def test_admin_creates_renames_nests_and_deletes_teams(
    browser: Callable[[], httpx.Client], db: Database
) -> None:
    make_token(db)
    create_user(db, "lee@example.com", "manager", PASSWORD, now=START)
    admin = signed_in(browser, "admin@example.com")
    empty = admin.get("/teams")
    assert empty.status_code == 200 and "No teams yet." in empty.text and '<a href="/teams">' in empty.text

    made = post_form(admin, "/teams", page="/teams", name="North", manager="lee@example.com")
    assert made.status_code == 303 and made.headers["location"] == "/teams?done=team_created"
    assert post_form(admin, "/teams", page="/teams", name="North East", parent="North").status_code == 303
    listing = admin.get("/teams").text
    assert "The team is created." in admin.get(made.headers["location"]).text
    north, north_east = team(db, "North"), team(db, "North East")
    assert '<option value="North" selected>North</option>' in listing  # North East's parent
    assert "1 member" in listing and "lee@example.com" in listing  # a teamless manager joins
    assert north_east.parent_id == north.id and north.manager_id == user_row(db, "lee@example.com").id

    duplicate = post_form(admin, "/teams", page="/teams", name="North")
    assert duplicate.status_code == 400 and error(duplicate) == "name: a team called 'North' already exists"
    nowhere = post_form(admin, "/teams", page="/teams", name="West", parent="Nowhere")
    assert nowhere.status_code == 400 and error(nowhere) == "parent: no team 'Nowhere'"

    # Rename, move to the top level and drop the manager in one save.
    edited = post_form(admin, f"/teams/{north_east.id}/edit", page="/teams", name="Northeast", parent="")
    assert edited.status_code == 303 and edited.headers["location"] == "/teams?done=team_changed"
    renamed = team(db, "Northeast")
    assert renamed.id == north_east.id and renamed.parent_id is None and renamed.manager_id is None
    assert (
        post_form(
            admin, f"/teams/{renamed.id}/edit", page="/teams", name="Northeast", parent="North"
        ).status_code
        == 303
    )

    # North cannot go inside its own sub-team, nor inside itself; nothing changes.
    circle = post_form(
        admin,
        f"/teams/{north.id}/edit",
        page="/teams",
        name="North",
        parent="Northeast",
        manager="lee@example.com",
    )
    assert circle.status_code == 400
    assert error(circle) == "parent: 'Northeast' is a sub-team of 'North', so 'North' cannot go inside it"
    itself = post_form(admin, f"/teams/{north.id}/edit", page="/teams", name="North", parent="North")
    assert itself.status_code == 400 and error(itself) == "parent: a team cannot be its own parent ('North')"
    assert team(db, "North").parent_id is None and team(db, "North").manager_id == north.manager_id

    # Only an empty team goes: North has a member and a sub-team.
    refused = post_form(admin, f"/teams/{north.id}/delete", page="/teams")
    assert refused.status_code == 400
    assert error(refused) == "team: 'North' still has 1 member(s); move them to another team first"
    deleted = post_form(admin, f"/teams/{renamed.id}/delete", page="/teams")
    assert (
        deleted.status_code == 303 and "The team is deleted." in admin.get(deleted.headers["location"]).text
    )
    lee = user_row(db, "lee@example.com")
    assert post_form(admin, f"/users/{lee.id}/team", page="/users", team="").status_code == 303
    assert post_form(admin, f"/teams/{north.id}/delete", page="/teams").status_code == 303
    assert "No teams yet." in admin.get("/teams").text

    audited = {action: len(search_audit(db, action=action)) for action in ("team_create", "team_update")}
    assert audited == {"team_create": 2, "team_update": 2}
    [first_deleted, _] = reversed(search_audit(db, action="team_delete"))
    assert first_deleted.details == {"name": "Northeast"} and first_deleted.user_email == "admin@example.com"


def test_admin_moves_people_in_and_out_of_teams_on_the_users_page(
    browser: Callable[[], httpx.Client], db: Database
) -> None:
    make_token(db)
    manager = create_user(db, "lee@example.com", "manager", PASSWORD, now=START)
    agent = create_user(db, "ann@example.com", "agent", PASSWORD, now=START)
    north = create_team(db, "North", manager_email="lee@example.com", now=START)
    create_team(db, "South", now=START)
    admin = signed_in(browser, "admin@example.com")

    moved = post_form(admin, f"/users/{agent.id}/team", page="/users", team=str(north.id))
    assert moved.status_code == 303 and moved.headers["location"] == "/users?done=team"
    users = admin.get(moved.headers["location"]).text
    assert "The user's team is changed." in users
    assert f'<option value="{north.id}" selected>North</option>' in users
    assert user_row(db, "ann@example.com").team_id == north.id
    assert "ann@example.com, lee@example.com" in admin.get("/teams").text
    # What it is for: the manager's scope now takes in Ann.
    assert north.id in viewer_for(db, manager.id, "manager").team_ids
    [entry] = search_audit(db, action="team_move")
    assert entry.object_id == str(agent.id) and entry.details == {"team_id": north.id}

    unknown = post_form(admin, f"/users/{agent.id}/team", page="/users", team="999999")
    assert unknown.status_code == 400 and error(unknown) == "team: no team 999999"
    garbage = post_form(admin, f"/users/{agent.id}/team", page="/users", team="North")
    assert garbage.status_code == 400 and error(garbage) == "team: choose a team from the list"
    assert user_row(db, "ann@example.com").team_id == north.id

    assert post_form(admin, f"/users/{agent.id}/team", page="/users", team="").status_code == 303
    assert user_row(db, "ann@example.com").team_id is None


def test_only_admins_reach_teams(browser: Callable[[], httpx.Client], db: Database) -> None:
    make_token(db)
    make_token(db, "lee@example.com", "manager")
    north = create_team(db, "North", now=START)
    lee = signed_in(browser, "lee@example.com")
    page = lee.get("/teams")
    assert page.status_code == 403 and "North" not in page.text and "admin role" in page.text
    assert 'href="/teams"' not in lee.get("/customers").text
    attempts = {
        "/teams": {"name": "Sneaky"},
        f"/teams/{north.id}/edit": {"name": "Renamed"},
        f"/teams/{north.id}/delete": {},
        f"/users/{user_row(db, 'lee@example.com').id}/team": {"team": str(north.id)},
    }
    for path, data in attempts.items():
        assert post_form(lee, path, **data).status_code == 403, path
    assert team(db, "North").name == "North"
    assert user_row(db, "lee@example.com").team_id is None
    with db.read() as session:
        assert session.scalar(select(Team).where(Team.name == "Sneaky")) is None
