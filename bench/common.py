"""Shared by the benchmarks: databases, raw-insert floor, servers, percentiles, machine facts, RESULTS.md."""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy
from sqlalchemy import Column, MetaData, Table, text

from threadline.accounts import create_token, create_user
from threadline.clock import utcnow
from threadline.config import Settings
from threadline.ingest import SourceInfo, create_source
from threadline.ingest.messages import ParseOptions, parse_message
from threadline.storage import Database, upgrade
from threadline.storage.models import Event

BENCH = Path(__file__).resolve().parent
DATA = BENCH / ".data"
RESULTS = BENCH / "RESULTS.md"
DEFAULT_PG_URL = "postgresql://127.0.0.1/bench"
SECRET = "bench-secret-key-not-for-production"
HEADER = """# Threadline benchmarks: results

Figures below were written by the scripts in `bench/` on the machine described in each section; every
timing is compared with a floor measured in the same run on the same database. Re-run one section with
its script (each replaces only its own section), e.g. `.venv/bin/python bench/ingest_inprocess.py`;
see `bench/README.md` for all commands and flags.
"""


# -- command line ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backend:
    name: str  # sqlite | postgresql
    url: str
    schema: str | None = None  # PostgreSQL schema the benchmark drops and recreates


def parser(description: str) -> argparse.ArgumentParser:
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    args.add_argument("--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL database the benchmark may use")
    args.add_argument("--no-results", action="store_true", help="print figures, do not touch RESULTS.md")
    return args


def backends(args: argparse.Namespace, name: str) -> list[Backend]:
    """The databases to run on: a SQLite file per benchmark, the `public` schema of the PostgreSQL database.

    PostgreSQL benchmarks share `public`: Threadline's engine sets its own libpq `options`, which replace
    any `options=-csearch_path=...` in the URL, so a per-benchmark schema cannot be selected from outside.
    """
    chosen: list[Backend] = []
    if args.database in ("sqlite", "both"):
        DATA.mkdir(exist_ok=True)
        chosen.append(Backend("sqlite", f"sqlite:///{DATA / name}.db"))
    if args.database in ("postgresql", "both"):
        chosen.append(Backend("postgresql", args.pg_url, "public"))
    return chosen


def settings_for(url: str) -> Settings:
    return Settings(database_url=url, secret_key=SECRET)


# -- databases ---------------------------------------------------------------------------------


def sqlite_path(backend: Backend) -> Path:
    return Path(backend.url.removeprefix("sqlite:///"))


def drop_database(backend: Backend) -> None:
    if backend.name == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{sqlite_path(backend)}{suffix}").unlink(missing_ok=True)
        return
    db = Database(backend.url)
    with db.engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{backend.schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{backend.schema}"'))
    db.dispose()


def fresh_database(backend: Backend) -> None:
    """An empty database at the latest schema."""
    drop_database(backend)
    upgrade(backend.url)


def make_source(db: Database, name: str = "bench-web") -> SourceInfo:
    return create_source(db, name, "web", now=utcnow())


def make_token(db: Database, email: str = "bench@example.com") -> str:
    create_user(db, email, "admin", "bench password 123", now=utcnow())
    return create_token(db, email, now=utcnow())


# -- the raw-insert floor ----------------------------------------------------------------------

EVENT_COLUMNS = [c.name for c in Event.__table__.columns if c.name != "id"]
JSON_COLUMNS = {"properties", "traits", "context"}


def raw_table(metadata: MetaData) -> Table:
    """`raw_events`: the columns of `events` with only the primary key (no FK, unique or index)."""
    return Table(
        "raw_events",
        metadata,
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in Event.__table__.columns
        ),
    )


def reset_raw_table(db: Database) -> None:
    metadata = MetaData()
    table = raw_table(metadata)
    table.drop(db.engine, checkfirst=True)
    table.create(db.engine)


def _fake_profile(message: dict[str, Any]) -> str:
    who = str(message.get("userId") or message.get("anonymousId"))
    return hashlib.blake2b(who.encode(), digest_size=16).hexdigest()


