"""The workspace at scale: customer list search and the customer 360 page, for an admin and an agent.

    .venv/bin/python bench/workspace_pages.py [--database sqlite|postgresql|both] [--samples 300]
        [--budget 20] [--explain]

Reuses `profile_read.py`'s data set (1,000,000 events / 100,000 customers, built through `ingest` if
missing: SQLite in bench/.data/read_<events>_<customers>.db, PostgreSQL in the public schema of the
bench database), migrates it to the latest schema, and gives ~10% of the live customers to an agent user
(`ws-agent@example.com`; an admin `ws-admin@example.com` sees everyone), once. Then, one call at a time:
(a) in process, `list_customers` first page (50), sorted by last seen, with no filter, a name fragment,
an email prefix, the last 4-7 digits of a phone number, a channel filter and "seen within 7 days"
(relative to the newest event of the data set), and `profile_view` + `timeline_page(50)` for random
customers in the viewer's scope; (b) over HTTP against ONE `python -m threadline serve` process, signed
in through the login form: GET /customers (no filter, and ?q= name / email / phone digits) and
GET /customers/{id}, timing the whole request (server time plus loopback). Floors in the same run: a
primary-key SELECT of one profile row (DBAPI) and GET /healthz. Goal (issue 3): p95 < 100 ms.

Each row stops after `--samples` samples, or after `--budget` seconds once it has 20 (slow queries).
`--explain` prints the plans of the list queries (EXPLAIN QUERY PLAN / EXPLAIN ANALYZE).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text, update

import common
import profile_read
from threadline.accounts import UserInfo, Viewer, create_user, user_by_email, viewer_for
from threadline.clock import utcnow
from threadline.errors import NotFound
from threadline.profiles import CustomerQuery, list_customers, profile_view, timeline_page
from threadline.profiles import customers as customer_module
from threadline.storage import Database, upgrade
from threadline.storage.models import Event, Identity, Profile, User

GOAL_P95_MS = 100.0
PASSWORD = "bench workspace password 123"
ADMIN, AGENT = "ws-admin@example.com", "ws-agent@example.com"
OWNED_SHARE = 0.10
REGION = "US"
ANALYZED = ("events", "profiles", "identities", "users", "profile_members", "audit_log")


@dataclass(slots=True)
class Timing:
    label: str
    role: str
    samples: list[float]
    matches: list[int]
    failures: dict[int, int] = field(default_factory=dict)  # HTTP status -> count, for non-200 answers

    @property
    def is_floor(self) -> bool:
        return self.label.startswith("floor")


@dataclass(frozen=True, slots=True)
class Terms:
    names: list[str]
    emails: list[str]
    phones: list[str]


# -- the data set ------------------------------------------------------------------------------


def read_args(args: argparse.Namespace) -> argparse.Namespace:
    """The arguments `profile_read` would use for this data set."""
    return argparse.Namespace(
        events=args.events,
        customers=args.customers,
        seed=args.seed,
        build_batch=500,
        analyze_every=100_000,
    )


def prepare(backend: common.Backend, args: argparse.Namespace) -> str:
    """Build (if missing) and migrate the data set, create the two users, give the agent ~10%."""
    built = read_args(args)
    reason = "missing"
    if profile_read.is_built(backend, built):
        try:
            upgrade(backend.url)
            reason = ""
        except Exception as error:  # an old data set the migrations cannot bring forward
            reason = (
                f"the stored one was at an older schema that `upgrade` failed on ({type(error).__name__})"
            )
            print(f"  {backend.name}: upgrade failed, rebuilding: {str(error).splitlines()[0]}", flush=True)
    if reason:
        print(f"building {backend.name} data set ({profile_read._marker(built)}) ...", flush=True)
        rate = profile_read.build(backend, built)
        note = (
            f"profile_read's data set, built in this run through `ingest` at {rate:,.0f} events/s: {reason}"
        )
    else:
        note = "profile_read's data set, reused"
    db = Database(backend.url)
    try:
        _user(db, ADMIN, "admin")
        agent = _user(db, AGENT, "agent")
        with db.read() as session:
            owned = session.scalar(select(func.count()).where(Profile.owner_id == agent.id)) or 0
        if owned == 0:
            owned = _give_customers(db, agent.id, args.seed)
            note += f"; {owned:,} customers given to the agent in this run"
            with db.engine.begin() as conn:
                for name in ANALYZED:
                    conn.execute(text(f"ANALYZE {name}"))
        else:
            note += f"; the agent owns {owned:,} customers"
        if db.dialect == "postgresql":
            note += _vacuum(db)
    finally:
        db.dispose()
    return note


def _vacuum(db: Database) -> str:
    """VACUUM ANALYZE tables that autovacuum would have cleaned (this PostgreSQL runs without it)."""
    with db.engine.connect() as conn:
        stats = conn.execute(
            text("SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = ANY(:t)"),
            {"t": list(ANALYZED)},
        ).all()
    bloated = [name for name, live, dead in stats if dead > 0.05 * max(live, 1000)]
    if not bloated:
        return ""
    print(f"  postgresql: VACUUM ANALYZE {', '.join(bloated)} ...", flush=True)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in bloated:
            conn.execute(text(f"VACUUM ANALYZE {name}"))
    return f"; VACUUM ANALYZE of {', '.join(bloated)} (dead rows from the build; autovacuum is off)"


def _user(db: Database, email: str, role: str) -> UserInfo:
    try:
        return user_by_email(db, email)
    except NotFound:
        return create_user(db, email, role, PASSWORD, now=utcnow())


def _give_customers(db: Database, owner_id: int, seed: int) -> int:
    with db.read() as session:
        live = sorted(session.scalars(select(Profile.id).where(Profile.merged_into.is_(None))))
    chosen = random.Random(seed).sample(live, int(len(live) * OWNED_SHARE))
    for offset in range(0, len(chosen), 1000):
        with db.write() as session:
            session.execute(
                update(Profile)
                .where(Profile.id.in_(chosen[offset : offset + 1000]))
                .values(owner_id=owner_id)
                .execution_options(synchronize_session=False)
            )
    return len(chosen)


def search_terms(db: Database, count: int, seed: int) -> Terms:
    """What people type: part of a name, the start of an email, the last 4-7 digits of a phone."""
    rng = random.Random(seed)
    with db.read() as session:
        names = list(
            session.scalars(
                select(Profile.search_name)
                .where(Profile.merged_into.is_(None), Profile.search_name.is_not(None))
                .order_by(Profile.id)
                .limit(20_000)
            )
        )
        emails = list(session.scalars(select(Identity.value).where(Identity.kind == "email").limit(20_000)))
        phones = list(session.scalars(select(Identity.value).where(Identity.kind == "phone").limit(20_000)))
    fragments = []
    for name in rng.sample(names, count):
        size = rng.randint(3, min(8, len(name)))
        start = rng.randint(0, len(name) - size)
        fragments.append(name[start : start + size].strip() or name)
    prefixes = [e[: rng.randint(6, len(e.split("@")[0]))] for e in rng.sample(emails, count)]
    digits = [p[-rng.randint(4, 7) :] for p in rng.sample(phones, count)]
    return Terms(fragments, prefixes, digits)


def scope_profiles(db: Database, viewer: Viewer, count: int, seed: int) -> list[str]:
    with db.read() as session:
        stmt = select(Profile.id).where(Profile.merged_into.is_(None))
        if viewer.role == "agent":
            stmt = stmt.where(Profile.owner_id == viewer.user_id)
        ids = sorted(session.scalars(stmt))
    return random.Random(seed).sample(ids, min(count, len(ids)))


def data_now(db: Database) -> datetime:
    """ "Now" for "seen within 7 days": just after the newest activity in the data set."""
    with db.read() as session:
        newest = session.scalar(select(func.max(Profile.last_seen)))
    return (newest or utcnow()) + timedelta(minutes=1)


# -- measuring ---------------------------------------------------------------------------------


def timed(action: Callable[[Any], object], keys: Sequence[Any], args: argparse.Namespace) -> list[float]:
    """Seconds per call for each key after a warm-up; stops early past the time budget (>= 20 samples)."""
    for key in keys[: args.warmup]:
        action(key)
    samples: list[float] = []
    deadline = time.perf_counter() + args.budget
    for key in keys:
        start = time.perf_counter()
        action(key)
        samples.append(time.perf_counter() - start)
        if len(samples) >= 20 and time.perf_counter() > deadline:
            break
    return samples


def list_queries(terms: Terms, count: int, now: datetime) -> list[tuple[str, list[CustomerQuery]]]:
    return [
        ("list: no filter", [CustomerQuery()] * count),
        ("list: name fragment", [CustomerQuery(q=t) for t in terms.names]),
        ("list: email prefix", [CustomerQuery(q=t) for t in terms.emails]),
        ("list: last 4-7 phone digits", [CustomerQuery(q=t) for t in terms.phones]),
        ("list: channel = web", [CustomerQuery(channel="web")] * count),
        ("list: seen within 7 days", [CustomerQuery(seen_within_days=7)] * count),
    ]


def in_process(
    db: Database, viewer: Viewer, terms: Terms, profiles: list[str], now: datetime, args: argparse.Namespace
) -> list[Timing]:
    timings = []
    for label, queries in list_queries(terms, args.samples, now):
        totals: list[int] = []

        def listing(query: CustomerQuery, totals: list[int] = totals) -> None:
            _rows, total = list_customers(db, viewer, query, region=REGION, now=now)
            totals.append(total)

        samples = timed(listing, queries, args)
        timings.append(Timing(f"in process: {label}", viewer.role, samples, totals))

    def page(pid: str) -> None:
        profile_view(db, pid, viewer=viewer)
        timeline_page(db, pid, limit=50, viewer=viewer)

    timings.append(
        Timing("in process: profile_view + timeline_page(50)", viewer.role, timed(page, profiles, args), [])
    )
    return timings


def pk_floor(db: Database, args: argparse.Namespace) -> Timing:
    """A primary-key SELECT of one profile row through the DBAPI cursor: the database's own floor."""
    with db.read() as session:
        ids = sorted(session.scalars(select(Profile.id)))
    keys = random.Random(args.seed).choices(ids, k=args.samples)
    mark = "?" if db.dialect == "sqlite" else "%s"
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()

        def select_one(profile_id: str) -> None:
            cursor.execute(f"SELECT * FROM profiles WHERE id = {mark}", (profile_id,))
            cursor.fetchone()

        samples = timed(select_one, keys, args)
        connection.rollback()
    finally:
        connection.close()
    return Timing("floor: PK SELECT of one profile row (DBAPI)", "-", samples, [])


