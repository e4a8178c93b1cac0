"""Teams: who works with whom. A manager's data scope is their team and its sub-teams."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from threadline.errors import Conflict, Invalid, NotFound
from threadline.storage import Database
from threadline.storage.models import Team, User


@dataclass(frozen=True, slots=True)
class TeamInfo:
    id: int
    name: str
    parent: str | None
    manager: str | None
    members: int


def _user_id(session: Session, email: str) -> int:
    found = session.scalar(select(User.id).where(User.email == email.strip().lower()))
    if found is None:
        raise NotFound(f"email: no user {email}", details={"field": "email"})
    return int(found)


def create_team(
    db: Database, name: str, *, parent: str | None = None, manager_email: str | None = None, now: datetime
) -> TeamInfo:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("name: must be 1 to 100 characters", details={"field": "name"})
    with db.write() as session:
        if session.scalar(select(Team.id).where(Team.name == name)) is not None:
            raise Conflict(f"name: a team called {name!r} already exists", details={"field": "name"})
        parent_id = None
        if parent:
            parent_id = session.scalar(select(Team.id).where(Team.name == parent))
            if parent_id is None:
                raise NotFound(f"parent: no team {parent!r}", details={"field": "parent"})
        manager_id = _user_id(session, manager_email) if manager_email else None
        team = Team(name=name, parent_id=parent_id, manager_id=manager_id, created_at=now)
        session.add(team)
        session.flush()
        if manager_id is not None:
            manager = session.get(User, manager_id)
            if manager is not None and manager.team_id is None:
                manager.team_id = team.id
        return TeamInfo(team.id, name, parent, manager_email, 1 if manager_id else 0)


def set_user_team(db: Database, email: str, team: str | None) -> None:
    """Put a user in a team (None takes them out)."""
    with db.write() as session:
        user = session.get(User, _user_id(session, email))
        assert user is not None
        if team is None:
            user.team_id = None
            return
        team_id = session.scalar(select(Team.id).where(Team.name == team))
        if team_id is None:
            raise NotFound(f"team: no team {team!r}", details={"field": "team"})
        user.team_id = team_id


def list_teams(db: Database) -> list[TeamInfo]:
    with db.read() as session:
        teams = session.scalars(select(Team).order_by(Team.name)).all()
        names = {t.id: t.name for t in teams}
        emails = dict(session.execute(select(User.id, User.email)).all())
        counts: dict[int, int] = {}
        for team_id in session.scalars(select(User.team_id)):
            if team_id is not None:
                counts[team_id] = counts.get(team_id, 0) + 1
    return [
        TeamInfo(
            t.id,
            t.name,
            names.get(t.parent_id) if t.parent_id else None,
            emails.get(t.manager_id) if t.manager_id else None,
            counts.get(t.id, 0),
        )
        for t in teams
    ]
