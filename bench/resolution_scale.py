"""Time and memory of `score_pairs` (identity resolution) on 100,000 and 1,000,000 generated profiles.

    .venv/bin/python bench/resolution_scale.py [--profiles 100000 1000000] [--seed 11] [--no-results]

Each size runs in a fresh process (so its peak RSS is its own): the generated records (realistic mode,
`bench/resolution_generator.py`, cached in `bench/.data/`) are read from Parquet, then `score_pairs`
trains and scores them at threshold 0.5; its progress callback times each stage. Floor, in the same
process on the same records: DuckDB loading the rows into a table and counting the pairs of a plain
self-join on email, on phone, and on last name + birth date (blocking without any normalising, training
or scoring). Goal (issue 8): 1,000,000 profiles in under 2 minutes and 6 GB.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from typing import Any

import duckdb
import pyarrow as pa

import common
import resolution_generator
from threadline.resolution.model import score_pairs

GOAL_PROFILES, GOAL_SECONDS, GOAL_MB = 1_000_000, 120.0, 6 * 1024


def floor(table: pa.Table) -> tuple[float, float, int]:
    """Seconds to load the rows into DuckDB, seconds to count the plain self-join pairs, and the count."""
    con = duckdb.connect()
    try:
        con.register("source", table)
        start = time.perf_counter()
        con.execute("CREATE TABLE records AS SELECT * FROM source").fetchall()
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        rows = con.execute(
            """
            SELECT count(*) FROM (
                SELECT l.unique_id, r.unique_id FROM records l JOIN records r
                    ON l.email = r.email AND l.unique_id < r.unique_id
                UNION
                SELECT l.unique_id, r.unique_id FROM records l JOIN records r
                    ON l.phone = r.phone AND l.unique_id < r.unique_id
                UNION
                SELECT l.unique_id, r.unique_id FROM records l JOIN records r
                    ON l.last_name = r.last_name AND l.birth_date = r.birth_date AND l.unique_id < r.unique_id
            )
            """
        ).fetchall()
        counted = time.perf_counter() - start
    finally:
        con.close()
    return loaded, counted, int(rows[0][0])


def worker(profiles: int, seed: int) -> dict[str, Any]:
    """One size, in this process: floors first, then score_pairs with its stages timed."""
    table = resolution_generator.load(profiles, seed)
    loaded, joined, join_pairs = floor(table)
    stages: list[tuple[str, float]] = []
    common.reset_peak_rss()
    start = time.perf_counter()
    pairs = score_pairs(
        table, threshold=0.5, progress=lambda stage, _: stages.append((stage, time.perf_counter()))
    )
    seconds = time.perf_counter() - start
    peak = common.peak_rss_mb()
    marks = [(name, at - start) for name, at in stages]
    durations = {
        name: (marks[i + 1][1] if i + 1 < len(marks) else seconds) - at for i, (name, at) in enumerate(marks)
    }
    return {
        "profiles": profiles,
        "seconds": seconds,
        "peak_mb": peak,
        "pairs": len(pairs),
        "stages": durations,
        "floor_load": loaded,
        "floor_join": joined,
        "floor_join_pairs": join_pairs,
        "cpu": common.cpu_seconds(),
        "load_average": os.getloadavg()[0],
    }


def report(runs: list[dict[str, Any]], command: str) -> str:
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("splink", "duckdb"))
    stage_names = list(dict.fromkeys(name for run in runs for name in run["stages"] if name != "done"))
    summary = common.table(
        ["profiles", "score_pairs s", "peak RSS MiB", "pairs >= 0.5", "floor: load rows s",
         "floor: plain self-join count s (pairs)", "load average (1 min) at the end"],
        [
            [f"{r['profiles']:,}", f"{r['seconds']:.1f}", f"{r['peak_mb']:,.0f}", f"{r['pairs']:,}",
             f"{r['floor_load']:.2f}", f"{r['floor_join']:.2f} ({r['floor_join_pairs']:,})",
             f"{r['load_average']:.2f}"]
            for r in runs
        ],
    )  # fmt: skip
    stages = common.table(
        ["profiles", *stage_names],
        [[f"{r['profiles']:,}", *(f"{r['stages'].get(n, 0.0):.1f}" for n in stage_names)] for r in runs],
    )
    goal = next((r for r in runs if r["profiles"] == GOAL_PROFILES), None)
    if goal is None:
        verdict = f"Goal (issue 8): {GOAL_PROFILES:,} profiles in < 2 min and < 6 GB: not run here."
    else:
        met = goal["seconds"] < GOAL_SECONDS and goal["peak_mb"] < GOAL_MB
        verdict = (
            f"Goal (issue 8): {GOAL_PROFILES:,} profiles in < 2 min and < 6 GB: {goal['seconds']:.0f} s, "
            f"{goal['peak_mb'] / 1024:.1f} GiB, {'MET' if met else 'NOT MET'}."
        )
    return "\n\n".join(
        [
            "## Identity resolution: scale",
            f"`{command}`: generated profiles (realistic mode), one fresh process per size. `score_pairs` at "
            "threshold 0.5 includes everything: preparing and blocking, u sampling (2,000,000 pairs), two "
            "EM sessions (at most 1,000,000 pairs each), refitting the prior, scoring every candidate "
            "pair, and building the Python results. Floor: DuckDB loading the same rows, and counting the "
            "pairs of a plain self-join on email, phone, and last name + birth date. Peak RSS is the "
            "process's VmHWM during `score_pairs` (input table included).",
            common.machine_facts([]) + f" {versions}.",
            summary,
            "Seconds per stage (from the progress callback):",
            stages,
            verdict,
        ]
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--profiles", type=int, nargs="+", default=[100_000, 1_000_000])
    args.add_argument("--seed", type=int, default=11)
    args.add_argument("--no-results", action="store_true", help="print figures, do not touch RESULTS.md")
    args.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    options = args.parse_args()
    if options.worker:
        print(json.dumps(worker(options.worker, options.seed)))
        return
    runs = []
    for profiles in options.profiles:
        resolution_generator.load(profiles, options.seed)  # generate (and cache) outside the timed process
        command = [sys.executable, __file__, "--worker", str(profiles), "--seed", str(options.seed)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        run = json.loads(output.strip().splitlines()[-1])
        print(
            f"{profiles:,} profiles: {run['seconds']:.1f} s, peak {run['peak_mb']:,.0f} MiB, {run['stages']}"
        )
        runs.append(run)
    text = report(runs, f"bench/resolution_scale.py --profiles {' '.join(map(str, options.profiles))} "
                        f"--seed {options.seed}")  # fmt: skip
    print(text)
    if not options.no_results:
        common.write_section("resolution:scale", text)


if __name__ == "__main__":
    main()
