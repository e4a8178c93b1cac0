"""Roles, permissions and data scopes: who may do what to which customers.

As in WukongCRM, each role has permissions per action and a data scope: its own records, its team's
(with sub-teams), or all. `Viewer` carries the result for one user; `customer_filter` turns it into the
one WHERE clause every customer query goes through (threadline.profiles applies it; nothing else
should query customers around it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, false, or_, select, true

from threadline.storage import Database
from threadline.storage.models import Profile, ProfileMember, Team, User

OWN, TEAM, ALL = "own", "team", "all"
ACTIONS = ("read", "create", "edit", "delete", "export", "transfer")

# Role -> (data scope, permitted actions). Analysts read everything for reporting but change nothing.
ROLE_POLICIES: dict[str, tuple[str, frozenset[str]]] = {
    "admin": (ALL, frozenset(ACTIONS)),
    "manager": (TEAM, frozenset({"read", "create", "edit", "export", "transfer"})),
    "agent": (OWN, frozenset({"read", "create", "edit"})),
    "analyst": (ALL, frozenset({"read", "export"})),
}


@dataclass(frozen=True, slots=True)
class Viewer:
    """A user as the data-scope rules see them. `Viewer.system()` is the CLI and the worker."""

    user_id: int | None
    role: str
    scope: str
    actions: frozenset[str]
    team_ids: frozenset[int] = frozenset()

    @classmethod
    def system(cls) -> Viewer:
        return cls(None, "system", ALL, frozenset(ACTIONS))

    def can(self, action: str) -> bool:
        return action in self.actions


def viewer_for(db: Database, user_id: int, role: str) -> Viewer:
    scope, actions = ROLE_POLICIES.get(role, (OWN, frozenset()))
    team_ids: frozenset[int] = frozenset()
    if scope == TEAM:
        with db.read() as session:
            own_team = session.scalar(select(User.team_id).where(User.id == user_id))
            managed = set(session.scalars(select(Team.id).where(Team.manager_id == user_id)))
            teams = session.execute(select(Team.id, Team.parent_id)).all()
        roots = managed | ({own_team} if own_team is not None else set())
        team_ids = frozenset(_with_sub_teams(roots, [(t, p) for t, p in teams]))
    return Viewer(user_id, role, scope, actions, team_ids)


def _with_sub_teams(roots: set[int], edges: list[tuple[int, int | None]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for team, parent in edges:
        if parent is not None:
            children.setdefault(parent, []).append(team)
    found, stack = set(roots), list(roots)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def customer_filter(viewer: Viewer) -> ColumnElement[bool]:
    """The customers `viewer` may read, as a condition on `profiles`."""
    if viewer.scope == ALL:
        return true()
    if viewer.user_id is None:
        return false()
    shared = select(ProfileMember.profile_id).where(ProfileMember.user_id == viewer.user_id)
    mine: list[ColumnElement[bool]] = [Profile.owner_id == viewer.user_id, Profile.id.in_(shared)]
    if viewer.scope == TEAM and viewer.team_ids:
        colleagues = select(User.id).where(User.team_id.in_(viewer.team_ids))
        mine.append(Profile.owner_id.in_(colleagues))
    return or_(*mine)


def customer_write_filter(viewer: Viewer) -> ColumnElement[bool]:
    """The customers `viewer` may change: in scope, and not merely shared with them read-only."""
    if viewer.scope == ALL:
        return true()
    if viewer.user_id is None:
        return false()
    writable = select(ProfileMember.profile_id).where(
        ProfileMember.user_id == viewer.user_id, ProfileMember.access == "write"
    )
    mine: list[ColumnElement[bool]] = [Profile.owner_id == viewer.user_id, Profile.id.in_(writable)]
    if viewer.scope == TEAM and viewer.team_ids:
        mine.append(Profile.owner_id.in_(select(User.id).where(User.team_id.in_(viewer.team_ids))))
    return or_(*mine)


def describe(viewer: Viewer) -> dict[str, Any]:
    return {"role": viewer.role, "scope": viewer.scope, "actions": sorted(viewer.actions)}