def sign_in(client: httpx.Client, email: str) -> None:
    form = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    if token is None:
        raise RuntimeError("login form without a CSRF token")
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf": token.group(1), "next": "/customers"}
    )
    if response.status_code != 303:
        raise RuntimeError(f"sign-in as {email}: {response.status_code}")


def over_http(
    backend: common.Backend,
    terms: Terms,
    profiles: dict[str, list[str]],
    args: argparse.Namespace,
) -> tuple[list[Timing], float]:
    timings: list[Timing] = []
    with common.server(backend.url, cli=True) as running:
        for role, email in (("admin", ADMIN), ("agent", AGENT)):
            with httpx.Client(base_url=running.url, timeout=120) as client:
                sign_in(client, email)

                failures: dict[int, int] = {}

                def get(
                    path: str,
                    params: dict[str, str] | None = None,
                    client: httpx.Client = client,
                    failures: dict[int, int] = failures,
                ) -> None:
                    # Timed either way; a non-200 answer (0: connection reset) is counted and reported.
                    try:
                        status = client.get(path, params=params).status_code
                    except httpx.TransportError:
                        status = 0
                    if status != 200:
                        failures[status] = failures.get(status, 0) + 1

                searches = [
                    ("GET /customers", [None] * args.samples),
                    ("GET /customers?q=name fragment", [{"q": t} for t in terms.names]),
                    ("GET /customers?q=email prefix", [{"q": t} for t in terms.emails]),
                    ("GET /customers?q=phone digits", [{"q": t} for t in terms.phones]),
                ]
                for label, keys in searches:
                    samples = timed(lambda p: get("/customers", p), keys, args)
                    timings.append(Timing(f"HTTP: {label}", role, samples, [], dict(failures)))
                    failures.clear()
                samples = timed(lambda pid: get(f"/customers/{pid}"), profiles[role], args)
                label = "HTTP: GET /customers/{id} (360 page)"
                timings.append(Timing(label, role, samples, [], dict(failures)))
                failures.clear()
        with httpx.Client(base_url=running.url, timeout=30) as client:
            samples = timed(lambda _: client.get("/healthz").raise_for_status(), range(args.samples), args)
        timings.append(Timing("floor: HTTP GET /healthz", "-", samples, []))
        rss = common.peak_rss_mb(running.pid)
    return timings, rss


