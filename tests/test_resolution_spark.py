"""The matching model on Spark finds what it finds on DuckDB: same pairs, same scores, same evidence.

A local SparkSession (one core, Splink's similarity jar from the installed package, nothing downloaded)
scores generated records read from Parquet, the way a cluster would read an export.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from threadline.resolution.model import ScoredPair, score_pairs
from threadline.resolution.synthetic import generate

try:
    from pyspark.sql import SparkSession
except ImportError:  # pragma: no cover - the dev extras install pyspark
    pytest.skip("pyspark is not installed (it comes with the dev extras)", allow_module_level=True)

from splink.backends.spark import similarity_jar_location

from threadline.resolution.spark import score_pairs_spark

pytestmark = pytest.mark.slow  # a Spark session and two dozen Spark jobs: half a minute or more

Pairs = dict[tuple[str, str], ScoredPair]


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    # Executors prepare records with threadline: their Python is this one. The variable, not the setting
    # spark.pyspark.python, which only spark-submit reads.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[1]")
        .appName("threadline-tests")
        .config("spark.jars", similarity_jar_location())  # Jaro-Winkler, shipped inside Splink
        .config("spark.sql.shuffle.partitions", "1")  # tiny data: one task per stage
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=ERROR")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def records() -> pa.Table:
    return generate(300, seed=3, easy=True)


@pytest.fixture(scope="module")
def on_duckdb(records: pa.Table) -> Pairs:
    return {(p.left_id, p.right_id): p for p in score_pairs(records, threshold=0.0)}


@pytest.fixture(scope="module")
def on_spark(spark: SparkSession, records: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Pairs:
    export = Path(tmp_path_factory.mktemp("export")) / "records.parquet"
    pq.write_table(records, export)
    stages: list[str] = []
    pairs = score_pairs_spark(
        spark.read.parquet(str(export)), spark=spark, threshold=0.0, progress=lambda s, _: stages.append(s)
    )
    assert stages[0] == "preparing records" and stages[-1] == "done"
    return {(p.left_id, p.right_id): p for p in pairs}


def test_spark_scores_the_pairs_duckdb_scores(on_duckdb: Pairs, on_spark: Pairs) -> None:
    assert on_spark.keys() == on_duckdb.keys()
    for key, pair in on_duckdb.items():
        twin = on_spark[key]
        assert twin.match_probability == pytest.approx(pair.match_probability, abs=1e-6)
        assert twin.prior_weight == pytest.approx(pair.prior_weight, abs=1e-6)
        assert [(e.level, e.left, e.right) for e in twin.evidence] == [
            (e.level, e.left, e.right) for e in pair.evidence
        ]


def test_evidence_adds_up_to_the_match_weight(on_spark: Pairs) -> None:
    assert on_spark
    for pair in on_spark.values():
        assert pair.left_id < pair.right_id
        total = pair.prior_weight + sum(e.weight for e in pair.evidence)
        assert total == pytest.approx(pair.match_weight, abs=1e-6)


def test_duplicates_are_found(records: pa.Table, on_spark: Pairs) -> None:
    person = dict(
        zip(records.column("unique_id").to_pylist(), records.column("person").to_pylist(), strict=True)
    )
    found = [key for key, pair in on_spark.items() if pair.match_probability >= 0.5]
    right = [key for key in found if person[key[0]] == person[key[1]]]
    assert len(right) / len(found) > 0.9
    assert person["r0000000"] == person["r0000092"]  # Lori Armstrong and her one duplicate
    assert on_spark[("r0000000", "r0000092")].match_probability > 0.99


def test_repeated_ids_are_refused(spark: SparkSession) -> None:
    row: dict[str, Any] = {"unique_id": "a", "first_name": "Ann", "last_name": "Lee"}
    with pytest.raises(ValueError, match="1 repeated"):
        score_pairs_spark([row, row | {"first_name": "Anne"}], spark=spark)
