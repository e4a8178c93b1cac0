"""A large Threadline database, fast: 1,000,000 profiles and 10,000,000 events by default, written by bulk
loads straight into Threadline's tables (PostgreSQL COPY, SQLite executemany in big transactions).

Benchmarks that need scale (segment_eval.py, dashboard rollups) call `build(url, profiles, events, seed)`;
run alone it builds (or finds) the data set and prints what is in it:

    .venv/bin/python bench/large_dataset.py --database postgresql --pg-url postgresql://127.0.0.1/bench
    .venv/bin/python bench/large_dataset.py --database sqlite --profiles 10000 --events 100000

The schema is Threadline's own: `upgrade` runs the migrations first, the secondary indexes and unique
and foreign keys of the three loaded tables are dropped for the load and re-created from their own DDL
after it (so a new migration's index is re-created too), then the tables are analysed. A row in
`bench_dataset` records what was built; a second call with the same (profiles, events, seed) only migrates
and returns. Different parameters rebuild: the SQLite file is replaced, the PostgreSQL schema of the URL
(`public` unless the URL's options set a search_path: `?options=-csearch_path%3Dname,public`, public
last for pg_trgm) is dropped and re-created.

What is in it (the same seed always gives the same rows):
- profiles whose first sight is spread over two years before `END` (more of them recent), each active
  for an exponential lifetime with a heavy-tailed activity (most have a few events, some hundreds);
  1.5% were merged into another profile (their identify event and identifiers moved to the survivor);
- identities: user id (70%), email (85%), phone (50%, E.164), one to three anonymous ids;
- traits: names, email, phone, plan, city, country, language, marketing_opt_in, lifetime_value, age,
  signup_date; tags vip / wholesale on a few; `channels` and `event_count` agree with the events;
- events on seven sources and channels: web pages (`page`, named by the page as Threadline stores
  them), Product Viewed / Added, Cart Viewed, Checkout Started, Order Completed (revenue, products),
  Products Searched; app screens, Application Opened; Email Delivered / Opened / Link Clicked,
  Unsubscribed (campaign properties); store orders; SMS; support tickets and calls; one identify per
  profile. Event ids follow time, as ingestion would write them.
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text
from sqlalchemy.engine import make_url

from generator import CAMPAIGNS, FIRST_NAMES, LAST_NAMES, PAGES, PRODUCTS
from threadline.ingest import create_source
from threadline.storage import Database, upgrade

VERSION = 1  # bump when the rows change: a stored data set of an older version is rebuilt
END = datetime(2026, 12, 1, 0, 0)  # naive UTC like Threadline's columns; the data's "now"
SPAN_DAYS = 730
MARKER = "bench_dataset"
LOADED = ("profiles", "identities", "events")
CHUNK = 100_000
console = Console(stderr=True)

CITIES = (
    ("Shanghai", "CN"),
    ("Lisbon", "PT"),
    ("Dublin", "IE"),
    ("Osaka", "JP"),
    ("Lagos", "NG"),
    ("Austin", "US"),
    ("Berlin", "DE"),
    ("Toronto", "CA"),
)
PLANS = ("free", "free", "free", "member", "member", "gold", "pro")
LANGUAGES = ("en", "en", "pt", "ja", "zh", "de", "fr")
SOURCES = (  # name, channel
    ("Web", "web"),
    ("iOS and Android app", "app"),
    ("Email (ESP webhooks)", "email"),
    ("Store POS", "store"),
    ("SMS gateway", "sms"),
    ("Support desk", "chat"),
    ("Call center", "call_center"),
)
CHANNEL_OF = {name: channel for name, channel in SOURCES}
# kind: (type, name, source, weight, properties maker key). Weights are shares of the drawn events.
KINDS: tuple[tuple[str, str | None, str, float, str], ...] = (
    ("page", "Home", "Web", 11.0, "page"),
    ("page", "Category", "Web", 8.0, "page"),
    ("page", "Product", "Web", 9.0, "page"),
    ("page", None, "Web", 3.0, "page"),  # analytics.page() without a name
    ("track", "Product Viewed", "Web", 16.0, "product"),
    ("track", "Products Searched", "Web", 3.0, "search"),
    ("track", "Product Added", "Web", 5.0, "product"),
    ("track", "Cart Viewed", "Web", 3.0, "cart"),
    ("track", "Checkout Started", "Web", 2.5, "order"),
    ("track", "Order Completed", "Web", 1.2, "order"),
    ("screen", "Home", "iOS and Android app", 4.0, "page"),
    ("track", "Application Opened", "iOS and Android app", 4.0, "app"),
    ("track", "Product Viewed", "iOS and Android app", 5.0, "product"),
    ("track", "Order Completed", "iOS and Android app", 0.6, "order"),
    ("track", "Email Delivered", "Email (ESP webhooks)", 8.0, "email"),
    ("track", "Email Opened", "Email (ESP webhooks)", 4.5, "email"),
    ("track", "Email Link Clicked", "Email (ESP webhooks)", 1.2, "email"),
    ("track", "Unsubscribed", "Email (ESP webhooks)", 0.05, "email"),
    ("track", "Order Completed", "Store POS", 0.7, "order"),
    ("track", "SMS Delivered", "SMS gateway", 1.0, "sms"),
    ("track", "SMS Link Clicked", "SMS gateway", 0.2, "sms"),
    ("track", "Support Ticket Created", "Support desk", 0.5, "ticket"),
    ("track", "Call Completed", "Call center", 0.3, "call"),
)
IDENTIFY = len(KINDS)  # the kind index of the one identify event per profile
CONTEXTS = {
    "Web": '{"library":{"name":"analytics.js","version":"5.2.1"},"locale":"en-US","ip":"203.0.113.%d"}',
    "iOS and Android app": '{"library":{"name":"analytics-swift","version":"1.5.3"},"app":'
    '{"name":"Threadline Goods","version":"4.2.0"},"ip":"198.51.100.%d"}',
    "Email (ESP webhooks)": '{"library":{"name":"esp-webhook","version":"2"},"ip":"192.0.2.%d"}',
    "Store POS": '{"library":{"name":"pos-bridge","version":"1.9"},"store":"store-%d"}',
    "SMS gateway": '{"library":{"name":"sms-webhook","version":"1"},"ip":"192.0.2.%d"}',
    "Support desk": '{"library":{"name":"helpdesk","version":"3"},"agent":"agent-%d"}',
    "Call center": '{"library":{"name":"telephony","version":"1"},"agent":"agent-%d"}',
}
SEARCHES = ("merino", "running shoes", "headphones", "duvet", "water bottle", "gift")
TICKETS = ("Where is my order?", "Return request", "Sizing question", "Damaged item")


@dataclass(frozen=True, slots=True)
class DataSet:
    url: str
    dialect: str
    profiles: int  # rows in profiles, merged-away ones included
    live_profiles: int
    events: int
    identities: int
    seed: int
    now: datetime  # END: the data's present, for "within the last N days"
    built: bool  # False when an existing data set was reused
    seconds: float


# -- the plan: everything numeric, drawn with numpy --------------------------------------------


@dataclass(slots=True)
class Plan:
    profile_ids: list[str]
    merged_into: np.ndarray  # index of the survivor, -1 for live profiles
    start: np.ndarray  # first sight, seconds since the epoch
    stop: np.ndarray
    has_email: np.ndarray
    has_phone: np.ndarray
    has_user: np.ndarray
    devices: np.ndarray  # 1..3
    traits_seed: np.ndarray
    event_profile: np.ndarray  # holder (live) profile index per event, sorted by time
    event_original: np.ndarray  # the profile the event first landed on
    event_time: np.ndarray
    event_kind: np.ndarray
    event_random: np.ndarray
    _lists: dict[str, list[Any]] = field(default_factory=dict)

    def lists(self, name: str) -> list[Any]:
        """A per-profile array as a Python list (indexing numpy one value at a time is slow)."""
        if name not in self._lists:
            self._lists[name] = getattr(self, name).tolist()
        return self._lists[name]


def _plan(profiles: int, events: int, seed: int) -> Plan:
    rng = np.random.default_rng(seed)
    end = int(END.replace(tzinfo=UTC).timestamp())
    span = SPAN_DAYS * 86_400
    ids = [f"{high:016x}{low:016x}" for high, low in rng.integers(0, 2**63, size=(profiles, 2)).tolist()]
    merged = rng.random(profiles) < 0.015
    merged[0] = False
    live = np.flatnonzero(~merged)
    merged_into = np.full(profiles, -1, dtype=np.int64)
    merged_into[merged] = live[rng.integers(0, live.size, size=int(merged.sum()))]
    start = end - span + (rng.power(1.6, size=profiles) * (span - 3600)).astype(np.int64)
    lifetime = rng.exponential(300 * 86_400, size=profiles).astype(np.int64) + 3600
    stop = np.minimum(start + lifetime, end - 60)
    # A merged profile lived before its survivor found it: keep its time inside the survivor's life.
    survivors = merged_into[merged]
    start[merged] = start[survivors]
    stop[merged] = start[survivors] + 60
    weight = np.minimum(rng.pareto(1.3, size=profiles) + 1.0, 300.0)
    weight[merged] = 0.0
    has_email = rng.random(profiles) < 0.85
    has_phone = rng.random(profiles) < 0.5
    has_user = rng.random(profiles) < 0.7

    drawn = events - profiles  # every profile has its identify event; the rest by activity
    cumulative = np.cumsum(weight)
    who = np.searchsorted(cumulative, rng.random(drawn) * cumulative[-1], side="right")
    who = np.minimum(who, profiles - 1)
    when = start[who] + (rng.random(drawn) * (stop[who] - start[who])).astype(np.int64)
    shares = np.array([k[3] for k in KINDS])
    kind = rng.choice(len(KINDS), size=drawn, p=shares / shares.sum()).astype(np.int16)
    email_kind = np.array([CHANNEL_OF[k[2]] == "email" for k in KINDS])
    sms_kind = np.array([CHANNEL_OF[k[2]] == "sms" for k in KINDS])
    # No email without an address, no SMS without a phone: those draws become a home page view.
    kind = np.where((email_kind[kind] & ~has_email[who]) | (sms_kind[kind] & ~has_phone[who]), 0, kind)

    everyone = np.arange(profiles)
    holder = np.concatenate([np.where(merged, merged_into, everyone), who])
    original = np.concatenate([everyone, who])
    times = np.concatenate([start, when])
    kinds = np.concatenate([np.full(profiles, IDENTIFY, dtype=np.int16), kind])
    order = np.argsort(times, kind="stable")
    return Plan(
        profile_ids=ids,
        merged_into=merged_into,
        start=start,
        stop=stop,
        has_email=has_email,
        has_phone=has_phone,
        has_user=has_user,
        devices=rng.choice([1, 1, 1, 2, 2, 3], size=profiles),
        traits_seed=rng.integers(0, 2**31, size=profiles),
        event_profile=holder[order],
        event_original=original[order],
        event_time=times[order],
        event_kind=kinds[order],
        event_random=rng.integers(0, 2**62, size=events)[order],
    )


# -- rows ----------------------------------------------------------------------------------------


def _stamp(seconds: np.ndarray, dialect: str) -> list[str]:
    """Times as each database's driver would store them: SQLAlchemy's SQLite text format
    ("2026-01-05 08:00:00.000000", compared as text), ISO for PostgreSQL's COPY."""
    values = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    if dialect == "sqlite":
        return [f"{v[:10]} {v[11:]}.000000" for v in values.tolist()]
    return [f"{v[:10]} {v[11:]}" for v in values.tolist()]


