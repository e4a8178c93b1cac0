"""Segment evaluation at scale: representative segments compiled by `threadline.segments`' compiler
against the same audiences written by hand in SQL, in the same run on the same data set.

Data: `large_dataset.build` (1,000,000 profiles / 10,000,000 events by default; built once, then reused).
For each segment two measures, each for the compiled and the hand-written query:
- count: `SELECT count(*)` of the live profiles the condition selects (uncapped);
- members: the ids of those profiles fetched to this process, as `recompute` materialises them.
Each query runs once to warm the caches, then `--repeat` times; the median is reported. The compiled and
the hand-written answers must agree (the run says so when they do not). Goal (issue 6): compiled within
1.5x of hand-written.

    .venv/bin/python bench/segment_eval.py --database postgresql --pg-url postgresql://127.0.0.1/bench
    .venv/bin/python bench/segment_eval.py --profiles 10000 --events 100000 --no-results   # a quick try
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

import common
import large_dataset
from threadline.segments.compiler import Compiler
from threadline.segments.definitions import validate_definition
from threadline.storage import Database
from threadline.storage.models import Profile

GOAL = 1.5


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    definition: dict[str, Any]
    hand: Callable[[str, datetime], str]  # dialect, now -> SELECT of the member ids


# Hand-written SQL, as someone who knows the schema would write each audience for each database.


def _text(dialect: str, column: str, key: str) -> str:
    if dialect == "postgresql":
        return f"{column} ->> '{key}'"
    return f"json_extract({column}, '$.{key}')"


def _positive_number(dialect: str, column: str, key: str) -> str:
    """column[key] when it is a JSON number above 0, else NULL (the purchase rule's amount)."""
    if dialect == "postgresql":
        value = f"({column} -> '{key}')"
        return f"CASE WHEN jsonb_typeof({value}) = 'number' AND {value}::float8 > 0 THEN {value}::float8 END"
    return (
        f"CASE WHEN json_type({column}, '$.{key}') IN ('integer', 'real') "
        f"AND json_extract({column}, '$.{key}') > 0 THEN json_extract({column}, '$.{key}') END"
    )


def _amount(dialect: str) -> str:
    return (
        f"COALESCE({_positive_number(dialect, 'properties', 'revenue')}, "
        f"{_positive_number(dialect, 'properties', 'total')})"
    )


def _at(dialect: str, moment: datetime) -> str:
    if dialect == "sqlite":
        return f"'{moment.isoformat(' ', 'microseconds')}'"
    return f"TIMESTAMP '{moment.isoformat(' ')}'"


def _trait_plan(dialect: str, now: datetime) -> str:
    return (
        f"SELECT id FROM profiles WHERE merged_into IS NULL AND {_text(dialect, 'traits', 'plan')} = 'gold'"
    )


def _viewed_audio(dialect: str, now: datetime) -> str:
    return (
        "SELECT p.id FROM profiles p JOIN (SELECT profile_id FROM events "
        f"WHERE name = 'Product Viewed' AND timestamp >= {_at(dialect, now - timedelta(days=30))} "
        f"AND {_text(dialect, 'properties', 'category')} = 'Electronics/Audio' "
        "GROUP BY profile_id HAVING count(*) >= 3) e ON e.profile_id = p.id WHERE p.merged_into IS NULL"
    )


def _no_order_90(dialect: str, now: datetime) -> str:
    return (
        "SELECT p.id FROM profiles p WHERE p.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM events e "
        "WHERE e.profile_id = p.id AND e.name = 'Order Completed' "
        f"AND e.timestamp >= {_at(dialect, now - timedelta(days=90))})"
    )


def _spend_500(dialect: str, now: datetime) -> str:
    return (
        "SELECT p.id FROM profiles p JOIN (SELECT profile_id FROM events "
        "WHERE type = 'track' AND name = 'Order Completed' "
        f"GROUP BY profile_id HAVING sum({_amount(dialect)}) > 500) s ON s.profile_id = p.id "
        "WHERE p.merged_into IS NULL"
    )


def _nested(dialect: str, now: datetime) -> str:
    opted_in = (
        "traits -> 'marketing_opt_in' = 'true'::jsonb"
        if dialect == "postgresql"
        else "json_type(traits, '$.marketing_opt_in') = 'true'"
    )
    vip = (
        "tags @> '[\"vip\"]'::jsonb"
        if dialect == "postgresql"
        else "EXISTS (SELECT 1 FROM json_each(p.tags) WHERE value = 'vip')"
    )
    return (
        f"SELECT p.id FROM profiles p WHERE p.merged_into IS NULL AND {opted_in} AND NOT ({vip}) AND ("
        "EXISTS (SELECT 1 FROM events e WHERE e.profile_id = p.id AND e.name = 'Checkout Started' "
        f"AND e.timestamp >= {_at(dialect, now - timedelta(days=7))}) "
        "OR p.id IN (SELECT profile_id FROM events WHERE type = 'track' AND name = 'Order Completed' "
        f"AND {_amount(dialect)} IS NOT NULL GROUP BY profile_id HAVING count(*) >= 3))"
    )


CASES = (
    Case("trait: plan is gold", {"type": "trait", "key": "plan", "op": "eq", "value": "gold"}, _trait_plan),
    Case(
        "Product Viewed >= 3 times in 30 days, category Electronics/Audio",
        {
            "type": "event",
            "name": "Product Viewed",
            "at_least": 3,
            "within_days": 30,
            "where": [{"key": "category", "op": "eq", "value": "Electronics/Audio"}],
        },
        _viewed_audio,
    ),
    Case(
        "did not Order Completed in 90 days",
        {"type": "event", "name": "Order Completed", "did": False, "within_days": 90},
        _no_order_90,
    ),
    Case(
        "computed: total spend > 500",
        {"type": "computed", "trait": "total_spend", "op": "gt", "value": 500},
        _spend_500,
    ),
    Case(
        "nested: opted in AND (checkout in 7 days OR >= 3 orders) AND NOT vip",
        {
            "all": [
                {"type": "trait", "key": "marketing_opt_in", "op": "eq", "value": True},
                {
                    "any": [
                        {"type": "event", "name": "Checkout Started", "within_days": 7},
                        {"type": "computed", "trait": "order_count", "op": "gte", "value": 3},
                    ]
                },
                {"not": {"type": "tag", "value": "vip"}},
            ]
        },
        _nested,
    ),
)


@dataclass(slots=True)
class Timed:
    seconds: list[float] = field(default_factory=list)
    answer: int | None = None
    timed_out: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    def show(self, timeout: float) -> str:
        return f"> {timeout:g}" if self.timed_out else f"{self.median:.2f}"


def _time(conn: Connection, run: Callable[[], int], repeat: int) -> Timed:
    timed = Timed()
    for attempt in range(repeat + 1):  # the first run warms the caches and is not counted
        start = time.perf_counter()
        try:
            answer = run()
        except (OperationalError, DBAPIError) as error:
            if "cancel" in str(error).lower() or "interrupt" in str(error).lower():
                conn.rollback()
                timed.timed_out = True
                return timed
            raise
        elapsed = time.perf_counter() - start
        if attempt:
            timed.seconds.append(elapsed)
        timed.answer = answer
    return timed


def _set_timeout(conn: Connection, dialect: str, seconds: float) -> None:
    if dialect == "postgresql":
        conn.exec_driver_sql(f"SET statement_timeout = {int(seconds * 1000)}")
        return
    raw = conn.connection.dbapi_connection
    deadline: list[float] = [0.0]

    def check() -> int:
        return 1 if deadline[0] and time.perf_counter() > deadline[0] else 0

    raw.set_progress_handler(check, 100_000)  # type: ignore[union-attr]
    conn.info["deadline"] = deadline


def _arm(conn: Connection, seconds: float) -> None:
    if "deadline" in conn.info:
        conn.info["deadline"][0] = time.perf_counter() + seconds


def evaluate(
    conn: Connection, dialect: str, now: datetime, case: Case, args: argparse.Namespace
) -> dict[str, Any]:
    compiler = Compiler(dialect, now, lambda _segment: None)
    condition = compiler.condition(validate_definition(case.definition))
    members = select(Profile.id).where(Profile.merged_into.is_(None), condition)
    count = select(func.count()).select_from(members.subquery())
    hand = case.hand(dialect, now)
    hand_count = text(f"SELECT count(*) FROM ({hand}) AS members")

    def run(query: Any, scalar: bool) -> Callable[[], int]:
        def go() -> int:
            _arm(conn, args.timeout)
            result = conn.execute(query)
            return int(result.scalar() or 0) if scalar else len(result.scalars().all())

        return go

    if args.explain:
        compiled = members.compile(conn, compile_kwargs={"literal_binds": True})
        print(f"\n-- {case.name}: compiled\n{compiled}\n-- hand-written\n{hand}\n", flush=True)
    figures = {
        "compiled count": _time(conn, run(count, True), args.repeat),
        "hand count": _time(conn, run(hand_count, True), args.repeat),
        "compiled members": _time(conn, run(members, False), args.repeat),
        "hand members": _time(conn, run(text(hand), False), args.repeat),
    }
    answers = {k: v.answer for k, v in figures.items() if not v.timed_out}
    return {"figures": figures, "agree": len(set(answers.values())) <= 1, "answers": answers}


def _ratio(compiled: Timed, hand: Timed) -> str:
    if compiled.timed_out or hand.timed_out:
        return "n/a"
    return f"{compiled.median / hand.median:.2f}"


def report(backend: common.Backend, args: argparse.Namespace, data: Any, results: list[Any]) -> str:
    rows, worst = [], 0.0
    for case, result in zip(CASES, results, strict=True):
        f = result["figures"]
        members = next(iter(result["answers"].values()), None)
        for measure in ("count", "members"):
            compiled, hand = f[f"compiled {measure}"], f[f"hand {measure}"]
            ratio = _ratio(compiled, hand)
            if ratio != "n/a":
                worst = max(worst, float(ratio))
            within = "n/a" if ratio == "n/a" else ("yes" if float(ratio) <= GOAL else "**no**")
            rows.append(
                [
                    case.name if measure == "count" else "",
                    measure,
                    "" if members is None else f"{members:,}",
                    compiled.show(args.timeout),
                    hand.show(args.timeout),
                    ratio,
                    within,
                ]
            )
        if not result["agree"]:
            rows.append([case.name, "**answers differ**", str(result["answers"]), "", "", "", ""])
    header = ["segment", "measure", "members", "compiled s", "hand-written s", "ratio", f"<= {GOAL:g}x"]
    verdict = "MET" if worst <= GOAL else "NOT MET"
    build = "built by this run" if data.built else "reused from an earlier run"
    return "\n\n".join(
        [
            f"## Segment evaluation: {backend.name}",
            f"`bench/segment_eval.py --database {backend.name} --profiles {data.profiles} "
            f"--events {data.events} --seed {data.seed} --repeat {args.repeat}`: "
            f"{data.events:,} events, {data.live_profiles:,} live profiles ({data.profiles:,} in all), "
            f"{data.identities:,} identities, from `bench/large_dataset.py` ({build}, bulk-loaded, "
            f"analysed); now = {data.now:%Y-%m-%d}. Each segment through `Compiler.condition` (count: "
            "`SELECT count(*)` of the live profiles selected; members: their ids fetched, as `recompute` "
            "does) against the same audience hand-written in SQL on the same connection; median of "
            f"{args.repeat} runs after one warm-up run; timeout {args.timeout:g} s per query. Only the "
            "migrations' indexes (events: `(profile_id, timestamp, id)`). The machine is shared: other "
            "engineers' tests and benchmarks may have run at the same time, so single figures can be "
            "noisy; the ratios compare queries run back to back.",
            common.machine_facts([backend]),
            common.table(header, rows),
            f"Goal (issue 6): compiled within {GOAL:g}x of hand-written SQL. Worst ratio {worst:.2f}: "
            f"{verdict}.",
        ]
    )


def run_backend(backend: common.Backend, args: argparse.Namespace) -> str:
    data = large_dataset.build(backend.url, args.profiles, args.events, args.seed)
    print(
        f"  {backend.name}: data set {'built' if data.built else 'reused'} ({data.seconds:,.0f} s)",
        flush=True,
    )
    db = Database(backend.url)
    results = []
    try:
        with db.engine.connect() as conn:
            _set_timeout(conn, backend.name, args.timeout)
            for case in CASES:
                print(f"  {backend.name}: {case.name} ...", flush=True)
                result = evaluate(conn, backend.name, data.now, case, args)
                for measure, timed in result["figures"].items():
                    print(f"    {measure}: {timed.show(args.timeout)} s, answer {timed.answer}", flush=True)
                results.append(result)
                conn.rollback()
    finally:
        db.dispose()
    return report(backend, args, data, results)


def main() -> None:
    args = common.parser(__doc__ or "")
    large_dataset.add_arguments(args, str(common.DATA))
    args.add_argument("--timeout", type=float, default=600.0, help="seconds before a query is cancelled")
    args.add_argument("--explain", action="store_true", help="print the compiled and hand-written SQL")
    options = args.parse_args()
    for backend in large_dataset.backends_for(options, "segment_eval"):
        report_text = run_backend(backend, options)
        print(report_text, flush=True)
        if not options.no_results:
            common.write_section(f"segments:{backend.name}", report_text)


if __name__ == "__main__":
    main()
