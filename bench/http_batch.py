"""Sustained HTTP ingestion: concurrent clients POSTing /v1/batch to ONE server process.

    .venv/bin/python bench/http_batch.py [--database sqlite|postgresql|both] [--duration 30] [--concurrency 8]

Per database: a fresh migrated database with one source, one uvicorn process (`threadline.app:create_app`,
configured by THREADLINE_DATABASE_URL), then in this process an asyncio + httpx client pool:
1. GET /healthz for a few seconds: the HTTP stack's ceiling (it runs one `SELECT 1`);
2. POST /v1/batch (100 messages each, bodies generated before timing) for a warm-up, then `--duration`
   seconds measured: events/s, request latency percentiles, errors, CPU use, server peak RSS;
3. with the server stopped, the raw `executemany` insert rate of the same rows on the same database.
Goal: >= 15,000 events/s sustained.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson

import common
import generator
from threadline.storage import Database

GOAL = 15_000


class BadResponse(Exception):
    pass


Request = Callable[[httpx.AsyncClient], Awaitable[tuple[bool, int]]]


@dataclass(slots=True)
class Phase:
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    errors: int = 0
    events: int = 0
    seconds: float = 0.0
    exhausted: bool = False
    cpu: str = ""
    first_error: str = ""

    @property
    def request_rate(self) -> float:
        return self.requests / self.seconds

    @property
    def event_rate(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True, slots=True)
class Outcome:
    health: Phase
    batch: Phase
    raw_rate: float
    server_peak_rss_mb: float
    client_peak_rss_mb: float


class Bodies:
    """The pre-encoded batch bodies, handed out once each (asyncio: no lock needed)."""

    def __init__(self, bodies: list[bytes], batch: int) -> None:
        self.bodies, self.batch, self.next = bodies, batch, 0

    def take(self) -> bytes | None:
        if self.next >= len(self.bodies):
            return None
        self.next += 1
        return self.bodies[self.next - 1]


async def drive(client: httpx.AsyncClient, request: Request, concurrency: int, seconds: float) -> Phase:
    """Run `concurrency` loops of `request` for `seconds`; a request returning events=-1 ends its loop."""
    phase = Phase()
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                ok, events = await request(client)
            except httpx.HTTPError as error:
                ok, events = False, 0
                phase.first_error = phase.first_error or repr(error)
            except BadResponse as error:
                ok, events = False, 0
                phase.first_error = phase.first_error or str(error)
            if events < 0:
                phase.exhausted = True
                return
            phase.latencies.append(time.perf_counter() - start)
            phase.requests += 1
            phase.events += events if ok else 0
            phase.errors += 0 if ok else 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - start
    return phase


def health_request() -> Request:
    async def request(client: httpx.AsyncClient) -> tuple[bool, int]:
        response = await client.get("/healthz")
        return response.status_code == 200, 0

    return request


def batch_request(bodies: Bodies, write_key: str) -> Request:
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        "Content-Type": "application/json",
    }

    async def request(client: httpx.AsyncClient) -> tuple[bool, int]:
        body = bodies.take()
        if body is None:
            return False, -1
        response = await client.post("/v1/batch", content=body, headers=headers)
        if response.status_code != 200:
            raise BadResponse(f"HTTP {response.status_code}: {response.text[:300]}")
        return True, int(orjson.loads(response.content)["accepted"])

    return request


async def measure(
    url: str, server_pid: int, args: argparse.Namespace, bodies: Bodies, key: str
) -> tuple[Phase, Phase]:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        await drive(client, health_request(), args.concurrency, 1)
        health = await metered(
            server_pid, drive(client, health_request(), args.concurrency, args.health_seconds)
        )
        await drive(client, batch_request(bodies, key), args.concurrency, args.warmup)
        common.reset_peak_rss()
        batch = await metered(
            server_pid, drive(client, batch_request(bodies, key), args.concurrency, args.duration)
        )
    return health, batch


async def metered(server_pid: int, running: Awaitable[Phase]) -> Phase:
    meter = common.CpuMeter(server_pid)
    meter.start()
    phase = await running
    meter.stop()
    phase.cpu = meter.describe()
    return phase


def encode_bodies(args: argparse.Namespace) -> list[bytes]:
    """Enough /v1/batch bodies for `--max-rate` events/s over warm-up + duration."""
    events = int(args.max_rate * (args.warmup + args.duration))
    sent_at = generator.EPOCH.isoformat().replace("+00:00", "Z")
    return [
        orjson.dumps({"batch": batch, "sentAt": sent_at})
        for batch in generator.batches(args.customers, events, args.batch, args.seed)
    ]


def run_backend(backend: common.Backend, args: argparse.Namespace, encoded: list[bytes]) -> Outcome:
    common.fresh_database(backend)
    db = Database(backend.url)
    try:
        source = common.make_source(db)
        bodies = Bodies(encoded, args.batch)
        with common.server(backend.url) as running:
            health, batch = asyncio.run(measure(running.url, running.pid, args, bodies, source.write_key))
            server_rss = common.peak_rss_mb(running.pid)
        client_rss = common.peak_rss_mb()
        floor_raws = [
            m for body in encoded[: args.floor_events // args.batch] for m in orjson.loads(body)["batch"]
        ]
        raw_rate = common.raw_insert_rate(db, common.event_rows(floor_raws, db.dialect), args.batch)
    finally:
        db.dispose()
    return Outcome(health, batch, raw_rate, server_rss, client_rss)


def _row(label: str, rate: str, phase: Phase) -> list[str]:
    cuts = common.percentiles(phase.latencies)
    latencies = [common.ms(cuts[k]) for k in ("p50", "p95", "p99", "max")]
    return [label, rate, *latencies, f"{phase.requests:,}", str(phase.errors), phase.cpu]


def report(backend: common.Backend, out: Outcome, args: argparse.Namespace) -> str:
    h, b = out.health, out.batch
    header = ["measure", "rate", "p50 ms", "p95 ms", "p99 ms", "max ms", "requests", "errors", "CPU (cores)"]
    batch_rate = f"**{common.rate(b.event_rate)} events/s** ({b.request_rate:,.0f} req/s)"
    rows = [
        _row(f"POST /v1/batch ({args.batch} events)", batch_rate, b),
        _row("GET /healthz (HTTP ceiling)", f"{common.rate(h.request_rate)} req/s", h),
        [
            "raw executemany, same rows (floor)",
            f"{common.rate(out.raw_rate)} rows/s",
            *[""] * 6,
            "one client",
        ],
    ]
    verdict = "MET" if b.event_rate >= GOAL else "NOT MET"
    notes = (
        f"Sustained {common.rate(b.event_rate)} events/s = {b.event_rate / out.raw_rate:.0%} of the raw "
        f"insert floor and {b.request_rate / h.request_rate:.0%} of the /healthz request rate. "
        f"Goal >= {GOAL:,} events/s: {verdict}."
    )
    if b.errors or h.errors:
        notes += f" First error: `{b.first_error or h.first_error}`."
    if b.exhausted:
        notes += " The pre-generated bodies ran out before the end: the rate is a lower bound."
    return "\n\n".join(
        [
            f"## HTTP batch ingestion: {backend.name}",
            f"`bench/http_batch.py --database {backend.name} --duration {args.duration:g} --concurrency "
            f"{args.concurrency}`: ONE uvicorn process (uvloop + httptools, default thread pool) serving "
            f"`threadline.app:create_app`; {args.concurrency} concurrent keep-alive connections from one "
            "asyncio + httpx client in the benchmark process (bodies pre-encoded before timing, so the "
            "client costs little CPU; the CPU column shows how server, client, PostgreSQL and other "
            "processes shared the 2 cores). "
            f"{args.warmup:g} s warm-up, then {args.duration:g} s measured; /healthz measured "
            f"{args.health_seconds:g} s (one `SELECT 1` per request). Raw floor: the first "
            f"{args.floor_events:,} of the same messages as rows, DBAPI executemany into `raw_events`, "
            f"{args.batch} per commit, same database, server stopped.",
            common.machine_facts([backend]),
            common.table(header, rows),
            notes,
            f"Peak RSS: server process {out.server_peak_rss_mb:.0f} MiB (VmHWM over its life), "
            f"benchmark client process {out.client_peak_rss_mb:.0f} MiB (holds the pre-encoded bodies).",
        ]
    )


def main() -> None:
    args = common.parser(__doc__ or "")
    args.add_argument("--duration", type=float, default=30)
    args.add_argument("--warmup", type=float, default=5)
    args.add_argument("--health-seconds", type=float, default=8)
    args.add_argument("--concurrency", type=int, default=8)
    args.add_argument("--batch", type=int, default=100)
    args.add_argument("--customers", type=int, default=20_000)
    args.add_argument(
        "--max-rate", type=float, default=20_000, help="events/s the pre-generated bodies cover"
    )
    args.add_argument("--floor-events", type=int, default=50_000)
    args.add_argument("--seed", type=int, default=7)
    options = args.parse_args()
    print("encoding request bodies ...", flush=True)
    encoded = encode_bodies(options)
    for backend in common.backends(options, "http"):
        outcome = run_backend(backend, options, encoded)
        text = report(backend, outcome, options)
        print(text, flush=True)
        if outcome.batch.events == 0:
            raise SystemExit(f"{backend.name}: no event was accepted; RESULTS.md left alone")
        if not options.no_results:
            common.write_section(f"http:{backend.name}", text)


if __name__ == "__main__":
    main()