def _email(index: int, first: str, last: str) -> str:
    return f"{first.lower()}.{last.lower()}.{index}@example.com"


def _phone(index: int) -> str:
    return f"+1{415 + index // 10_000_000:03d}{index % 10_000_000:07d}"


def _names(plan: Plan, index: int) -> tuple[str, str]:
    r = int(plan.traits_seed[index])
    return FIRST_NAMES[r % len(FIRST_NAMES)], LAST_NAMES[(r >> 4) % len(LAST_NAMES)]


def _traits(plan: Plan, index: int, signup: str) -> dict[str, Any]:
    r = int(plan.traits_seed[index])
    first, last = _names(plan, index)
    city, country = CITIES[(r >> 8) % len(CITIES)]
    traits: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "plan": PLANS[(r >> 11) % len(PLANS)],
        "city": city,
        "country": country,
        "language": LANGUAGES[(r >> 14) % len(LANGUAGES)],
        "marketing_opt_in": (r >> 17) % 10 < 6,
        "lifetime_value": round(((r >> 18) % 200_000) / 100, 2),
        "age": 18 + (r >> 5) % 60,
        "signup_date": signup[:10],
    }
    if plan.has_email[index]:
        traits["email"] = _email(index, first, last)
    if plan.has_phone[index]:
        traits["phone"] = _phone(index)
    if plan.has_user[index]:
        traits["user_id"] = f"user-{index:07d}"
    return traits


