"""The probabilistic matching model: which customer records are the same person, and why.

`score_pairs` is a Fellegi-Sunter model run by Splink on an in-memory DuckDB database:

1. the records are prepared and paired by blocking keys (`threadline.resolution.blocking`);
2. u probabilities (how often unrelated records agree at each level) come from `U_MAX_PAIRS` random
   pairs (seeded), m probabilities (how often one person's records do) from expectation maximisation,
   run once blocked on the name and once on the birth date, each on at most `EM_MAX_PAIRS` pairs;
3. a level training could not estimate keeps its fallback from `threadline.resolution.comparisons`, so
   a data set of a few records is scored with sensible weights rather than none;
4. the prior (the chance two random records are one person) starts from near-certain pairs (same
   email, or same name and birth date, taken as `DETERMINISTIC_RECALL` of all matches) and is then
   refitted to what the trained model expects among the candidate pairs (`_refit_prior`);
5. every candidate pair is scored; those at or above `threshold` come back with their evidence.

Nothing is fetched at run time: no Splink data set, no DuckDB extension.

The steps after blocking are written once for any of Splink's backends (`Backend`, `train_and_predict`):
`threadline.resolution.spark` runs the same model on Spark.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from threadline.resolution.blocking import RECORD_COLUMNS, as_table, candidate_pairs, prepare
from threadline.resolution.comparisons import COMPARISONS, Dialect

__all__ = [
    "RECORD_COLUMNS",
    "Backend",
    "Evidence",
    "ScoredPair",
    "cluster",
    "score_pairs",
    "train_and_predict",
]

SEED = 42
DETERMINISTIC_RECALL = 0.6  # share of true pairs with the same email, or same name and birth date
U_MAX_PAIRS = 2_000_000
# Fewer records than this: keep the fallback u probabilities. Among few records a random pair is too
# often a true match (two of ten records of one person), which would count agreement as common.
U_MIN_RECORDS = 1_000
EM_MAX_PAIRS = 1_000_000
EM_MIN_PAIRS = 400  # fewer pairs in a training block than this: keep the fallback m probabilities
EM_BLOCKS = ("name_key", "birth_date")
PRIOR_SAMPLE = 300_000  # candidate pairs scored to fit the prior
# What each comparison shows as the two records' values on the review page.
SHOWN = {"name": "name_display", "birth_date": "birth_date", "email": "email", "phone": "phone"}
SHOWN_DEFAULT = "address_display"

Progress = Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class Backend:
    """Where the model runs: Splink's database API over the tables `prepared` and `candidate_pairs`, and the
    few queries the training steps run themselves."""

    db_api: Any  # Splink's DuckDBAPI or SparkAPI
    dialect: Dialect
    rows: Callable[[str], list[tuple[Any, ...]]]  # a query's rows, fully read
    arrow: Callable[[str], pa.Table]  # a query's result as an Arrow table
    columns: Callable[[str], set[str]]  # a table's column names
    # Creates `prior_sample`: at most that many candidate pairs, chosen with SEED; returns how to drop it.
    sample_candidate_pairs: Callable[[int], Callable[[], None]]

    def scalar(self, sql: str) -> int:
        rows = self.rows(sql)
        return int(rows[0][0] or 0) if rows else 0


@dataclass(frozen=True, slots=True)
class Evidence:
    """One comparison's contribution to a pair's score, for the review page's waterfall."""

    comparison: str  # "name", "birth_date", "email", "phone", "address"
    level: str  # the level reached, e.g. "exact", "both parts Jaro-Winkler >= 0.9", "null"
    weight: float  # log2 Bayes factor, term-frequency adjustment included
    left: str | None
    right: str | None


@dataclass(frozen=True, slots=True)
class ScoredPair:
    left_id: str  # left_id < right_id
    right_id: str
    match_probability: float
    match_weight: float  # prior_weight + the sum of the evidence weights
    prior_weight: float  # log2 of the prior odds: where the waterfall starts
    evidence: tuple[Evidence, ...]


def score_pairs(
    records: pa.Table | Iterable[dict[str, str | None]],
    *,
    threshold: float = 0.5,
    progress: Progress | None = None,
) -> list[ScoredPair]:
    """Train the model on `records` and return the pairs with a match probability >= `threshold`.

    `records` have the columns of `RECORD_COLUMNS` (missing ones count as empty; others are ignored).
    Pairs come sorted by (left_id, right_id).
    """
    report = progress or _silent
    report("preparing records", 0.0)
    con = duckdb.connect(":memory:")
    try:
        count = prepare(con, as_table(records))
        report("blocking", 0.1)
        if count < 2 or candidate_pairs(con) == 0:
            report("done", 1.0)
            return []
        table, model = train_and_predict(_duckdb_backend(con), count, threshold=threshold, report=report)
    finally:
        con.close()  # DuckDB's memory goes back before the pairs become Python objects
    scored = scored_pairs(table, model)
    report("done", 1.0)
    return scored


