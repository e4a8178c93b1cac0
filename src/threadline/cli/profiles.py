"""`threadline profiles ...`: a data steward's explicit merges and unmerges, and re-picking what profiles
show after the golden record's rules change, from the command line."""

from __future__ import annotations

import typer
from rich.progress import MofNCompleteColumn, TimeRemainingColumn

from threadline.cli.common import database, one_line_errors, progress_bar
from threadline.clock import utcnow
from threadline.config import get_settings
from threadline.identity import merge_profiles, unmerge
from threadline.privacy import Actor, record
from threadline.profiles import GOLDEN_RULES_KEY, recompute_golden

profiles = typer.Typer(
    help="Customer profiles: merge two, undo a merge, re-pick shown traits.", no_args_is_help=True
)
CLI = Actor(None, user_agent="threadline cli")


@profiles.command("merge")
@one_line_errors
def profiles_merge(
    survivor: str = typer.Argument(..., help="The profile that keeps its ID."),
    merged: str = typer.Argument(..., help="The profile merged into it."),
    reason: str = typer.Option(..., help="Why they are one person; the lineage shows it."),
    force: bool = typer.Option(False, help="Merge even past merge protection's limits (two user ids)."),
) -> None:
    """Merge profile MERGED into SURVIVOR, as a steward; prints the merge's id (for `unmerge`)."""
    now = utcnow()
    with database() as db:
        info = merge_profiles(
            db,
            survivor,
            merged,
            trigger="steward",
            actor_user_id=None,
            rule=None,
            reason=reason,
            now=now,
            force=force,
            settings=get_settings(),
        )
        details = {"action": "merge", "merge_id": info.id, "survivor_id": survivor, "merged_id": merged}
        for party in (survivor, merged):
            record(db, CLI, "change", "profile", party, at=now, details={**details, "via": "cli"})
    print(f"merge {info.id}: {merged} merged into {survivor}")


@profiles.command("unmerge")
@one_line_errors
def profiles_unmerge(
    merge_id: int = typer.Argument(..., help="The merge's id (the profile's merged_from lists them)."),
    reason: str = typer.Option("", help="Why they are two people; the lineage shows it."),
) -> None:
    """Undo a merge: both profiles come back as they were, with what arrived for each since."""
    now = utcnow()
    with database() as db:
        done = unmerge(db, merge_id, actor_user_id=None, now=now, reason=reason, settings=get_settings())
        details = {
            "action": "unmerge",
            "merge_id": merge_id,
            "survivor_id": done.live_survivor_id,
            "restored_id": done.restored_id,
            "via": "cli",
        }
        for party in (done.live_survivor_id, done.restored_id):
            record(db, CLI, "change", "profile", party, at=now, details=details)
    print(
        f"unmerged {done.restored_id} from {done.live_survivor_id}: {done.events} events, "
        f"{done.identities} identities, {done.trait_history} trait changes went back"
    )


@profiles.command("recompute-traits")
@one_line_errors
def profiles_recompute_traits(
    batch_size: int = typer.Option(500, min=1, max=5000, help="Profiles per transaction."),
) -> None:
    """Choose again what every customer shows for each trait, under the golden record's rules as they
    are now (rules apply to new messages on their own; run this after changing them)."""
    with (
        database() as db,
        progress_bar(MofNCompleteColumn(), TimeRemainingColumn()) as progress,
    ):
        task = progress.add_task("re-picking traits", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = recompute_golden(db, batch_size=batch_size, progress=report)
        details = {"action": "recompute_traits", "profiles": result.profiles, "changed": result.changed}
        record(db, CLI, "change", "workspace_settings", GOLDEN_RULES_KEY, at=utcnow(), details=details)
    print(f"{result.profiles:,} profiles looked at, {result.changed:,} changed")