# -- plans -------------------------------------------------------------------------------------


def explain(db: Database, viewers: list[Viewer], terms: Terms, now: datetime) -> None:
    """Print the plan of each list query's count and page statements, as list_customers runs them."""
    examples = {label: queries[0] for label, queries in list_queries(terms, 1, now)}
    prefix = "EXPLAIN QUERY PLAN " if db.dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    for viewer in viewers:
        for label, query in examples.items():
            with db.read() as session:
                base = customer_module._select(session, viewer, query, REGION, now)
                count = select(func.count()).select_from(base.subquery())
                page = base.order_by(*customer_module.SORTS[query.sort]).limit(query.size)
                for part, stmt in (("count", count), ("page", page)):
                    compiled = stmt.compile(dialect=session.get_bind().dialect)
                    params: Any = compiled.params
                    if compiled.positiontup:
                        params = tuple(compiled.params[k] for k in compiled.positiontup)
                    conn = session.connection()
                    plan = conn.exec_driver_sql(prefix + compiled.string, params).all()
                    print(f"\n-- {db.dialect} {viewer.role} {label} q={query.q!r}: {part}")
                    print("\n".join(str(row[-1]) for row in plan))


# -- reporting ---------------------------------------------------------------------------------


def report(
    backend: common.Backend, args: argparse.Namespace, timings: list[Timing], facts: dict[str, str]
) -> str:
    rows = []
    for timing in timings:
        cuts = common.percentiles(timing.samples)
        verdict = "" if timing.is_floor else ("yes" if cuts["p95"] < GOAL_P95_MS else "**no**")
        if timing.failures:
            answers = ", ".join(
                f"{n} x {status or 'connection reset'}" for status, n in sorted(timing.failures.items())
            )
            verdict = f"**no**: {answers} (of {len(timing.samples) + args.warmup} requests)"
        matches = f"{statistics.median(timing.matches):,.0f}" if timing.matches else ""
        rows.append(
            [
                timing.label,
                timing.role,
                f"{len(timing.samples):,}",
                *(common.ms(cuts[k]) for k in ("p50", "p95", "p99", "max")),
                matches,
                verdict,
            ]
        )
    header = ["measure", "viewer", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "matches (median)"]
    header.append(f"p95 < {GOAL_P95_MS:g} ms")
    return "\n\n".join(
        [
            f"## Workspace pages: {backend.name}",
            f"`bench/workspace_pages.py --database {backend.name} --samples {args.samples} "
            f"--budget {args.budget:g}`: {facts['events']} events, {facts['profiles']} live customers "
            f"({facts['build']}). Viewers: an admin (all customers) and an agent (own scope: "
            f"{facts['owned']} customers). Lists: first page of 50 sorted by last seen, with the total "
            "count, as `list_customers` returns them; search terms are random name fragments (3-8 "
            "characters), email prefixes and the last 4-7 digits of phone numbers of the data set; "
            f'"seen within 7 days" is relative to the newest activity ({facts["now"]}). 360: '
            "`profile_view` + `timeline_page(50)` (HTTP: the whole page, including its audit entry) for "
            "random customers in the viewer's scope. HTTP: ONE `python -m threadline serve` process, one "
            "request at a time, signed in through the login form; each time is the full request (server "
            f"time plus loopback). Warm-up {args.warmup} calls per row; a row stops after "
            f"{args.samples} samples, or after {args.budget:g} s once it has 20.",
            common.machine_facts([backend]),
            common.table(header, rows),
            f"Peak RSS: benchmark process {facts['rss']} MiB (in-process phase), server process "
            f"{facts['server_rss']} MiB.",
        ]
    )


