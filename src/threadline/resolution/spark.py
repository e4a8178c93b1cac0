"""The matching model on Spark, for more records than one machine holds: `score_pairs_spark`.

The same model as `threadline.resolution.model.score_pairs`, run by Splink's Spark backend on a
caller's SparkSession:

- records are prepared by `threadline.resolution.blocking.prepare` itself, in DuckDB inside each Spark
  task (`mapInArrow`), a partition at a time: one definition of the prepared columns, and the name lookups
  (pypinyin) run on the executors. Executors therefore need threadline installed, as the driver has it.
- the candidate pairs are `blocking.candidate_pairs_sql("spark")`: the same blocking keys and block limit.
- comparisons are `comparisons.COMPARISONS` translated to Spark SQL (`comparisons.in_spark`); Jaro-Winkler
  comes from the jar shipped inside Splink (`splink.backends.spark.similarity_jar_location()`), which
  the session must load (`spark.jars`); nothing is downloaded.
- training and scoring are `model.train_and_predict`: the same steps, seeds and fallbacks.

The record id Splink sees (`rid`) is `unique_id` itself here (DuckDB numbers the records in `unique_id`
order instead, which needs one global sort), so pairs come out in the same left/right order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import duckdb
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.functions import col
from splink.backends.spark import SparkAPI

from threadline.resolution.blocking import as_table, candidate_pairs_sql, prepare
from threadline.resolution.model import SEED, Backend, Progress, ScoredPair, scored_pairs, train_and_predict

__all__ = ["score_pairs_spark"]

# A record with every column filled: preparing it gives the prepared table's schema.
_SCHEMA_PROBE = {
    "unique_id": "probe",
    "first_name": "Ann",
    "last_name": "Lee",
    "full_name": "Ann Lee",
    "birth_date": "1980-01-02",
    "email": "ann@example.com",
    "phone": "+15555550100",
    "street": "1 Main Street",
    "postcode": "12345",
    "city": "Springfield",
}


def score_pairs_spark(
    records: DataFrame | pa.Table | Iterable[dict[str, str | None]],
    *,
    spark: SparkSession,
    threshold: float = 0.5,
    progress: Progress | None = None,
) -> list[ScoredPair]:
    """`threadline.resolution.model.score_pairs` on Spark: the pairs with a match probability >= `threshold`.

    `records` is a Spark DataFrame (say, read from Parquet) or what `score_pairs` takes, with the columns
    of `RECORD_COLUMNS`. The session must have Splink's similarity jar loaded (docs/resolution.md, "Past
    one machine: Spark"). Intermediate tables are kept with `persist`, or written as Parquet under the
    session's checkpoint directory when one is set. The pairs come back to the driver, sorted.
    """
    report = progress or _silent
    report("preparing records", 0.0)
    frame = records if isinstance(records, DataFrame) else spark.createDataFrame(as_table(records))
    prepared = _prepared(spark, frame)
    cached = [prepared]
    try:
        count = prepared.count()
        report("blocking", 0.1)
        if count < 2:
            report("done", 1.0)
            return []
        pairs = spark.sql(candidate_pairs_sql("spark")).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(pairs)
        pairs.createOrReplaceTempView("candidate_pairs")
        if pairs.count() == 0:
            report("done", 1.0)
            return []
        table, model = train_and_predict(_spark_backend(spark), count, threshold=threshold, report=report)
    finally:
        for table_ in cached:
            table_.unpersist()
    scored = scored_pairs(table, model)
    report("done", 1.0)
    return scored


def _silent(stage: str, fraction: float) -> None:
    return None


def _prepared(spark: SparkSession, records: DataFrame) -> DataFrame:
    """The view `prepared`: `blocking.prepare` run on each partition of the records, `rid` = `unique_id`."""
    missing = [column for column in _SCHEMA_PROBE if column not in records.columns]
    if "unique_id" in missing:
        raise ValueError("records need a unique_id")
    columns = [f"CAST({c} AS STRING) AS {c}" for c in _SCHEMA_PROBE if c not in missing]
    columns += [f"CAST(NULL AS STRING) AS {c}" for c in missing]
    schema = _prepared_schema(_SCHEMA_PROBE)
    ids = records.selectExpr(*columns)
    # Checked here as `prepare` checks, which sees one partition only.
    missing_ids, repeated_ids = ids.selectExpr(
        "count(*) - count(unique_id)", "count(unique_id) - count(DISTINCT unique_id)"
    ).first() or (0, 0)
    if missing_ids or repeated_ids:
        raise ValueError(f"records need distinct unique_ids: {missing_ids} missing, {repeated_ids} repeated")

    names = schema.names

    def prepare_partition(rows: Iterable[Row]) -> Iterator[tuple[Any, ...]]:
        # Rows rather than mapInArrow, which would need pandas on every node for no other use.
        table = as_table([row.asDict() for row in rows])
        if table.num_rows == 0:
            return
        con = duckdb.connect(":memory:")
        try:
            prepare(con, table)
            prepared = con.sql("SELECT * FROM prepared").to_arrow_table().cast(schema)
        finally:
            con.close()
        columns = [prepared.column(name).to_pylist() for name in names]
        yield from zip(*columns, strict=True)

    frame = (
        spark.createDataFrame(ids.rdd.mapPartitions(prepare_partition), _spark_schema(spark, schema))
        .withColumn("rid", col("unique_id"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    frame.createOrReplaceTempView("prepared")
    return frame


def _prepared_schema(probe: dict[str, str]) -> pa.Schema:
    con = duckdb.connect(":memory:")
    try:
        prepare(con, as_table([probe]))
        return con.sql("SELECT * FROM prepared").to_arrow_table().schema
    finally:
        con.close()


def _spark_schema(spark: SparkSession, schema: pa.Schema) -> Any:
    return spark.createDataFrame(schema.empty_table()).schema


def _spark_backend(spark: SparkSession) -> Backend:
    checkpoints = spark.sparkContext.getCheckpointDir()
    db_api = SparkAPI(  # type: ignore[no-untyped-call]  # Splink leaves its __init__ unannotated
        spark_session=spark,
        break_lineage_method="parquet" if checkpoints else "persist",
        num_partitions_on_repartition=max(1, int(spark.conf.get("spark.sql.shuffle.partitions") or 200) // 2),
    )

    def sample_candidate_pairs(size: int) -> Callable[[], None]:
        pairs = spark.table("candidate_pairs")
        total = pairs.count()
        sample = pairs if total <= size else pairs.sample(fraction=size / total, seed=SEED)
        sample = sample.persist()
        sample.createOrReplaceTempView("prior_sample")

        def drop() -> None:
            spark.catalog.dropTempView("prior_sample")
            sample.unpersist()

        return drop

    return Backend(
        db_api=db_api,
        dialect="spark",
        rows=lambda sql: [tuple(row) for row in spark.sql(sql).collect()],
        arrow=lambda sql: spark.sql(sql).toArrow(),
        columns=lambda table: set(spark.table(table).columns),
        sample_candidate_pairs=sample_candidate_pairs,
    )
