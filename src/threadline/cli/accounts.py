"""`threadline users ...` and `threadline tokens ...`."""

from __future__ import annotations

import getpass
import sys

import typer

from threadline.accounts import ROLES, create_token, create_user
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


@tokens.command("create")
@one_line_errors
def tokens_create(
    email: str, name: str = typer.Option("cli", help="A label to recognise the token by.")
) -> None:
    """Print a new REST API bearer token for that user (shown once)."""
    with database() as db:
        token = create_token(db, email, now=utcnow(), name=name)
    print(token)
