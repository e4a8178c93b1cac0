"""`threadline users ...` and `threadline tokens ...`."""

from __future__ import annotations

import getpass
import sys
from datetime import datetime

import typer
from rich.table import Table

from threadline.accounts import (
    ROLES,
    create_team,
    create_token,
    create_user,
    list_teams,
    list_tokens,
    list_users,
    revoke_token,
    set_active,
    set_user_team,
    user_by_email,
)
from threadline.cli.common import console, database, fail, one_line_errors, read_stdin_line
from threadline.clock import utcnow

users = typer.Typer(help="Workspace users.", no_args_is_help=True)
tokens = typer.Typer(help="Personal API tokens for the REST API.", no_args_is_help=True)


@users.command("create")
@one_line_errors
def users_create(
    email: str,
    role: str = typer.Option(..., help=f"One of: {', '.join(ROLES)}."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create a user who can sign in to the workspace."""
    if password_stdin:
        password = read_stdin_line()
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        fail("no password: pass --password-stdin and write it to standard input")
        return
    with database() as db:
        user = create_user(db, email, role, password, now=utcnow())
    console.print(f"created {user.role} {user.email}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "never"


@users.command("list")
@one_line_errors
def users_list() -> None:
    """Every user with their role, team, status and last sign-in."""
    with database() as db:
        rows = list_users(db)
    table = Table("email", "name", "role", "team", "status", "last sign-in")
    for u in rows:
        status = "deactivated" if not u.is_active else "invited" if u.invited else "active"
        table.add_row(u.email, u.name or "", u.role, u.team or "", status, _when(u.last_login_at))
    console.print(table)


@users.command("deactivate")
@one_line_errors
def users_deactivate(email: str) -> None:
    """Stop a user signing in; their sessions end and their API tokens are revoked at once."""
    with database() as db:
        user = user_by_email(db, email)
        # by=0: no user of the workspace; the command line has the database's own authority.
        set_active(db, user.id, False, by=0, now=utcnow())
    console.print(f"deactivated {user.email}")


@tokens.command("list")
@one_line_errors
def tokens_list(email: str) -> None:
    """A user's API tokens that still work (the secrets are never shown again)."""
    with database() as db:
        found = list_tokens(db, user_by_email(db, email).id)
    table = Table("id", "name", "created", "last used")
    for t in found:
        table.add_row(str(t.id), t.name, _when(t.created_at), _when(t.last_used_at))
    console.print(table)


@tokens.command("revoke")
@one_line_errors
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its ID (from `threadline tokens list`); it is refused from then on."""
    with database() as db:
        revoke_token(db, token_id, now=utcnow())
    console.print(f"revoked token {token_id}")


@tokens.command("create")
@one_line_errors
def tokens_create(
    email: str, name: str = typer.Option("cli", help="A label to recognise the token by.")
) -> None:
    """Print a new REST API bearer token for that user (shown once)."""
    with database() as db:
        token = create_token(db, email, now=utcnow(), name=name)
    print(token)


teams = typer.Typer(help="Teams: a manager sees their team's and sub-teams' customers.", no_args_is_help=True)


@teams.command("create")
@one_line_errors
def teams_create(
    name: str,
    parent: str | None = typer.Option(None, help="The team this one belongs to."),
    manager: str | None = typer.Option(None, help="Email of the team's manager."),
) -> None:
    """Create a team."""
    with database() as db:
        team = create_team(db, name, parent=parent, manager_email=manager, now=utcnow())
    console.print(f"created team {team.name}")


@teams.command("list")
@one_line_errors
def teams_list() -> None:
    """List teams with their parent, manager and member count."""
    with database() as db:
        rows = list_teams(db)
    table = Table("team", "parent", "manager", "members")
    for team in rows:
        table.add_row(team.name, team.parent or "-", team.manager or "-", str(team.members))
    console.print(table)


@users.command("set-team")
@one_line_errors
def users_set_team(email: str, team: str = typer.Argument(..., help="Team name, or - for none.")) -> None:
    """Put a user in a team."""
    with database() as db:
        set_user_team(db, email, None if team == "-" else team)
    console.print(f"{email}: team {team}")