def event_rows(raws: Iterable[dict[str, Any]], dialect: str, source_id: int = 1) -> list[tuple[Any, ...]]:
    """DB-ready rows for `raw_events`, as ingestion would store the same messages (built before timing)."""
    now = utcnow()
    options = ParseOptions(region="US", identifier_kinds=(), received_at=now)
    rows = []
    for raw in raws:
        message = parse_message(raw, options)
        profile = _fake_profile(raw)
        values: dict[str, Any] = {
            "profile_id": profile,
            "original_profile_id": profile,
            "source_id": source_id,
            "channel": "web",
            "type": message.type,
            "name": message.name,
            "message_id": message.message_id,
            "user_id": message.user_id,
            "anonymous_id": message.anonymous_id,
            "timestamp": message.timestamp,
            "sent_at": message.sent_at,
            "received_at": now,
            "properties": message.properties,
            "traits": message.traits,
            "context": message.context,
        }
        rows.append(tuple(_db_value(name, values[name], dialect) for name in EVENT_COLUMNS))
    return rows


def _db_value(name: str, value: Any, dialect: str) -> Any:
    if name in JSON_COLUMNS:
        return None if value is None else orjson.dumps(value).decode()
    if isinstance(value, datetime) and dialect == "sqlite":
        return value.isoformat(" ", "microseconds")  # SQLAlchemy's storage format for DateTime on SQLite
    return value


def raw_insert_rate(db: Database, rows: Sequence[tuple[Any, ...]], batch: int) -> float:
    """Rows/s of DBAPI `executemany` into `raw_events`, one transaction per batch, on a fresh table."""
    reset_raw_table(db)
    marks = ", ".join(["?" if db.dialect == "sqlite" else "%s"] * len(EVENT_COLUMNS))
    sql = f"INSERT INTO raw_events ({', '.join(EVENT_COLUMNS)}) VALUES ({marks})"
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        start = time.perf_counter()
        for offset in range(0, len(rows), batch):
            if (
                db.dialect == "sqlite"
            ):  # the engine runs pysqlite in autocommit: open the txn like ingest does
                cursor.execute("BEGIN IMMEDIATE")
            cursor.executemany(sql, rows[offset : offset + batch])
            connection.commit() if db.dialect != "sqlite" else cursor.execute("COMMIT")
        elapsed = time.perf_counter() - start
        cursor.close()
    finally:
        connection.close()
    return len(rows) / elapsed