def _anonymous(plan: Plan, index: int, device: int) -> str:
    return f"anon-{plan.profile_ids[index]}-{device}"


def profile_rows(plan: Plan, dialect: str) -> Iterator[tuple[Any, ...]]:
    profiles = len(plan.profile_ids)
    holder, times, kinds = plan.event_profile, plan.event_time, plan.event_kind
    counts = np.bincount(holder, minlength=profiles)
    first = np.full(profiles, np.iinfo(np.int64).max)
    last = np.full(profiles, np.iinfo(np.int64).min)
    np.minimum.at(first, holder, times)
    np.maximum.at(last, holder, times)
    channel_names = [CHANNEL_OF[k[2]] for k in KINDS] + ["web"]
    channels = sorted(set(channel_names))
    of_kind = np.array([channels.index(c) for c in channel_names])
    key = holder * len(channels) + of_kind[kinds]
    size = profiles * len(channels)
    per_channel = np.bincount(key, minlength=size)
    channel_first = np.full(size, np.iinfo(np.int64).max)
    channel_last = np.full(size, np.iinfo(np.int64).min)
    np.minimum.at(channel_first, key, times)
    np.maximum.at(channel_last, key, times)
    start_text = _stamp(plan.start, dialect)
    first_text = _stamp(np.where(counts > 0, first, plan.start), dialect)
    last_text = _stamp(np.where(counts > 0, last, plan.stop), dialect)
    stop_text = _stamp(plan.stop, dialect)
    counts_list, merged_list, seeds = counts.tolist(), plan.merged_into.tolist(), plan.traits_seed.tolist()
    per_channel_list = per_channel.tolist()
    for index in range(profiles):
        survivor = merged_list[index]
        merged = survivor >= 0
        traits = _traits(plan, index, start_text[index])
        name = f"{traits['first_name']} {traits['last_name']}"
        seen: dict[str, Any] = {}
        base = index * len(channels)
        for c, channel in enumerate(channels):
            if per_channel_list[base + c]:
                seen[channel] = {
                    "first_seen": _iso(int(channel_first[base + c])),
                    "last_seen": _iso(int(channel_last[base + c])),
                    "events": per_channel_list[base + c],
                }
        r = seeds[index]
        tags = ["vip"] if r % 50 == 0 else ["wholesale"] if r % 97 == 1 else []
        meta = {k: [start_text[index][:19].replace(" ", "T"), "Web"] for k in traits}
        yield (
            plan.profile_ids[index],
            start_text[index],
            first_text[index],
            last_text[index],
            counts_list[index],
            None if merged else name,
            None if merged else name.lower(),
            "{}" if merged else orjson.dumps(traits).decode(),
            "{}" if merged else orjson.dumps(meta).decode(),
            orjson.dumps(seen).decode(),
            plan.profile_ids[survivor] if merged else None,
            stop_text[index] if merged else None,
            None,
            orjson.dumps(tags).decode(),
        )


