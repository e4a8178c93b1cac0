"""Teams: who works with whom. A manager's data scope is their team and its sub-teams.

Managed at /teams (web/team_pages.py) and with `threadline teams ...` / `users set-team` (cli/accounts.py).
Teams nest through `parent_id`; the nesting must stay a tree, since a manager's scope walks down it
(access.viewer_for), so a change that would put a team inside itself or its own sub-team is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threadline.accounts.users import UserInfo, info_of
from threadline.errors import Conflict, Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import Team, User

MAX_NAME = 100  # the column's width


@dataclass(frozen=True, slots=True)
class TeamInfo:
    id: int
    name: str
    parent: str | None
    manager: str | None  # the manager's email
    members: int
    parent_id: int | None = None
    manager_id: int | None = None
    member_emails: tuple[str, ...] = ()


def _user_id(session: Session, email: str) -> int:
    found = session.scalar(select(User.id).where(User.email == email.strip().lower()))
    if found is None:
        raise NotFound(f"email: no user {email}", details={"field": "email"})
    return int(found)


def _manager_id(session: Session, email: str | None) -> int | None:
    if not email or not email.strip():
        return None
    found = session.scalar(select(User.id).where(User.email == email.strip().lower()))
    if found is None:
        raise NotFound(f"manager: no user {email}", details={"field": "manager"})
    return int(found)


def _clean_name(session: Session, name: str, *, team_id: int | None = None) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise Invalid(f"name: must be 1 to {MAX_NAME} characters", details={"field": "name"})
    same = session.scalar(select(Team.id).where(Team.name == name))
    if same is not None and same != team_id:
        raise Conflict(f"name: a team called {name!r} already exists", details={"field": "name"})
    return name


def _team_id(session: Session, name: str, field: str) -> int:
    found = session.scalar(select(Team.id).where(Team.name == name))
    if found is None:
        raise NotFound(f"{field}: no team {name!r}", details={"field": field})
    return int(found)


def _one_team(session: Session, team_id: int) -> Team:
    team = session.get(Team, team_id, with_for_update=True)
    if team is None:
        raise NotFound(f"no team {team_id}", details={"field": "id"})
    return team


def _join_if_teamless(session: Session, user_id: int | None, team_id: int) -> None:
    # A new manager with no team of their own belongs to the one they manage.
    manager = session.get(User, user_id) if user_id is not None else None
    if manager is not None and manager.team_id is None:
        manager.team_id = team_id


def create_team(
    db: Database, name: str, *, parent: str | None = None, manager_email: str | None = None, now: datetime
) -> TeamInfo:
    """A new team; `parent` is a team's name and `manager_email` a user's email (either may be empty)."""
    with db.write() as session:
        name = _clean_name(session, name)
        parent_id = _team_id(session, parent, "parent") if parent else None
        manager_id = _manager_id(session, manager_email)
        team = Team(name=name, parent_id=parent_id, manager_id=manager_id, created_at=now)
        session.add(team)
        session.flush()
        _join_if_teamless(session, manager_id, team.id)
        session.flush()
        return _info_of(session, team)


def update_team(
    db: Database, team_id: int, *, name: str, parent: str | None, manager_email: str | None
) -> TeamInfo:
    """Rename a team, move it under another (`parent`, a name; empty for the top level) and set its
    manager (an email; empty for none). A parent inside the team itself is refused: teams form a tree."""
    with db.write() as session:
        team = _one_team(session, team_id)
        team.name = _clean_name(session, name, team_id=team.id)
        parent_id = _team_id(session, parent, "parent") if parent else None
        if parent_id is not None:
            _refuse_cycle(session, team, parent_id)
        team.parent_id = parent_id
        manager_id = _manager_id(session, manager_email)
        if manager_id != team.manager_id:
            team.manager_id = manager_id
            _join_if_teamless(session, manager_id, team.id)
        session.flush()
        return _info_of(session, team)


def _refuse_cycle(session: Session, team: Team, parent_id: int) -> None:
    if parent_id == team.id:
        raise Invalid(f"parent: a team cannot be its own parent ({team.name!r})", details={"field": "parent"})
    rows = session.execute(select(Team.id, Team.parent_id, Team.name)).all()
    parents = {team_id: parent for team_id, parent, _ in rows}
    names = {team_id: name for team_id, _, name in rows}
    seen: set[int] = set()
    ancestor: int | None = parent_id
    while ancestor is not None and ancestor not in seen:
        if ancestor == team.id:
            raise Invalid(
                f"parent: {names[parent_id]!r} is a sub-team of {team.name!r}, so {team.name!r} cannot"
                " go inside it",
                details={"field": "parent"},
            )
        seen.add(ancestor)
        ancestor = parents.get(ancestor)


def delete_team(db: Database, team_id: int) -> str:
    """Delete a team nobody is in and no team sits under; returns its name."""
    with db.write() as session:
        team = _one_team(session, team_id)
        members = session.scalar(select(func.count()).select_from(User).where(User.team_id == team.id))
        if members:
            raise Conflict(
                f"team: {team.name!r} still has {members} member(s); move them to another team first",
                details={"field": "team"},
            )
        children = session.scalars(select(Team.name).where(Team.parent_id == team.id).order_by(Team.name))
        sub_teams = list(children)
        if sub_teams:
            raise Conflict(
                f"team: {team.name!r} has sub-teams ({', '.join(sub_teams)}); move or delete them first",
                details={"field": "team"},
            )
        name = team.name
        session.delete(team)
        return name


def move_user(db: Database, user_id: int, team_id: int | None) -> UserInfo:
    """Put a user in a team, or (None) in none."""
    with db.write() as session:
        user = session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound(f"no user {user_id}", details={"field": "id"})
        if team_id is not None and session.get(Team, team_id) is None:
            raise NotFound(f"team: no team {team_id}", details={"field": "team"})
        user.team_id = team_id
        return info_of(user)


def set_user_team(db: Database, email: str, team: str | None) -> None:
    """Put a user in a team by name (None takes them out): the command line's way."""
    with db.read() as session:
        user_id = _user_id(session, email)
        team_id = _team_id(session, team, "team") if team is not None else None
    move_user(db, user_id, team_id)


def _info_of(session: Session, team: Team) -> TeamInfo:
    parent = session.get(Team, team.parent_id) if team.parent_id is not None else None
    manager = session.get(User, team.manager_id) if team.manager_id is not None else None
    members = tuple(session.scalars(select(User.email).where(User.team_id == team.id).order_by(User.email)))
    return TeamInfo(
        team.id,
        team.name,
        parent.name if parent else None,
        manager.email if manager else None,
        len(members),
        team.parent_id,
        team.manager_id,
        members,
    )


def list_teams(db: Database) -> list[TeamInfo]:
    with db.read() as session:
        teams = session.scalars(select(Team).order_by(Team.name)).all()
        users = session.execute(select(User.id, User.email, User.team_id).order_by(User.email)).all()
    names = {t.id: t.name for t in teams}
    emails = {user_id: email for user_id, email, _ in users}
    members: dict[int, list[str]] = {}
    for _, email, team_id in users:
        if team_id is not None:
            members.setdefault(team_id, []).append(email)
    return [
        TeamInfo(
            t.id,
            t.name,
            names.get(t.parent_id) if t.parent_id else None,
            emails.get(t.manager_id) if t.manager_id else None,
            len(members.get(t.id, [])),
            t.parent_id,
            t.manager_id,
            tuple(members.get(t.id, [])),
        )
        for t in teams
    ]