def train_and_predict(
    backend: Backend, count: int, *, threshold: float, report: Progress
) -> tuple[pa.Table, dict[str, Any]]:
    """Train the model on `prepared` (`count` records), score `candidate_pairs`: the pairs at or above
    `threshold` with the columns `scored_pairs` reads, and the trained model."""
    db_api = backend.db_api
    with _splink_errors_only():
        model = _train(backend, count, report)
        report("scoring pairs", 0.7)
        scorer = Linker(db_api.register("prepared", table_name="scoring"), model, log_level=None)
        scorer.table_management.register_blocked_pairs_for_predict(
            db_api.register("candidate_pairs", table_name="blocked")
        )
        predictions = scorer.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    report("collecting evidence", 0.9)
    return _evidence_table(backend, predictions.physical_name), model


def _duckdb_backend(con: duckdb.DuckDBPyConnection) -> Backend:
    def sample_candidate_pairs(size: int) -> Callable[[], None]:
        con.execute(
            f"CREATE OR REPLACE TABLE prior_sample AS SELECT * FROM candidate_pairs "
            f"USING SAMPLE reservoir({size} ROWS) REPEATABLE ({SEED})"
        ).fetchall()

        def drop() -> None:
            con.execute("DROP TABLE prior_sample").fetchall()

        return drop

    return Backend(
        db_api=DuckDBAPI(con),
        dialect="duckdb",
        rows=lambda sql: con.execute(sql).fetchall(),
        arrow=lambda sql: con.sql(sql).to_arrow_table(),
        columns=lambda table: {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()},
        sample_candidate_pairs=sample_candidate_pairs,
    )


def cluster(pairs: Iterable[ScoredPair], threshold: float) -> list[set[str]]:
    """Connected components of the pairs with a match probability >= `threshold` (no singletons)."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        if pair.match_probability < threshold:
            continue
        for node in (pair.left_id, pair.right_id):
            parent.setdefault(node, node)
        a, b = root(pair.left_id), root(pair.right_id)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, set[str]] = {}
    for node in parent:
        groups.setdefault(root(node), set()).add(node)
    return sorted(groups.values(), key=min)


def _silent(stage: str, fraction: float) -> None:
    return None


@contextmanager
def _splink_errors_only() -> Iterator[None]:
    """Splink logs every training step and warns about levels a small data set never reaches (for which
    the fallbacks are there); only its errors are worth a caller's log."""
    splink_logger = logging.getLogger("splink")
    level = splink_logger.level
    splink_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        splink_logger.setLevel(level)


def _train(backend: Backend, count: int, report: Progress) -> dict[str, Any]:
    """The trained model as a Splink settings dictionary (see the module's docstring)."""
    db_api = backend.db_api
    settings = _settings(_sure_prior(backend, count), backend.dialect)
    linker = Linker(db_api.register("prepared", table_name="training"), settings, log_level=None)
    report("estimating u probabilities", 0.2)
    if count >= U_MIN_RECORDS:
        linker.training.estimate_u_using_random_sampling(
            max_pairs=min(U_MAX_PAIRS, count * (count - 1) // 2), seed=SEED
        )
    for number, column in enumerate(EM_BLOCKS):
        report(f"estimating m probabilities (blocked on {column})", 0.35 + 0.1 * number)
        pairs = _block_pairs(backend, column)
        if pairs >= EM_MIN_PAIRS:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(column),
                estimate_without_term_frequencies=True,
                max_pairs=EM_MAX_PAIRS if pairs > EM_MAX_PAIRS else None,
            )
    model = _with_fallbacks(linker.misc.save_model_to_json())
    report("estimating the prior", 0.6)
    model["probability_two_random_records_match"] = _refit_prior(backend, model, count)
    return model


def _sure_prior(backend: Backend, count: int) -> float:
    """A first prior: the chance two random records are one person, from pairs no one would doubt."""
    sure = backend.scalar(
        """
        SELECT count(*) FROM candidate_pairs AS c
        JOIN prepared AS l ON l.rid = c.join_key_l
        JOIN prepared AS r ON r.rid = c.join_key_r
        WHERE l.email = r.email OR (l.name_key = r.name_key AND l.birth_date = r.birth_date)
        """,
    )
    sure = max(1, sure)
    return min(0.5, sure / DETERMINISTIC_RECALL / (count * (count - 1) / 2))


def _refit_prior(backend: Backend, model: dict[str, Any], count: int) -> float:
    """The prior that agrees with the trained model: the expected number of matches among the candidate
    pairs (a sample of them, scored), over all pairs. Iterated to its fixed point, this is the EM update of
    the prior with m and u held, counting pairs that blocking never pairs as non-matches."""
    db_api = backend.db_api
    total = backend.scalar("SELECT count(*) FROM candidate_pairs")
    drop_sample = backend.sample_candidate_pairs(PRIOR_SAMPLE)
    sampled = backend.scalar("SELECT count(*) FROM prior_sample")
    linker = Linker(db_api.register("prepared", table_name="prior_scoring"), model, log_level=None)
    linker.table_management.register_blocked_pairs_for_predict(
        db_api.register("prior_sample", table_name="prior_blocked")
    )
    scored = linker.inference.predict(warning_mode="never")
    start = float(model["probability_two_random_records_match"])
    start_weight = math.log2(start / (1 - start))
    histogram = backend.rows(
        f"SELECT round(match_weight - {start_weight}, 2) AS evidence, count(*) AS pairs "
        f"FROM {scored.physical_name} GROUP BY 1"
    )
    scored.drop_table_from_database_and_remove_from_cache()
    drop_sample()
    all_pairs = count * (count - 1) / 2
    prior = start
    for _ in range(50):
        prior_weight = math.log2(prior / (1 - prior))
        matches = sum(n / (1 + 2.0 ** min(1000.0, -(w + prior_weight))) for w, n in histogram)
        expected = float(matches) * total / max(1, sampled)
        updated = min(0.5, max(1e-12, expected / all_pairs))
        if abs(updated - prior) <= 1e-4 * prior:
            return updated
        prior = updated
    return prior


