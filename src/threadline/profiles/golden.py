"""The golden record: which of a trait's observed values a profile shows (survivorship rules).

Each trait key has a rule, kept per workspace in `workspace_settings` ("golden_record.rules") with a
trust order of sources:
- `recent` (the default): the value with the latest event time;
- `trusted`: the value from the most trusted source (earliest in `source_trust`); between observations
  from equally trusted sources, or from sources not in the list, the latest;
- `frequent`: the value the most messages carried; a tie goes to the one seen latest.

A profile remembers what it has seen of each trait in `trait_meta`: `[stamp, source, rule, seen]`, the
observation behind the shown value, the rule that chose it, and `seen`, a list of `[value, source,
messages, latest stamp]` (at most MAX_SEEN), or, while the shown value from that source is all there
is (most traits), just its number of messages. So the rules pick from the same facts on a message
(ProfileState.apply_traits), a merge (absorb), an unmerge's replay (rebuilt) and after the rules change
(`recompute_golden`), without reading trait history. A key last written before these counts were kept
has `[stamp, source]` only, until `recompute_golden` seeds it from trait history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.exc import OperationalError

from threadline.errors import Invalid
from threadline.storage import Database, put_setting
from threadline.storage.models import Profile, Source, TraitChange, WorkspaceSetting

RECENT, TRUSTED, FREQUENT = "recent", "trusted", "frequent"
RULES = (RECENT, TRUSTED, FREQUENT)
GOLDEN_RULES_KEY = "golden_record.rules"
# (value, source) pairs remembered per trait: enough for a person's few emails or plans; a trait that
# changes with every message (a points balance) keeps its latest few and its most seen.
MAX_SEEN = 8
MAX_RULES = 500
MAX_TRUSTED_SOURCES = 100
MAX_KEY = 200  # trait_history.key


@dataclass(frozen=True, slots=True)
class GoldenRules:
    """The workspace's survivorship rules: trait key -> rule (a key not named is `recent`), and the
    source names from most to least trusted."""

    rules: Mapping[str, str] = field(default_factory=dict)
    source_trust: tuple[str, ...] = ()
    _ranks: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ranks", {name: rank for rank, name in enumerate(self.source_trust)})

    def rule_for(self, key: str) -> str:
        return self.rules.get(key, RECENT)

    def trust(self, source: str) -> int:
        """Higher is more trusted; every source not in the list ranks below all listed ones, equally."""
        return -self._ranks.get(source, len(self.source_trust))

    def as_json(self) -> dict[str, Any]:
        return {"rules": dict(sorted(self.rules.items())), "source_trust": list(self.source_trust)}


DEFAULT_RULES = GoldenRules()


# -- picking the shown value ---------------------------------------------------------------------
# An entry of `seen`: [value, source, messages, latest event time (ISO, naive UTC)]. Its position is
# the order in which entries last took a newer-or-equal time: the later, the later it arrived, which
# breaks ties between equal event times as ingestion always has (the last one to arrive wins).


def observe(seen: list[list[Any]], value: Any, source: str, stamp: str) -> None:
    """Count one message that carried `value` from `source` at event time `stamp`."""
    for index, entry in enumerate(seen):
        if entry[1] == source and entry[0] == value:
            entry[2] += 1
            if stamp >= entry[3]:
                entry[3] = stamp
                if index != len(seen) - 1:
                    seen.append(seen.pop(index))
            return
    seen.append([value, source, 1, stamp])


def choose(seen: list[list[Any]], rule: str, rules: GoldenRules) -> list[Any]:
    """The entry whose value `rule` shows: the one function behind every shown value."""
    best: list[Any] = seen[0]
    if rule not in (TRUSTED, FREQUENT):  # recent: the common case, kept cheap
        for entry in seen:
            if entry[3] >= best[3]:  # on a tie, the later entry: it arrived later
                best = entry
        return best
    best_key: tuple[Any, ...] = ()
    for entry in seen:
        if rule == TRUSTED:
            key: tuple[Any, ...] = (rules.trust(entry[1]), entry[3])
        else:
            key = (sum(other[2] for other in seen if other[0] == entry[0]), entry[3])
        if key >= best_key:
            best, best_key = entry, key
    return best


def settle(seen: list[list[Any]], rule: str, rules: GoldenRules) -> list[Any]:
    """Choose the shown entry, then forget the weakest other one while there are more than MAX_SEEN:
    the fewest messages, then the oldest. Returns the shown entry."""
    winner = choose(seen, rule, rules)
    while len(seen) > MAX_SEEN:
        seen.remove(min((e for e in seen if e is not winner), key=lambda e: (e[2], e[3])))
    return winner


def seen_of(meta: list[Any], shown: Any) -> list[list[Any]]:
    """A copy of what a trait_meta entry has seen, as a list; a key from before counts were kept knows
    only its shown value, once."""
    if len(meta) < 4:
        return [[shown, meta[1], 1, meta[0]]]
    if isinstance(meta[3], int):
        return [[shown, meta[1], meta[3], meta[0]]]
    return [list(entry) for entry in meta[3]]


def counted(meta: list[Any] | None) -> bool:
    """Whether a trait_meta entry keeps counts (else it is `[stamp, source]` from before they were)."""
    return meta is not None and len(meta) >= 4


def meta_for(winner: list[Any], rule: str, seen: list[list[Any]], *, counts: bool) -> list[Any]:
    """The trait_meta entry for a shown entry (`winner`) of `seen`."""
    if not counts:
        return [winner[3], winner[1]]
    return [winner[3], winner[1], rule, winner[2] if len(seen) == 1 else seen]


def copied(meta: list[Any]) -> list[Any]:
    """A trait_meta entry another profile can change without changing this one."""
    if counted(meta) and not isinstance(meta[3], int):
        return [*meta[:3], [list(entry) for entry in meta[3]]]
    return list(meta)


def combine(survivor: list[list[Any]], merged: list[list[Any]]) -> list[list[Any]]:
    """What two profiles have seen of a trait, together: counts add up, the latest time stays. The
    survivor's entries come last, so that between equal event times the survivor's value stays shown
    (as a merge always kept it)."""
    together = [list(entry) for entry in merged]
    for entry in survivor:
        same = next((e for e in together if e[1] == entry[1] and e[0] == entry[0]), None)
        mine = list(entry)
        if same is not None:
            together.remove(same)
            mine[2] += same[2]
            mine[3] = max(mine[3], same[3])
        together.append(mine)
    return together


def seed_from_history(
    observations: Iterable[tuple[Any, str, str]], shown: Any, meta: list[Any]
) -> list[list[Any]]:
    """`seen` for a key written before counts were kept: one message per trait history row (value,
    source, stamp; in arrival order), and the shown value's own latest time. Trait history skipped a
    message that repeated the shown value, so these counts are a floor."""
    seen: list[list[Any]] = []
    for value, source, stamp in observations:
        observe(seen, value, source, stamp)
    stamp, source = meta[0], meta[1]
    same = next((e for e in seen if e[1] == source and e[0] == shown), None)
    if same is None or stamp > same[3]:
        observe(seen, shown, source, stamp)
    return seen


def count_of(meta: list[Any] | None, shown: Any, value: Any) -> int | None:
    """How many messages carried `value` for a trait that shows `shown`, as its trait_meta counts them
    (None if it does not count, or has forgotten the value)."""
    if meta is None or not counted(meta):
        return None
    return sum(entry[2] for entry in seen_of(meta, shown) if entry[0] == value) or None


# -- the workspace's rules ------------------------------------------------------------------------


def _field_error(field_name: str, message: str) -> Invalid:
    return Invalid(f"{field_name}: {message}", details={"field": field_name})


def check_rules(value: Any, *, sources: Iterable[str] | None = None) -> GoldenRules:
    """Rules from `{"rules": {key: rule}, "source_trust": [source, ...]}`, or an Invalid naming the field.
    With `sources`, every name in the trust order must be one of them. `recent` rules are dropped: it
    is what a key without a rule gets."""
    if not isinstance(value, Mapping):
        raise _field_error("rules", "must be an object with rules and source_trust")
    unknown = sorted(set(value) - {"rules", "source_trust"})
    if unknown:
        raise _field_error(str(unknown[0]), "unknown field; expected rules and source_trust")
    raw_rules = value.get("rules") or {}
    if not isinstance(raw_rules, Mapping):
        raise _field_error("rules", "must be an object of trait key -> rule")
    if len(raw_rules) > MAX_RULES:
        raise _field_error("rules", f"at most {MAX_RULES} trait keys")
    rules: dict[str, str] = {}
    for raw_key, rule in raw_rules.items():
        key = str(raw_key).strip()
        if not key:
            raise _field_error("rules", "a trait key must not be empty")
        if len(key) > MAX_KEY:
            raise _field_error(f"rules.{key[:40]}", f"a trait key has at most {MAX_KEY} characters")
        if rule not in RULES:
            raise _field_error(f"rules.{key}", f"must be one of {', '.join(RULES)}")
        if key in rules:
            raise _field_error(f"rules.{key}", "is named twice")
        if rule != RECENT:
            rules[key] = rule
    raw_trust = value.get("source_trust") or []
    if not isinstance(raw_trust, list | tuple):
        raise _field_error("source_trust", "must be a list of source names, most trusted first")
    if len(raw_trust) > MAX_TRUSTED_SOURCES:
        raise _field_error("source_trust", f"at most {MAX_TRUSTED_SOURCES} sources")
    known = set(sources) if sources is not None else None
    trust: list[str] = []
    for index, raw_name in enumerate(raw_trust):
        name = raw_name.strip() if isinstance(raw_name, str) else ""
        where = f"source_trust[{index}]"
        if not name:
            raise _field_error(where, "must be a source name")
        if name in trust:
            raise _field_error(where, f"{name} is listed twice")
        if known is not None and name not in known:
            raise _field_error(where, f"no source is called {name}")
        trust.append(name)
    if TRUSTED in rules.values() and not trust:
        raise _field_error("source_trust", "a trusted rule needs at least one source in the trust order")
    return GoldenRules(rules, tuple(trust))


def _stored(value: Any) -> GoldenRules:
    """Rules as stored (checked when they were saved); anything unreadable counts as no rules."""
    try:
        return check_rules(value)
    except Invalid:
        return DEFAULT_RULES


def golden_rules_in(connection: Connection) -> GoldenRules:
    """The workspace's rules, read in the caller's transaction (a writer applies what is committed)."""
    stored = connection.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == GOLDEN_RULES_KEY))
    return DEFAULT_RULES if stored is None else _stored(stored)


@dataclass(frozen=True, slots=True)
class GoldenSetting:
    rules: GoldenRules
    updated_at: datetime | None
    updated_by: int | None


def get_golden_rules(db: Database) -> GoldenSetting:
    with db.read() as session:
        row = session.get(WorkspaceSetting, GOLDEN_RULES_KEY)
    if row is None:
        return GoldenSetting(DEFAULT_RULES, None, None)
    return GoldenSetting(_stored(row.value), row.updated_at, row.updated_by)


def set_golden_rules(db: Database, value: Any, *, user_id: int | None, now: datetime) -> GoldenRules:
    """Check and save the rules. They apply to messages from the next batch on; `recompute_golden`
    applies them to what profiles already show."""
    with db.write() as session:
        rules = check_rules(value, sources=session.scalars(select(Source.name)))
        put_setting(session.connection(), GOLDEN_RULES_KEY, rules.as_json(), user_id=user_id, now=now)
    return rules


# -- recomputing what profiles show ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recomputed:
    profiles: int  # live profiles looked at
    changed: int  # of which a shown value, its source or its counts changed


def recompute_golden(
    db: Database, *, batch_size: int = 500, progress: Callable[[int, int], None] | None = None
) -> Recomputed:
    """Pick every live profile's shown trait values again under the rules as they are now, in batches
    (one short write transaction each, so ingestion goes on in between). Keys from before counts were
    kept are seeded from trait history first. `progress(done, total)` follows the batches."""
    with db.read() as session:
        total = session.scalar(select(func.count()).select_from(Profile).where(Profile.merged_into.is_(None)))
    done = changed = 0
    after = ""
    while True:
        ids, count = _recompute_batch(db, after, batch_size)
        if not ids:
            break
        after, done, changed = ids[-1], done + len(ids), changed + count
        if progress is not None:
            progress(done, max(int(total or 0), done))
    return Recomputed(done, changed)


_REPICKED = ("traits", "trait_meta", "display_name", "search_name")


def _recompute_batch(db: Database, after: str, size: int) -> tuple[list[str], int]:
    """One batch of live profiles after id `after`: returns their ids and how many changed."""
    for attempt in range(1, 4):
        try:
            with db.write() as session:
                return _repick(session.connection(), after, size)
        except OperationalError as error:  # PostgreSQL broke a deadlock with ingestion: try again
            if attempt == 3 or getattr(error.orig, "sqlstate", None) not in {"40P01", "40001"}:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _repick(conn: Connection, after: str, size: int) -> tuple[list[str], int]:
    # state.py imports this module for the picking; a batch needs the whole ProfileState.
    from threadline.profiles.state import ProfileState

    rules = golden_rules_in(conn)
    table = Profile.__table__
    query = select(table).where(table.c.merged_into.is_(None), table.c.id > after).order_by(table.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()  # a message for one of these waits for the batch
    states = [ProfileState.from_row(dict(row._mapping)) for row in conn.execute(query.limit(size))]
    uncounted = [s.id for s in states if not all(map(counted, s.trait_meta.values()))]
    history = _history_of(conn, uncounted)
    rows = [s.row() for s in states if s.repick(rules, history.get(s.id, {}))]
    if rows:
        stmt = update(Profile).where(Profile.id == bindparam("b_id"))
        conn.execute(
            stmt.values({c: bindparam(c) for c in _REPICKED}),
            [{**{c: row[c] for c in _REPICKED}, "b_id": row["id"]} for row in rows],
        )
    return [s.id for s in states], len(rows)


def _history_of(conn: Connection, profile_ids: list[str]) -> dict[str, dict[str, list[tuple[Any, str, str]]]]:
    """Trait history by profile and key, in arrival order, as (value, source, ISO stamp)."""
    found: dict[str, dict[str, list[tuple[Any, str, str]]]] = {}
    for start in range(0, len(profile_ids), 500):
        rows = conn.execute(
            select(TraitChange.profile_id, TraitChange.key, TraitChange.value, Source.name)
            .add_columns(TraitChange.observed_at)
            .join(Source, Source.id == TraitChange.source_id)
            .where(TraitChange.profile_id.in_(profile_ids[start : start + 500]))
            .order_by(TraitChange.id)
        )
        for profile_id, key, value, source, observed_at in rows:
            by_key = found.setdefault(profile_id, {})
            by_key.setdefault(key, []).append((value, source, observed_at.isoformat()))
    return found
