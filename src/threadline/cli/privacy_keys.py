"""`threadline privacy rotate-keys`: re-encrypt the encrypted traits with the newest key.

Registered on the `privacy` group (cli/privacy.py) by cli/main.py; kept here so the key chores and the
retention chores each stay one module.
"""

from __future__ import annotations

from rich.progress import MofNCompleteColumn, TimeElapsedColumn

from threadline.cli.common import console, database, fail, one_line_errors, progress_bar
from threadline.clock import utcnow
from threadline.config import get_settings
from threadline.privacy import Actor, record, rotate_keys, rows_to_check


@one_line_errors
def rotate_encryption_keys() -> None:
    """Re-encrypt every stored value of an encrypted trait with the newest key of
    THREADLINE_ENCRYPTION_KEYS (and encrypt those still in clear). Safe to run again or to stop: it
    rewrites only what is not yet under the newest key. Remove the old keys once it has finished."""
    settings = get_settings()
    if not settings.encryption_keys:
        fail("THREADLINE_ENCRYPTION_KEYS is empty: put the new key first, the old ones after it")
    with database() as db:
        totals = rows_to_check(db)
        with progress_bar(MofNCompleteColumn(), TimeElapsedColumn()) as progress:
            tasks = {name: progress.add_task(name, total=total) for name, total in totals.items()}

            def advance(name: str, rows: int) -> None:
                progress.advance(tasks[name], rows)

            report = rotate_keys(db, settings, progress=advance)
        # Only counts: which rows changed says nothing about anyone.
        details = {"rewritten": report.rewritten, "checked": report.checked}
        record(db, Actor(None), "rotate_keys", "encryption", None, at=utcnow(), details=details)
    for name, rewritten in report.rewritten.items():
        console.print(f"{name}: {rewritten} of {report.checked[name]} rows re-encrypted")
    console.print("every encrypted value is under the newest key: the old keys can be removed")