def _block_pairs(backend: Backend, column: str) -> int:
    return backend.scalar(
        f"SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) AS n FROM prepared "
        f"WHERE {column} IS NOT NULL GROUP BY {column})",
    )


def _settings(prior: float, dialect: Dialect) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="rid",
        comparisons=[comparison.as_splink(dialect) for comparison in COMPARISONS],
        probability_two_random_records_match=prior,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["unique_id", "name_display", "address_display"],
        max_iterations=20,
    )


def _with_fallbacks(model: dict[str, Any]) -> dict[str, Any]:
    """The trained model with each unestimated m or u replaced by the fallback of its level."""
    fallbacks = {c.name: c.as_splink()["comparison_levels"] for c in COMPARISONS}
    for comparison in model["comparisons"]:
        for level, fallback in zip(
            comparison["comparison_levels"], fallbacks[comparison["output_column_name"]], strict=True
        ):
            if level.get("is_null_level"):
                continue
            for key in ("m_probability", "u_probability"):
                value = level.get(key)
                if not isinstance(value, float | int) or value <= 0:
                    level[key] = fallback[key]
    return model


def _levels(comparison: dict[str, Any]) -> dict[int, str]:
    """Splink's comparison vector values (gamma) to level labels: -1 null, then n-1 down to 0."""
    levels = comparison["comparison_levels"]
    value = sum(1 for level in levels if not level.get("is_null_level")) - 1
    labels = {}
    for level in levels:
        if level.get("is_null_level"):
            labels[-1] = "null"
        else:
            labels[value] = level.get("label_for_charts", level["sql_condition"])
            value -= 1
    return labels


def _evidence_table(backend: Backend, predictions: str) -> pa.Table:
    """The columns of Splink's predictions that a ScoredPair needs (not, for one, the parsed dates)."""
    present = backend.columns(predictions)
    wanted = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"]
    for comparison in COMPARISONS:
        shown = SHOWN.get(comparison.name, SHOWN_DEFAULT)
        for column in (f"gamma_{comparison.name}", f"mw_{comparison.name}", f"mw_tf_adj_{comparison.name}"):
            if column in present:
                wanted.append(column)
        wanted += [f"{shown}_l", f"{shown}_r"]
    return backend.arrow(f"SELECT {', '.join(dict.fromkeys(wanted))} FROM {predictions}")


def scored_pairs(table: pa.Table, model: dict[str, Any]) -> list[ScoredPair]:
    """The pairs of `train_and_predict`'s table as ScoredPairs with their evidence, by (left_id, right_id)."""
    prior = model["probability_two_random_records_match"]
    prior_weight = math.log2(prior / (1 - prior))
    labels = {c["output_column_name"]: _levels(c) for c in model["comparisons"]}
    scored = []
    for batch in table.to_batches(max_chunksize=100_000):  # Python objects for a slice at a time
        columns = []  # one list of Evidence per comparison, built column by column (the fast way)
        for comparison in COMPARISONS:
            name = comparison.name
            shown = SHOWN.get(name, SHOWN_DEFAULT)
            weight = batch.column(f"mw_{name}")
            if f"mw_tf_adj_{name}" in batch.schema.names:
                weight = pc.add(weight, batch.column(f"mw_tf_adj_{name}"))
            level = labels[name]
            columns.append(
                [
                    Evidence(name, level[gamma], w, left, right)
                    for gamma, w, left, right in zip(
                        batch.column(f"gamma_{name}").to_pylist(),
                        weight.to_pylist(),
                        batch.column(f"{shown}_l").to_pylist(),
                        batch.column(f"{shown}_r").to_pylist(),
                        strict=True,
                    )
                ]
            )
        for left, right, probability, weight, evidence in zip(
            batch.column("unique_id_l").to_pylist(),
            batch.column("unique_id_r").to_pylist(),
            batch.column("match_probability").to_pylist(),
            batch.column("match_weight").to_pylist(),
            zip(*columns, strict=True),
            strict=True,
        ):
            if left > right:  # rid order follows unique_id order; kept as a guard for other collations
                left, right = right, left
                evidence = tuple(Evidence(e.comparison, e.level, e.weight, e.right, e.left) for e in evidence)
            scored.append(ScoredPair(left, right, probability, weight, prior_weight, evidence))
    scored.sort(key=lambda pair: (pair.left_id, pair.right_id))
    return scored
