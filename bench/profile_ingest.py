"""Profile the ingest path with cProfile: where does an `ingest` call spend its time?

    .venv/bin/python bench/profile_ingest.py [--database sqlite|postgresql|both] [--events N] [--batch 100]

Prints, per database, the top functions by own time and Threadline's functions by cumulative time,
and saves the raw profile to bench/.data/ingest-<database>.prof (open with `python -m pstats`).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
from typing import Any

import common
import generator
from threadline.clock import utcnow
from threadline.ingest import ingest
from threadline.storage import Database


def profile_backend(backend: common.Backend, raws: list[dict[str, Any]], batch: int) -> str:
    common.fresh_database(backend)
    db = Database(backend.url)
    settings = common.settings_for(backend.url)
    source = common.make_source(db)
    profiler = cProfile.Profile()
    try:
        profiler.enable()
        for offset in range(0, len(raws), batch):
            ingest(db, source, raws[offset : offset + batch], settings=settings, received_at=utcnow())
        profiler.disable()
    finally:
        db.dispose()
    path = common.DATA / f"ingest-{backend.name}.prof"
    profiler.dump_stats(path)
    print(f"profile saved to {path}")
    return str(path)


def show(path: str, sort: str, limit: int, restrict: str = "") -> str:
    """The top `limit` rows by `sort`; with `restrict`, only functions whose path matches it."""
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    if restrict:
        stats.sort_stats(sort).print_stats(restrict, limit)
        return re.sub(r"\S*/src/threadline/", "", out.getvalue())
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    return out.getvalue()


def main() -> None:
    args = common.parser(__doc__ or "")
    args.add_argument("--events", type=int, default=20_000)
    args.add_argument("--customers", type=int, default=4_000)
    args.add_argument("--batch", type=int, default=100)
    args.add_argument("--top", type=int, default=30)
    options = args.parse_args()
    raws = list(generator.messages(options.customers, options.events))
    for backend in common.backends(options, "profile"):
        path = profile_backend(backend, raws, options.batch)
        print(f"===== {backend.name}: top {options.top} by own time =====")
        print(show(path, "tottime", options.top))
        print(f"===== {backend.name}: threadline functions by cumulative time =====")
        print(show(path, "cumulative", options.top, "src/threadline/"))


if __name__ == "__main__":
    main()
