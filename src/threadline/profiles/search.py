"""Finding customers by what a person types: a name fragment, an email, a phone number or its digits.

A name contains the text (any part of it: "ang" finds Zhang, "伟明" finds 张伟明), an identifier starts
with it (normalised when it parses as an email or phone number), or a phone number contains its digits
(people remember the end of a number). "Contains" uses the trigram indexes of migration 0004 (pg_trgm on
PostgreSQL, FTS5 on SQLite) when the text has three characters or more; shorter text reads every name.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    union,
)
from sqlalchemy.orm import Session

from threadline.identity import EMAIL, PHONE, InvalidIdentifier, normalise
from threadline.storage import PHONE_FTS, PROFILE_NAME_FTS
from threadline.storage.models import Identity, Profile

# A trigram index needs three characters of the text to find anything.
TRIGRAM = 3
# Above this many matches, walk the list's index instead of fetching every match (see below).
BROAD = 2_000
_profile_names = table(PROFILE_NAME_FTS, column("rowid"))
_phones = table(PHONE_FTS, column("rowid"))


def search_condition(session: Session, q: str, region: str) -> ColumnElement[bool]:
    """Profiles matching `q`, as a condition on `profiles`."""
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        return _sqlite_condition(session, q, region)
    name = _name_contains(q.lower(), sqlite=False)
    id_branches = [_identifier_prefix_postgresql(c) for c in _spellings(q, region)]
    digits = _phone_digits_of(q)
    if digits:
        id_branches.append(_phone_digits(digits))
    broad = len(q) < TRIGRAM or _planned_rows(session, name) > BROAD
    if broad or _more_than(session, *id_branches, limit=BROAD):
        # Many matches: the list walks its newest-first index and stops after one page (or the
        # count's cap) instead of joining every match and sorting them. Each row it reads is tested
        # by its name directly, and by identifiers through a sub-select that, under OR, PostgreSQL
        # keeps as a hashed filter.
        by_name = Profile.search_name.like("%" + _like(q.lower()) + "%")
        return or_(by_name, Profile.id.in_(union(*id_branches))) if id_branches else by_name
    # Few matches: each way of matching is its own SELECT in a UNION, each on its own index, and the
    # list starts from the matches.
    return Profile.id.in_(union(name, *id_branches))


def _sqlite_condition(session: Session, q: str, region: str) -> ColumnElement[bool]:
    """SQLite's planner drives a search from the matches, one profile row each. Past BROAD matches
    ("mar" in a big list) it is cheaper to walk the list's own index newest first and test each entry
    against the matches, which needs only the profile's rowid and id, both in every index of
    `profiles`; the unary + keeps the planner from driving from the matches then. The page stops after
    its 50 rows and the count after SEARCH_COUNT_CAP, so neither walks far when matches are many.
    """
    name = q.lower()
    if len(name) >= TRIGRAM:
        name_rows = _name_rowids_sqlite(name)
    else:  # too short for a trigram: read every name, from the covering index on search_name
        name_rows = select(literal_column("rowid")).select_from(Profile.__table__)
        name_rows = name_rows.where(Profile.search_name.like("%" + _like(name) + "%", escape="\\"))
    id_branches = [_identifier_prefix(c) for c in _spellings(q, region)]
    digits = _phone_digits_of(q)
    if digits:
        id_branches.append(_phone_digits_sqlite(digits))
    broad = len(name) < TRIGRAM or _more_than(session, name_rows, *id_branches, limit=BROAD)
    rowid, profile_id = ("+profiles.rowid", "+profiles.id") if broad else ("profiles.rowid", "profiles.id")
    by_name = literal_column(rowid).in_(name_rows)
    return or_(by_name, literal_column(profile_id).in_(union(*id_branches))) if id_branches else by_name


def _planned_rows(session: Session, query: Select[Any]) -> float:
    """PostgreSQL's own estimate of a query's rows. For a name LIKE it comes from the trigram index's
    statistics at planning cost; counting the real matches would fetch a profile row for each
    trigram candidate just to recheck it (thousands for "lucas.", where the dot never matches a name).
    """
    compiled = query.compile(dialect=session.get_bind().dialect)
    plan = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar()
    document: Any = json.loads(plan) if isinstance(plan, str) else plan
    return float(document[0]["Plan"]["Plan Rows"])


def _more_than(session: Session, *queries: Select[Any] | CompoundSelect[Any], limit: int) -> bool:
    found = 0
    for query in queries:
        found += int(session.scalar(select(func.count()).select_from(query.limit(limit + 1).subquery())) or 0)
    return found > limit


def _phone_digits_of(q: str) -> str:
    """The digits of `q` when it looks like (part of) a phone number: 4+ digits and little else."""
    digits = re.sub(r"\D", "", q)
    if len(digits) >= 4 and len(digits) >= len(q.replace(" ", "").replace("-", "")) - 1:
        return digits
    return ""


def _spellings(q: str, region: str) -> list[str]:
    """What `q` may be stored as: as typed, lower-cased, and normalised as an email or phone number.

    None below three characters: "an" starts a third of all anonymous ids, and nobody looks a customer
    up by the first two characters of an identifier.
    """
    if len(q) < TRIGRAM:
        return []
    found = {q, q.lower()}
    for kind in (EMAIL, PHONE):
        try:
            found.add(normalise(kind, q, region=region, field="q").value)
        except InvalidIdentifier:
            continue
    return sorted(s for s in found if s)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _identifier_prefix(prefix: str) -> Select[Any]:
    # A prefix as a range [p, p with its last character incremented) uses the (value, kind) index under
    # any collation, which LIKE alone does not (SQLite's LIKE ignores case; PostgreSQL's needs the C
    # collation). LIKE then keeps exactly the prefixes inside the range.
    return select(Identity.profile_id).where(
        Identity.value >= prefix,
        Identity.value < prefix[:-1] + chr(ord(prefix[-1]) + 1),
        Identity.value.like(_like(prefix) + "%", escape="\\"),
    )


def _identifier_prefix_postgresql(prefix: str) -> Select[Any]:
    # ix_identities_value_profile uses varchar_pattern_ops on PostgreSQL (migration 0009): a prefix LIKE
    # is an index range there under any collation, estimated well, and answered from the index alone.
    return select(Identity.profile_id).where(Identity.value.like(_like(prefix) + "%"))


def _name_contains(name: str, sqlite: bool) -> Select[Any]:
    # PostgreSQL answers this from ix_profiles_search_name_trgm: the LIKE stays a plain LIKE on the
    # column (backslash is PostgreSQL's default escape; an ESCAPE clause would hide the pattern from the
    # index), under the index's own WHERE. SQLite's LIKE has no default escape.
    pattern = "%" + _like(name) + "%"
    contains = Profile.search_name.like(pattern, escape="\\") if sqlite else Profile.search_name.like(pattern)
    return select(Profile.id).where(Profile.merged_into.is_(None), contains)


def _phone_digits(digits: str) -> Select[Any]:
    return select(Identity.profile_id).where(Identity.kind == PHONE, Identity.value.like(f"%{digits}%"))


def _fts_phrase(text: str) -> str:
    """`text` as one FTS5 phrase: inside double quotes nothing is syntax but a doubled quote."""
    return '"' + text.replace('"', '""') + '"'


def _name_rowids_sqlite(name: str) -> Select[Any]:
    """The rowids of profiles whose name contains `name` (3+ characters).

    With the trigram tokenizer a phrase matches any substring of at least three characters. MATCH
    takes the text as a phrase, so %, _ and quotes typed by a person are plain characters.
    """
    return select(_profile_names.c.rowid).where(
        literal_column(PROFILE_NAME_FTS).op("MATCH")(_fts_phrase(name))
    )


def _phone_digits_sqlite(digits: str) -> Select[Any]:
    matching = select(_phones.c.rowid).where(literal_column(PHONE_FTS).op("MATCH")(_fts_phrase(digits)))
    return select(Identity.profile_id).where(Identity.id.in_(matching))
