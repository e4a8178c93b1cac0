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
# "pii": see customers' personal data (identifiers, personal traits, encrypted traits) in clear; without
# it every surface shows them masked (threadline.privacy.Disclosure).
ACTIONS = ("read", "create", "edit", "delete", "export", "transfer", "pii")

# Role -> (data scope, permitted actions). Analysts read everything for reporting but change nothing,
# and report on masked personal data: people who serve customers need it in clear, counting does not.
ROLE_POLICIES: dict[str, tuple[str, frozenset[str]]] = {
    "admin": (ALL, frozenset(ACTIONS)),
    "manager": (TEAM, frozenset({"read", "create", "edit", "export", "transfer", "pii"})),
    "agent": (OWN, frozenset({"read", "create", "edit", "pii"})),
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
    # Whose customers are "ours": the user and, for a team scope, everyone in the user's teams. Listed
    # here (not a subquery) so the owner index answers; `has_shared` says whether any customer is
    # shared with the user at all, so the scope is one indexable condition for most users.
    owner_ids: frozenset[int] = frozenset()
    has_shared: bool = True

    @classmethod
    def system(cls) -> Viewer:
        return cls(None, "system", ALL, frozenset(ACTIONS))

    def can(self, action: str) -> bool:
        return action in self.actions


def viewer_for(db: Database, user_id: int, role: str) -> Viewer:
    scope, actions = ROLE_POLICIES.get(role, (OWN, frozenset()))
    if scope == ALL:
        return Viewer(user_id, role, scope, actions)
    team_ids: frozenset[int] = frozenset()
    owners = {user_id}
    with db.read() as session:
        if scope == TEAM:
            own_team = session.scalar(select(User.team_id).where(User.id == user_id))
            managed = set(session.scalars(select(Team.id).where(Team.manager_id == user_id)))
            teams = session.execute(select(Team.id, Team.parent_id)).all()
            roots = managed | ({own_team} if own_team is not None else set())
            team_ids = frozenset(_with_sub_teams(roots, [(t, p) for t, p in teams]))
            if team_ids:
                owners |= set(session.scalars(select(User.id).where(User.team_id.in_(team_ids))))
        shared = session.scalar(
            select(ProfileMember.profile_id).where(ProfileMember.user_id == user_id).limit(1)
        )
    return Viewer(user_id, role, scope, actions, team_ids, frozenset(owners), shared is not None)


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


def customer_filter(viewer: Viewer, profile: Any = Profile) -> ColumnElement[bool]:
    """The customers `viewer` may read, as a condition on `profiles` (or an alias of it, `profile`)."""
    if viewer.scope == ALL:
        return true()
    if viewer.user_id is None:
        return false()
    mine = _owned(viewer, profile)
    if not viewer.has_shared:
        return mine
    shared = select(ProfileMember.profile_id).where(ProfileMember.user_id == viewer.user_id)
    return or_(mine, profile.id.in_(shared))


def _owned(viewer: Viewer, profile: Any) -> ColumnElement[bool]:
    owners = viewer.owner_ids or frozenset({viewer.user_id or 0})
    if len(owners) == 1:
        return profile.owner_id == next(iter(owners))  # type: ignore[no-any-return]
    return profile.owner_id.in_(sorted(owners))  # type: ignore[no-any-return]


def customer_write_filter(viewer: Viewer, profile: Any = Profile) -> ColumnElement[bool]:
    """The customers `viewer` may change: in scope, and not merely shared with them read-only."""
    if viewer.scope == ALL:
        return true()
    if viewer.user_id is None:
        return false()
    mine = _owned(viewer, profile)
    if not viewer.has_shared:
        return mine
    writable = select(ProfileMember.profile_id).where(
        ProfileMember.user_id == viewer.user_id, ProfileMember.access == "write"
    )
    return or_(mine, profile.id.in_(writable))


def describe(viewer: Viewer) -> dict[str, Any]:
    return {"role": viewer.role, "scope": viewer.scope, "actions": sorted(viewer.actions)}
