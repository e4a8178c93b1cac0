"""Accuracy of the identity-resolution model (`threadline.resolution.model.score_pairs`) on labelled data.

    .venv/bin/python bench/resolution_accuracy.py [--datasets fake_1000 historical generated easy]
        [--generated 20000] [--easy-records 10000] [--seed 1] [--no-results]

Data sets: Splink's labelled `fake_1000.csv` and `historical_figures_with_errors_50k.parquet` from
`../shared/data/splink_datasets` (read offline; `cluster` is the truth), and records from
`bench/resolution_generator.py` (realistic, and FEBRL-like "easy"; `person` is the truth). For each:
time and peak RSS of one `score_pairs` call (training included), the candidate pairs blocking produced and
the share of true pairs among them (blocking recall: what no threshold can recover), then precision,
recall and F1 at several thresholds, pairwise (the scored pairs) and by cluster (the pairs implied by
the connected components `cluster` forms, so a chain of links counts for every pair it joins).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

import common
import resolution_generator
from threadline.resolution.blocking import as_table, candidate_pairs, prepare
from threadline.resolution.model import ScoredPair, cluster, score_pairs

SPLINK_DATA = common.BENCH.parent.parent / "shared" / "data" / "splink_datasets"
THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99)
GOALS = {"easy": ("pairwise F1", 0.99), "historical": ("cluster F1", 0.85)}


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    description: str
    records: int
    true_pairs: int
    candidates: int
    candidate_recall: float
    seconds: float
    peak_rss_mb: float
    prior_weight: float
    pairwise: dict[float, Scores]
    clusters: dict[float, Scores]


# -- data sets ---------------------------------------------------------------------------------------


def _splink_file(name: str) -> Path:
    path = SPLINK_DATA / name
    if not path.exists():
        raise SystemExit(f"{path} is missing: the Splink data sets are read from ../shared/data")
    return path


def fake_1000() -> tuple[pa.Table, str]:
    path = _splink_file("fake_1000.csv")
    table = duckdb.sql(
        f"""SELECT CAST(unique_id AS VARCHAR) AS unique_id, first_name, surname AS last_name,
                   CAST(dob AS VARCHAR) AS birth_date, email, city, CAST("cluster" AS VARCHAR) AS truth
            FROM read_csv('{path}', header = true)"""
    ).to_arrow_table()
    return table, "Splink's fake_1000.csv: first_name, surname, dob, city, email"


def historical() -> tuple[pa.Table, str]:
    path = _splink_file("historical_figures_with_errors_50k.parquet")
    table = duckdb.sql(
        f"""SELECT unique_id, first_name, surname AS last_name, full_name, dob AS birth_date,
                   postcode_fake AS postcode, birth_place AS city, "cluster" AS truth
            FROM read_parquet('{path}')"""
    ).to_arrow_table()
    return table, (
        "Splink's historical_figures_with_errors_50k.parquet: first_name, surname, full_name, dob, "
        "postcode_fake as postcode, birth_place as city (no email, phone or street)"
    )


def generated(records: int, seed: int, easy: bool) -> tuple[pa.Table, str]:
    table = resolution_generator.load(records, seed, easy)
    mode = "FEBRL-like easy mode" if easy else "realistic mode"
    table = table.rename_columns([c if c != "person" else "truth" for c in table.column_names])
    return table, f"`bench/resolution_generator.py --records {records} --seed {seed}`, {mode}"


# -- measuring ---------------------------------------------------------------------------------------


def true_pairs(truth: dict[str, str]) -> set[tuple[str, str]]:
    members: dict[str, list[str]] = {}
    for record, person in truth.items():
        members.setdefault(person, []).append(record)
    pairs = set()
    for ids in members.values():
        ids.sort()
        pairs.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return pairs


def blocking_recall(table: pa.Table, truth_pairs: set[tuple[str, str]]) -> tuple[int, float]:
    """The candidate pairs `score_pairs` scores, and the share of true pairs among them."""
    con = duckdb.connect()
    try:
        prepare(con, as_table(table))
        count = candidate_pairs(con)
        found = con.execute(
            """SELECT l.unique_id, r.unique_id FROM candidate_pairs AS c
               JOIN prepared AS l ON l.rid = c.join_key_l JOIN prepared AS r ON r.rid = c.join_key_r"""
        ).fetchall()
    finally:
        con.close()
    hits = sum((a, b) in truth_pairs for a, b in found)
    return count, hits / max(1, len(truth_pairs))


def pairwise_scores(pairs: list[ScoredPair], truth: dict[str, str], total: int, threshold: float) -> Scores:
    chosen = [p for p in pairs if p.match_probability >= threshold]
    right = sum(truth[p.left_id] == truth[p.right_id] for p in chosen)
    return Scores(right / len(chosen) if chosen else 0.0, right / max(1, total))


def cluster_scores(pairs: list[ScoredPair], truth: dict[str, str], total: int, threshold: float) -> Scores:
    implied = right = 0
    for members in cluster(pairs, threshold):
        implied += len(members) * (len(members) - 1) // 2
        right += sum(n * (n - 1) // 2 for n in Counter(truth[m] for m in members).values())
    return Scores(right / implied if implied else 0.0, right / max(1, total))


def measure(name: str, load: Callable[[], tuple[pa.Table, str]]) -> Outcome:
    table, description = load()
    truth = dict(zip(table.column("unique_id").to_pylist(), table.column("truth").to_pylist(), strict=True))
    pairs_true = true_pairs(truth)
    candidates, candidate_recall = blocking_recall(table, pairs_true)
    common.reset_peak_rss()
    start = time.perf_counter()
    pairs = score_pairs(table, threshold=min(THRESHOLDS))
    seconds = time.perf_counter() - start
    peak = common.peak_rss_mb()
    total = len(pairs_true)
    return Outcome(
        name,
        description,
        table.num_rows,
        total,
        candidates,
        candidate_recall,
        seconds,
        peak,
        pairs[0].prior_weight if pairs else float("nan"),
        {t: pairwise_scores(pairs, truth, total, t) for t in THRESHOLDS},
        {t: cluster_scores(pairs, truth, total, t) for t in THRESHOLDS},
    )


# -- reporting ---------------------------------------------------------------------------------------


def _f(value: float) -> str:
    return f"{value:.4f}"


def report(outcomes: list[Outcome], command: str) -> str:
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("splink", "duckdb", "pypinyin"))
    summary = common.table(
        ["data set", "records", "true pairs", "candidate pairs", "blocking recall", "prior (log2 odds)",
         "score_pairs s", "peak RSS MiB"],
        [
            [o.name, f"{o.records:,}", f"{o.true_pairs:,}", f"{o.candidates:,}", f"{o.candidate_recall:.1%}",
             f"{o.prior_weight:.2f}", f"{o.seconds:.1f}", f"{o.peak_rss_mb:,.0f}"]
            for o in outcomes
        ],
    )  # fmt: skip
    detail = common.table(
        ["data set", "threshold", "pairwise P", "pairwise R", "pairwise F1", "cluster P", "cluster R",
         "cluster F1"],
        [
            [o.name, f"{t}", _f(o.pairwise[t].precision), _f(o.pairwise[t].recall), _f(o.pairwise[t].f1),
             _f(o.clusters[t].precision), _f(o.clusters[t].recall), _f(o.clusters[t].f1)]
            for o in outcomes
            for t in THRESHOLDS
        ],
    )  # fmt: skip
    goals = []
    for o in outcomes:
        if o.name not in GOALS:
            continue
        measure_name, goal = GOALS[o.name]
        best = max(
            THRESHOLDS,
            key=lambda t: (o.pairwise if measure_name.startswith("pairwise") else o.clusters)[t].f1,
        )
        value = (o.pairwise if measure_name.startswith("pairwise") else o.clusters)[best].f1
        at_half = (o.pairwise if measure_name.startswith("pairwise") else o.clusters)[0.5].f1
        verdict = "MET" if at_half >= goal else "NOT MET"
        goals.append(
            f"- {o.name}: {measure_name} >= {goal} at threshold 0.5: {at_half:.4f}, {verdict} "
            f"(best {value:.4f} at {best})."
        )
    sources = "\n".join(f"- {o.name}: {o.description}." for o in outcomes)
    return "\n\n".join(
        [
            "## Identity resolution: accuracy",
            f"`{command}`: one `score_pairs` call per data set (training on that data set included), "
            "pairs kept from probability 0.5. Pairwise: the scored pairs against the true pairs. Cluster: "
            "the pairs inside the connected components at the threshold. Blocking recall: true pairs "
            "among the candidate pairs, the ceiling of pairwise recall. Peak RSS is this process's VmHWM "
            "during the call (the input table included).",
            sources,
            common.machine_facts([]) + f" {versions}.",
            summary,
            detail,
            "Goals (issue 8):\n" + "\n".join(goals) if goals else "",
            "For reference, Splink's quick default setup reaches a cluster F1 of about 0.82 on the "
            "historical figures (README of the data set).",
        ]
    )


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument(
        "--datasets", nargs="+", default=["fake_1000", "historical", "generated", "easy"],
        choices=["fake_1000", "historical", "generated", "easy"],
    )  # fmt: skip
    args.add_argument("--generated", type=int, default=20_000, help="records, realistic mode")
    args.add_argument("--easy-records", type=int, default=10_000, help="records, FEBRL-like mode")
    args.add_argument("--seed", type=int, default=1)
    args.add_argument("--no-results", action="store_true", help="print figures, do not touch RESULTS.md")
    options = args.parse_args()
    loaders: dict[str, Callable[[], tuple[pa.Table, str]]] = {
        "fake_1000": fake_1000,
        "historical": historical,
        "generated": lambda: generated(options.generated, options.seed, easy=False),
        "easy": lambda: generated(options.easy_records, options.seed, easy=True),
    }
    outcomes = []
    for name in options.datasets:
        outcome = measure(name, loaders[name])
        print(
            f"{name}: {outcome.records:,} records in {outcome.seconds:.1f} s, "
            f"peak {outcome.peak_rss_mb:,.0f} MiB, blocking recall {outcome.candidate_recall:.1%}, "
            f"cluster F1 at 0.5 {outcome.clusters[0.5].f1:.4f}",
            flush=True,
        )
        outcomes.append(outcome)
    command = (
        f"bench/resolution_accuracy.py --datasets {' '.join(options.datasets)} "
        f"--generated {options.generated} --easy-records {options.easy_records} --seed {options.seed}"
    )
    text = report(outcomes, command)
    print(text)
    if not options.no_results:
        common.write_section("resolution:accuracy", text)


if __name__ == "__main__":
    main()
