"""What every command shares: the database, the clock, one-line errors and exit codes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn

from threadline.config import get_settings
from threadline.errors import ThreadlineError
from threadline.storage import Database, upgrade

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def progress_bar(*counts: ProgressColumn) -> Progress:
    """A bar on stderr for long work: its task's description, the bar, then `counts`. None is drawn
    when stderr is not a terminal (logs and pipes get the one-line result only)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        *counts,
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def open_db() -> Database:
    """The configured database, migrated to the latest schema (cheap when it already is)."""
    settings = get_settings()
    upgrade(settings.database_url)
    return Database(settings.database_url)


@contextmanager
def database() -> Iterator[Database]:
    db = open_db()
    try:
        yield db
    finally:
        db.dispose()


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def one_line_errors(function: F) -> F:
    """Domain errors become `error: <reason>` on stderr and exit code 1, not a traceback."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ThreadlineError as error:
            fail(error.message)
        except OSError as error:
            fail(str(error))
        return None

    return wrapper  # type: ignore[return-value]


def read_stdin_line() -> str:
    return sys.stdin.readline().rstrip("\n")