# -- measuring ---------------------------------------------------------------------------------


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max of `samples` (seconds) in milliseconds."""
    if len(samples) < 2:
        only = samples[0] * 1000 if samples else float("nan")
        return {"p50": only, "p95": only, "p99": only, "max": only}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": cuts[49] * 1000,
        "p95": cuts[94] * 1000,
        "p99": cuts[98] * 1000,
        "max": max(samples) * 1000,
    }


def reset_peak_rss(pid: int | str = "self") -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the next reading covers one phase only."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of a process in MiB; getrusage for this process as a fallback."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        status = ""
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    if found:
        return int(found.group(1)) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(value: float) -> str:
    return f"{value:.2f}"


def rate(value: float) -> str:
    return f"{value:,.0f}"


# -- a server process --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class Server:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def server(database_url: str, *, startup_timeout: float = 60, cli: bool = False) -> Iterator[Server]:
    """ONE uvicorn process serving `create_app()` on a free loopback port, configured by environment.

    `cli=True` starts it the way users do, `python -m threadline serve` (migrates, then serves), but
    with `--no-worker`: a benchmark measures the web process, not a resolution run the worker starts."""
    port = free_port()
    env = {**os.environ, "THREADLINE_DATABASE_URL": database_url, "THREADLINE_SECRET_KEY": SECRET}
    if cli:
        command = [sys.executable, "-m", "threadline", "serve", "--host", "127.0.0.1", "--port", str(port)]
        command.append("--no-worker")
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", "threadline.app:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL if cli else None)
    running = Server(process, f"http://127.0.0.1:{port}")
    try:
        _wait_healthy(running, startup_timeout)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(running: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"server exited with {running.process.returncode}")
        try:
            if httpx.get(f"{running.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


# -- reporting ---------------------------------------------------------------------------------


def _postgres_version(backend: Backend) -> str:
    db = Database(backend.url)
    try:
        with db.engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        db.dispose()


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    found = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    return int(found.group(1)) / 1024 / 1024 if found else float("nan")


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], capture_output=True, cwd=BENCH.parent, check=False).stdout.strip()


def _source_revision() -> str:
    """The commit the measured code is at, and a digest of uncommitted changes in src/ (read-only git)."""
    try:
        head = _git("rev-parse", "--short", "HEAD").decode() or "unknown"
        changes = _git("status", "--porcelain", "--", "src") + _git("diff", "HEAD", "--", "src")
    except OSError:
        return "(git unavailable)"
    if not changes:
        return head
    return f"{head} + uncommitted changes in src/ (digest {hashlib.sha1(changes).hexdigest()[:8]})"


START_REVISION = _source_revision()


def _revision_note() -> str:
    now = _source_revision()
    return now if now == START_REVISION else f"{now} (CHANGED during the run, started at {START_REVISION})"


def machine_facts(chosen: Sequence[Backend]) -> str:
    pg = next((b for b in chosen if b.name == "postgresql"), None)
    facts = [
        f"run {datetime.now(UTC):%Y-%m-%d %H:%M UTC}",
        f"{os.cpu_count()} cores ({_cpu_model()})",
        f"{_memory_gb():.0f} GB RAM",
        f"{platform.system()} {platform.release()}",
        f"Python {platform.python_version()}",
        f"SQLite {sqlite3.sqlite_version}",
        f"SQLAlchemy {sqlalchemy.__version__}",
        f"Threadline {_revision_note()}",
    ]
    if pg is not None:
        facts.append(f"PostgreSQL {_postgres_version(pg)} (local, same machine)")
    return "Machine: " + ", ".join(facts) + "."


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, body: str) -> None:
    """Replace the `<!-- name start -->` ... `<!-- name end -->` section of RESULTS.md (append if new)."""
    start, end = f"<!-- {name} start -->", f"<!-- {name} end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    current = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(updated)
    print(f"wrote section {name!r} of {RESULTS}")


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def postgres_cpu_seconds() -> float:
    """CPU time of every local `postgres` process (backends, WAL writer, checkpointer)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(entry.name)
        except OSError:
            continue
    return total


@dataclass(slots=True)
class CpuMeter:
    """CPU used (in cores) by this process, a server process, PostgreSQL and everything else on the machine
    between start() and stop(): other processes on a shared machine show up in `other`."""

    server_pid: int | None = None
    wall: float = 0.0
    client: float = 0.0
    server: float = 0.0
    postgres: float = 0.0
    machine_busy: float = 0.0
    _marks: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    _jiffies: tuple[int, int] = (0, 0)

    def _server_cpu(self) -> float:
        return cpu_seconds(self.server_pid) if self.server_pid else 0.0

    def start(self) -> None:
        self._marks = (time.perf_counter(), cpu_seconds(), self._server_cpu(), postgres_cpu_seconds())
        self._jiffies = machine_jiffies()

    def stop(self) -> None:
        wall, client, server, postgres = self._marks
        busy, total = machine_jiffies()
        self.wall = time.perf_counter() - wall
        self.client = (cpu_seconds() - client) / self.wall
        self.server = (self._server_cpu() - server) / self.wall
        self.postgres = max(0.0, postgres_cpu_seconds() - postgres) / self.wall  # exited backends drop out
        self.machine_busy = (
            (busy - self._jiffies[0]) / max(1, total - self._jiffies[1]) * (os.cpu_count() or 1)
        )

    @property
    def other(self) -> float:
        return max(0.0, self.machine_busy - self.client - self.server - self.postgres)

    def describe(self) -> str:
        parts = [f"server {self.server:.2f}"] if self.server_pid else []
        parts += [f"{'client' if self.server_pid else 'this process'} {self.client:.2f}"]
        parts += [f"PostgreSQL {self.postgres:.2f}", f"other processes {self.other:.2f}"]
        return ", ".join(parts)