PROFILE_COLUMNS = (
    "id",
    "created_at",
    "first_seen",
    "last_seen",
    "event_count",
    "display_name",
    "search_name",
    "traits",
    "trait_meta",
    "channels",
    "merged_into",
    "merged_at",
    "owner_id",
    "tags",
)
IDENTITY_COLUMNS = ("kind", "value", "profile_id", "original_profile_id", "source_id", "first_seen")
EVENT_COLUMNS = (
    "profile_id",
    "original_profile_id",
    "source_id",
    "channel",
    "type",
    "name",
    "message_id",
    "user_id",
    "anonymous_id",
    "timestamp",
    "sent_at",
    "received_at",
    "properties",
    "traits",
    "context",
)


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat()


def identity_rows(plan: Plan, dialect: str, sources: dict[str, int]) -> Iterator[tuple[Any, ...]]:
    web = sources["Web"]
    start_text = _stamp(plan.start, dialect)
    for index, profile_id in enumerate(plan.profile_ids):
        survivor = int(plan.merged_into[index])
        holder = plan.profile_ids[survivor] if survivor >= 0 else profile_id
        at = start_text[index]
        first, last = _names(plan, index)
        for device in range(int(plan.devices[index])):
            yield ("anonymous_id", _anonymous(plan, index, device), holder, profile_id, web, at)
        if plan.has_user[index]:
            yield ("user_id", f"user-{index:07d}", holder, profile_id, web, at)
        if plan.has_email[index]:
            yield ("email", _email(index, first, last), holder, profile_id, web, at)
        if plan.has_phone[index]:
            yield ("phone", _phone(index), holder, profile_id, web, at)


