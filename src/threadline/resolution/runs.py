"""One batch run of identity resolution: read profiles, score pairs, record them, merge the sure ones.

Each stage is recorded on the run's row, so a run that stopped (a killed process, a deploy) shows where;
`resume_decisions` finishes the merges of an interrupted run without scoring again: the pending pairs
above the threshold are exactly what is left to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, select

from threadline.errors import NotFound
from threadline.resolution.decisions import (
    PENDING,
    Thresholds,
    apply_auto_merges,
    get_thresholds,
    record_candidates,
)
from threadline.resolution.model import score_pairs
from threadline.resolution.records import read_profile_records
from threadline.storage import Database
from threadline.storage.models import MatchCandidate, ResolutionRun

# (stage, done, total): the CLI draws it as a progress bar, the worker logs it.
Progress = Callable[[str, float, float], None]


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    status: str
    stage: str
    started_at: datetime
    finished_at: datetime | None
    profiles: int
    pairs: int
    queued: int
    merged: int
    thresholds: dict[str, float]
    error: str | None

    @classmethod
    def of(cls, row: ResolutionRun) -> RunInfo:
        return cls(
            row.id,
            row.status,
            row.stage,
            row.started_at,
            row.finished_at,
            row.profiles,
            row.pairs,
            row.queued,
            row.merged,
            dict(row.thresholds),
            row.error,
        )


def _silent(stage: str, done: float, total: float) -> None:
    return None


def _update(db: Database, run_id: int, **values: object) -> None:
    with db.write() as session:
        row = session.get(ResolutionRun, run_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)


def run_resolution(
    db: Database,
    *,
    now: Callable[[], datetime],
    thresholds: Thresholds | None = None,
    started_by: int | None = None,
    progress: Progress | None = None,
) -> RunInfo:
    """Resolve every live profile once. Failures are recorded on the run and raised again."""
    thresholds = (thresholds or get_thresholds(db)).checked()
    report = progress or _silent
    with db.write() as session:
        row = ResolutionRun(
            status="running",
            stage="read",
            started_at=now(),
            started_by=started_by,
            thresholds=asdict(thresholds),
            profiles=0,
            pairs=0,
            queued=0,
            merged=0,
        )
        session.add(row)
        session.flush()
        run_id = row.id
    try:
        records = read_profile_records(
            db, progress=lambda done, total: report("reading profiles", done, total)
        )
        _update(db, run_id, stage="score", profiles=records.num_rows)
        pairs = score_pairs(
            records,
            threshold=thresholds.review,
            progress=lambda stage, fraction: report(f"scoring: {stage}", fraction * 100, 100),
        )
        queued = record_candidates(db, run_id, pairs, thresholds, now=now())
        _update(db, run_id, stage="decide", pairs=len(pairs), queued=queued)
        merged = _decide(db, run_id, thresholds, now, report)
    except BaseException as error:  # KeyboardInterrupt too: the row must not say "running" forever
        _update(
            db, run_id, status="failed", error=f"{type(error).__name__}: {error}"[:2000], finished_at=now()
        )
        raise
    return merged


def _decide(
    db: Database, run_id: int, thresholds: Thresholds, now: Callable[[], datetime], report: Progress
) -> RunInfo:
    merged, _held = apply_auto_merges(
        db, thresholds, now=now, progress=lambda done, total: report("merging sure matches", done, total)
    )
    with db.write() as session:
        row = session.get(ResolutionRun, run_id)
        assert row is not None
        row.merged += merged
        row.queued = int(
            session.scalar(
                select(func.count()).select_from(MatchCandidate).where(MatchCandidate.status == PENDING)
            )
            or 0
        )
        row.status, row.stage, row.finished_at, row.error = "done", "done", now(), None
        return RunInfo.of(row)


def resume_decisions(
    db: Database, *, now: Callable[[], datetime], progress: Progress | None = None
) -> RunInfo:
    """Finish the last run that did not finish: its scores are stored, only merges can be left."""
    with db.read() as session:
        row = session.scalar(select(ResolutionRun).order_by(ResolutionRun.id.desc()).limit(1))
        if row is None or row.status == "done":
            raise NotFound("run: no unfinished resolution run to resume", details={"field": "run"})
        if row.stage in ("read", "score"):
            raise NotFound(
                f"run: run {row.id} stopped while {'reading' if row.stage == 'read' else 'scoring'}, before "
                "any pair was stored; start a new run",
                details={"field": "run"},
            )
        run_id, thresholds = row.id, Thresholds(**row.thresholds)
    _update(db, run_id, status="running", error=None)
    try:
        return _decide(db, run_id, thresholds, now, progress or _silent)
    except BaseException as error:
        _update(
            db, run_id, status="failed", error=f"{type(error).__name__}: {error}"[:2000], finished_at=now()
        )
        raise


def list_runs(db: Database, limit: int = 20) -> list[RunInfo]:
    with db.read() as session:
        rows = session.scalars(select(ResolutionRun).order_by(ResolutionRun.id.desc()).limit(limit)).all()
        return [RunInfo.of(r) for r in rows]