def run_backend(backend: common.Backend, args: argparse.Namespace) -> str:
    build_note = prepare(backend, args)
    db = Database(backend.url)
    try:
        with db.read() as session:
            admin_id = session.scalar(select(User.id).where(User.email == ADMIN))
            agent_id = session.scalar(select(User.id).where(User.email == AGENT))
            events = session.scalar(select(func.count()).select_from(Event)) or 0
            live = session.scalar(select(func.count()).where(Profile.merged_into.is_(None))) or 0
            owned = session.scalar(select(func.count()).where(Profile.owner_id == agent_id)) or 0
        assert admin_id is not None and agent_id is not None
        viewers = [viewer_for(db, admin_id, "admin"), viewer_for(db, agent_id, "agent")]
        terms = search_terms(db, args.samples, args.seed)
        now = data_now(db)
        if args.explain:
            explain(db, viewers, terms, now)
        profiles = {v.role: scope_profiles(db, v, args.samples, args.seed) for v in viewers}
        common.reset_peak_rss()
        timings = [pk_floor(db, args)]
        for viewer in viewers:
            print(f"  {backend.name}: in process as {viewer.role} ...", flush=True)
            timings += in_process(db, viewer, terms, profiles[viewer.role], now, args)
        rss = common.peak_rss_mb()
    finally:
        db.dispose()
    print(f"  {backend.name}: over HTTP ...", flush=True)
    http_timings, server_rss = over_http(backend, terms, profiles, args)
    facts = {
        "events": f"{events:,}",
        "profiles": f"{live:,}",
        "owned": f"{owned:,}",
        "build": build_note,
        "now": f"{now:%Y-%m-%d %H:%M}",
        "rss": f"{rss:.0f}",
        "server_rss": f"{server_rss:.0f}",
    }
    floors = [t for t in [*timings, *http_timings] if t.is_floor]
    rest = [t for t in [*timings, *http_timings] if not t.is_floor]
    return report(backend, args, [*floors, *rest], facts)


def main() -> None:
    args = common.parser(__doc__ or "")
    args.add_argument("--events", type=int, default=1_000_000)
    args.add_argument("--customers", type=int, default=100_000)
    args.add_argument("--samples", type=int, default=300)
    args.add_argument("--warmup", type=int, default=10)
    args.add_argument("--budget", type=float, default=20.0, help="seconds per row before stopping early")
    args.add_argument("--explain", action="store_true", help="print the plans of the list queries")
    args.add_argument("--seed", type=int, default=11)
    options = args.parse_args()
    for backend in common.backends(options, f"read_{options.events}_{options.customers}"):
        report_text = run_backend(backend, options)
        print(report_text, flush=True)
        if not options.no_results:
            common.write_section(f"workspace:{backend.name}", report_text)


if __name__ == "__main__":
    main()