def _products(r: int) -> tuple[str, float]:
    """A products list of one to three lines and its total."""
    lines, total = [], 0.0
    for n in range(1 + (r >> 20) % 3):
        sku, name, category, price = PRODUCTS[(r >> (23 + 3 * n)) % len(PRODUCTS)]
        quantity = 1 + (r >> (33 + 2 * n)) % 2
        total += price * quantity
        lines.append(
            f'{{"product_id":"{sku}","name":"{name}","category":"{category}","price":{price},'
            f'"quantity":{quantity}}}'
        )
    return "[" + ",".join(lines) + "]", round(total, 2)


def _properties(maker: str, r: int, number: int, week: int) -> str:
    if maker == "page":
        path = PAGES[r % len(PAGES)]
        return (
            f'{{"path":"{path}","url":"https://shop.example.com{path}","title":"Threadline Goods",'
            f'"referrer":"https://www.google.com/","campaign":"{CAMPAIGNS[(r >> 5) % len(CAMPAIGNS)]}"}}'
        )
    if maker == "product":
        sku, name, category, price = PRODUCTS[r % len(PRODUCTS)]
        return (
            f'{{"product_id":"{sku}","sku":"{sku}","name":"{name}","category":"{category}",'
            f'"brand":"Threadline Goods","price":{price},"currency":"USD","position":{1 + (r >> 4) % 24},'
            f'"url":"https://shop.example.com/products/{sku.lower()}"}}'
        )
    if maker in ("order", "cart"):
        products, total = _products(r)
        if maker == "cart":
            return f'{{"cart_id":"c-{number}","products":{products},"value":{total}}}'
        shipping = 0.0 if total >= 100 else 7.5
        return (
            f'{{"order_id":"o-{number}","checkout_id":"k-{number}","revenue":{round(total + shipping, 2)},'
            f'"total":{round(total + shipping, 2)},"shipping":{shipping},"tax":{round(total * 0.08, 2)},'
            f'"currency":"USD","coupon":"{("", "WELCOME10", "SPRING15")[(r >> 10) % 3]}",'
            f'"products":{products}}}'
        )
    if maker == "search":
        return f'{{"query":"{SEARCHES[r % len(SEARCHES)]}","results":{(r >> 3) % 60}}}'
    if maker == "app":
        return f'{{"from_background":{"true" if r % 2 else "false"},"build":"4.2.{r % 7}"}}'
    if maker == "email":
        campaign = ("newsletter", "spring_sale", "abandoned_cart", "win_back")[r % 4]
        return (
            f'{{"campaign_id":"cmp-{week}-{r % 4}","campaign_name":"{campaign}_w{week}",'
            f'"email_id":"m-{number}","subject":"This week at Threadline Goods"}}'
        )
    if maker == "sms":
        return f'{{"campaign_name":"sms_w{week}","message_id":"s-{number}","segments":{1 + r % 2}}}'
    if maker == "ticket":
        return f'{{"ticket_id":"t-{number}","subject":"{TICKETS[r % len(TICKETS)]}","priority":"normal"}}'
    return f'{{"duration_seconds":{30 + r % 900},"direction":"inbound"}}'


def event_rows(
    plan: Plan, dialect: str, sources: dict[str, int], seed: int, start: int, stop: int
) -> list[tuple[Any, ...]]:
    """Events start..stop (in time order) as rows of EVENT_COLUMNS."""
    times = plan.event_time[start:stop]
    stamps = _stamp(times, dialect)
    received = _stamp(times + 2, dialect)
    rows = []
    ids = plan.profile_ids
    has_user, devices = plan.lists("has_user"), plan.lists("devices")
    holders = plan.event_profile[start:stop].tolist()
    originals = plan.event_original[start:stop].tolist()
    kinds = plan.event_kind[start:stop].tolist()
    randoms = plan.event_random[start:stop].tolist()
    weeks = (times // 604_800).tolist()
    for offset in range(stop - start):
        number = start + offset
        holder, original, kind, r = holders[offset], originals[offset], kinds[offset], randoms[offset]
        user = f"user-{original:07d}" if has_user[original] else None
        if kind == IDENTIFY:
            kind_type, name, source = "identify", None, "Web"
            first_seen = stamps[offset]
            traits = orjson.dumps(_traits(plan, original, first_seen)).decode()
            properties = "{}"
        else:
            kind_type, name, source, _, maker = KINDS[kind]
            traits = None
            properties = _properties(maker, r, number, weeks[offset])
        channel = CHANNEL_OF[source]
        anonymous = _anonymous(plan, original, r % devices[original]) if channel in ("web", "app") else None
        if channel in ("web", "app") and (r >> 40) % 3 == 0:
            user = None  # browsing before signing in on this device
        if user is None and anonymous is None:
            anonymous = _anonymous(plan, original, 0)
        rows.append(
            (
                ids[holder],
                ids[original],
                sources[source],
                channel,
                kind_type,
                name,
                f"lg-{seed}-{number:010d}",
                user,
                anonymous,
                stamps[offset],
                stamps[offset],
                received[offset],
                properties,
                traits,
                CONTEXTS[source] % (1 + (r >> 50) % 250),
            )
        )
    return rows


# -- loading -------------------------------------------------------------------------------------


def _schema_of(url: str) -> str:
    """The PostgreSQL schema the URL writes to: its options' search_path, else public."""
    options = make_url(url).query.get("options", "")
    text_options = options if isinstance(options, str) else " ".join(options)
    for part in text_options.replace("-c ", "-c").split():
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0].strip('"')
    return "public"


def _psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_file(url: str) -> Path:
    return Path(make_url(url).database or "")


def marker_key(profiles: int, events: int, seed: int) -> str:
    return f"v{VERSION}:profiles={profiles}:events={events}:seed={seed}"


def stored_marker(url: str) -> str | None:
    if url.startswith("sqlite"):
        path = _sqlite_file(url)
        if not path.exists():
            return None
        with sqlite3.connect(path) as conn:
            try:
                row = conn.execute(f"SELECT key FROM {MARKER}").fetchone()
            except sqlite3.OperationalError:
                return None
        return None if row is None else str(row[0])
    with psycopg.connect(_psycopg_url(url)) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (_schema_of(url), MARKER),
        ).fetchone()
        if found is None:
            return None
        row = conn.execute(f'SELECT key FROM "{_schema_of(url)}".{MARKER}').fetchone()
        return None if row is None else str(row[0])


def _wipe(url: str) -> None:
    if url.startswith("sqlite"):
        path = _sqlite_file(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = _schema_of(url)
    with psycopg.connect(_psycopg_url(url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        # Extensions live in one schema: keep pg_trgm (migration 0004) in public, where a search_path of
        # "name,public" sees it, rather than in the first schema that happened to be migrated.
        conn.execute("CREATE SCHEMA IF NOT EXISTS public")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        if schema != "public":
            # With "name,public", Alembic would find public's alembic_version and migrate nothing here:
            # an empty version table of this schema's own makes it start from the first migration.
            conn.execute(
                f'CREATE TABLE "{schema}".alembic_version (version_num VARCHAR(32) NOT NULL, '
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )


def _check_migrated(url: str) -> None:
    if url.startswith("sqlite"):
        return
    schema = _schema_of(url)
    with psycopg.connect(_psycopg_url(url)) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".events',)).fetchone()
    if found is None or found[0] is None:
        raise RuntimeError(f"the migrations did not create Threadline's tables in schema {schema!r}")


def _sources(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        now = END - timedelta(days=SPAN_DAYS + 1)
        return {name: create_source(db, name, channel, now=now).id for name, channel in SOURCES}
    finally:
        db.dispose()


class _LoggedProgress(Progress):
    """Rich's bar on a terminal; a line every tenth of a task when the output is a log file (a build in
    the background), where the live bar would show nothing until the end."""

    def advance(self, task_id: Any, advance: float = 1) -> None:
        super().advance(task_id, advance)
        if console.is_terminal:
            return
        task = self._tasks[task_id]
        total = task.total or 1
        step = max(1, math.ceil(total / 10))
        if task.completed // step != (task.completed - advance) // step or task.completed >= total:
            console.print(
                f"{datetime.now():%H:%M:%S} {task.description}: {task.completed:,.0f} / {total:,.0f}",
                highlight=False,
            )


def _progress() -> Progress:
    return _LoggedProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _SqliteLoader:
    def __init__(self, url: str) -> None:
        self.conn = sqlite3.connect(_sqlite_file(url), isolation_level=None)
        for pragma in (
            "journal_mode=OFF",
            "synchronous=OFF",
            "cache_size=-1000000",
            "temp_store=MEMORY",
            "foreign_keys=OFF",
        ):
            self.conn.execute(f"PRAGMA {pragma}")
        self.indexes: list[str] = []

    def drop_indexes(self) -> None:
        marks = ",".join("?" * len(LOADED))
        rows = self.conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({marks})",
            LOADED,
        ).fetchall()
        self.indexes = [sql for _, sql in rows]
        for name, _ in rows:
            self.conn.execute(f'DROP INDEX "{name}"')

    def load(
        self, table: str, columns: Sequence[str], batches: Iterator[list[tuple[Any, ...]]], task: Any
    ) -> None:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        for batch in batches:
            self.conn.execute("BEGIN")
            self.conn.executemany(sql, batch)
            self.conn.execute("COMMIT")
            task(len(batch))

    def finish(self, key: str, progress: Progress) -> None:
        task = progress.add_task("indexes", total=len(self.indexes) + 1)
        for sql in self.indexes:
            self.conn.execute(sql)
            progress.advance(task)
        self.conn.execute("ANALYZE")
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (key TEXT PRIMARY KEY, built_at TEXT)")
        self.conn.execute(f"DELETE FROM {MARKER}")
        self.conn.execute(f"INSERT INTO {MARKER} VALUES (?, ?)", (key, datetime.now(UTC).isoformat()))
        self.conn.execute("PRAGMA journal_mode=WAL")
        progress.advance(task)
        self.conn.close()


class _PostgresLoader:
    def __init__(self, url: str) -> None:
        self.schema = _schema_of(url)
        self.conn = psycopg.connect(_psycopg_url(url), autocommit=True)
        self.conn.execute(f'SET search_path TO "{self.schema}"')
        self.conn.execute("SET synchronous_commit TO off")
        self.conn.execute("SET maintenance_work_mem TO '1GB'")
        self.indexes: list[str] = []
        self.constraints: list[tuple[str, str, str]] = []

    def drop_indexes(self) -> None:
        tables = list(LOADED)
        self.constraints = [
            (table, name, definition)
            for table, name, definition in self.conn.execute(
                "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
                "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = %s AND t.relname = ANY(%s) AND c.contype IN ('u', 'f') "
                "ORDER BY c.contype DESC",  # unique keys first when re-created: foreign keys may need them
                (self.schema, tables),
            ).fetchall()
        ]
        for table, name, _ in self.constraints:
            self.conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        rows = self.conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = %s AND i.tablename = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            (self.schema, tables),
        ).fetchall()
        self.indexes = [definition for _, definition in rows]
        for name, _ in rows:
            self.conn.execute(f'DROP INDEX "{name}"')

    def load(
        self, table: str, columns: Sequence[str], batches: Iterator[list[tuple[Any, ...]]], task: Any
    ) -> None:
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.conn.cursor() as cursor, cursor.copy(sql) as copy:
            for batch in batches:
                copy.write(_copy_text(batch))
                task(len(batch))

    def finish(self, key: str, progress: Progress) -> None:
        task = progress.add_task("indexes and keys", total=len(self.indexes) + len(self.constraints) + 1)
        for definition in self.indexes:
            self.conn.execute(definition)
            progress.advance(task)
        for table, name, definition in sorted(self.constraints, key=lambda c: "FOREIGN" in c[2]):
            self.conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            progress.advance(task)
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (key TEXT PRIMARY KEY, built_at TIMESTAMP)")
        self.conn.execute(f"DELETE FROM {MARKER}")
        self.conn.execute(f"INSERT INTO {MARKER} VALUES (%s, now())", (key,))
        for table in (*LOADED, "sources"):
            self.conn.execute(f"VACUUM ANALYZE {table}")  # autovacuum may be off: set hints and statistics
        progress.advance(task)
        self.conn.close()


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value:
            return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        return value
    return str(value)


def _copy_text(rows: list[tuple[Any, ...]]) -> bytes:
    return "".join("\t".join(map(_copy_field, row)) + "\n" for row in rows).encode()


def build(
    url: str, profiles: int = 1_000_000, events: int = 10_000_000, seed: int = 7, *, force: bool = False
) -> DataSet:
    """The data set at `url` (a SQLite file or a PostgreSQL database/schema): built unless one with the
    same parameters is there already (then only migrated to the latest schema)."""
    if events < profiles:
        raise ValueError("events must be at least profiles: every profile has its identify event")
    began = time.perf_counter()
    key = marker_key(profiles, events, seed)
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    if not force and stored_marker(url) == key:
        upgrade(url)
        return _describe(url, dialect, profiles, events, seed, built=False, began=began)
    console.print(f"building {key} at {make_url(url).render_as_string(hide_password=True)}")
    _wipe(url)
    upgrade(url)
    _check_migrated(url)
    sources = _sources(url)
    with _progress() as progress:
        plan_task = progress.add_task("plan (numpy)", total=1)
        plan = _plan(profiles, events, seed)
        progress.advance(plan_task)
        loader: _SqliteLoader | _PostgresLoader = (
            _SqliteLoader(url) if dialect == "sqlite" else _PostgresLoader(url)
        )
        loader.drop_indexes()
        task = progress.add_task("profiles", total=profiles)
        loader.load(
            "profiles",
            PROFILE_COLUMNS,
            _chunks(profile_rows(plan, dialect), CHUNK),
            lambda n: progress.advance(task, n),
        )
        identity_total = int(
            plan.devices.sum() + plan.has_user.sum() + plan.has_email.sum() + plan.has_phone.sum()
        )
        task = progress.add_task("identities", total=identity_total)
        loader.load(
            "identities",
            IDENTITY_COLUMNS,
            _chunks(identity_rows(plan, dialect, sources), CHUNK),
            lambda n: progress.advance(task, n),
        )
        task = progress.add_task("events", total=events)
        batches = (
            event_rows(plan, dialect, sources, seed, start, min(start + CHUNK, events))
            for start in range(0, events, CHUNK)
        )
        loader.load("events", EVENT_COLUMNS, batches, lambda n: progress.advance(task, n))
        del plan
        loader.finish(key, progress)
    upgrade(url)  # a no-op at head; makes sure the re-created objects still satisfy the migrations
    return _describe(url, dialect, profiles, events, seed, built=True, began=began)


def _describe(
    url: str, dialect: str, profiles: int, events: int, seed: int, *, built: bool, began: float
) -> DataSet:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            live = int(
                conn.execute(text("SELECT count(*) FROM profiles WHERE merged_into IS NULL")).scalar() or 0
            )
            identities = int(conn.execute(text("SELECT count(*) FROM identities")).scalar() or 0)
    finally:
        db.dispose()
    return DataSet(
        url, dialect, profiles, live, events, identities, seed, END, built, time.perf_counter() - began
    )


def sqlite_name(profiles: int, events: int, seed: int) -> str:
    """The file name the command line gives a SQLite data set (segment_eval.py finds it by this)."""
    return f"large-{profiles}p-{events}e-s{seed}.db"


def add_arguments(args: argparse.ArgumentParser, sqlite_dir: str) -> None:
    """The data set's options, for a benchmark that runs on it (segment_eval.py, dashboards.py)."""
    args.add_argument("--profiles", type=int, default=1_000_000)
    args.add_argument("--events", type=int, default=10_000_000)
    args.add_argument("--seed", type=int, default=7)
    args.add_argument("--repeat", type=int, default=3)
    args.add_argument("--sqlite-dir", default=sqlite_dir, help="where the SQLite data set lives")


def backends_for(options: argparse.Namespace, name: str) -> Iterator[Any]:
    """common.backends' databases, the SQLite one being the data set's own file in --sqlite-dir."""
    import common

    for backend in common.backends(options, name):
        if backend.name == "sqlite":
            path = Path(options.sqlite_dir) / sqlite_name(options.profiles, options.events, options.seed)
            backend = common.Backend("sqlite", f"sqlite:///{path}")
        yield backend


def default_url(database: str, args: argparse.Namespace) -> str:
    if database == "sqlite":
        return f"sqlite:///{Path(args.sqlite_dir) / sqlite_name(args.profiles, args.events, args.seed)}"
    return str(args.pg_url)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    args.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    args.add_argument("--pg-url", default="postgresql://127.0.0.1/bench")
    args.add_argument("--sqlite-dir", default=str(Path(__file__).resolve().parent / ".data"))
    args.add_argument("--profiles", type=int, default=1_000_000)
    args.add_argument("--events", type=int, default=10_000_000)
    args.add_argument("--seed", type=int, default=7)
    args.add_argument("--force", action="store_true", help="rebuild even when the data set is there")
    parsed = args.parse_args()
    chosen = ("postgresql", "sqlite") if parsed.database == "both" else (parsed.database,)
    for database in chosen:
        found = build(
            default_url(database, parsed), parsed.profiles, parsed.events, parsed.seed, force=parsed.force
        )
        verb = "built" if found.built else "reused"
        console.print(
            f"{database}: {verb} in {found.seconds:,.0f} s: {found.profiles:,} profiles "
            f"({found.live_profiles:,} live), {found.identities:,} identities, {found.events:,} events, "
            f"seed {found.seed}, now = {found.now:%Y-%m-%d}"
        )
        if database == "sqlite":
            path = _sqlite_file(found.url)
            console.print(f"  file {path} ({os.path.getsize(path) / 2**30:.2f} GiB)")


if __name__ == "__main__":
    main()
