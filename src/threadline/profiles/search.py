"""Finding customers by what a person types: a name fragment, an email, a phone number or its digits.

A name contains the text (any part of it: "ang" finds Zhang, "伟明" finds 张伟明), an identifier starts
with it (normalised when it parses as an email or phone number), or a phone number contains its digits
(people remember the end of a number). "Contains" uses the trigram indexes of migration 0004 (pg_trgm on
PostgreSQL, FTS5 on SQLite) when the text has three characters or more; shorter text reads every name.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, Select, column, literal_column, select, table, union
from sqlalchemy.orm import Session

from threadline.identity import EMAIL, PHONE, InvalidIdentifier, normalise
from threadline.storage import PHONE_FTS, PROFILE_NAME_FTS
from threadline.storage.models import Identity, Profile

# A trigram index needs three characters of the text to find anything.
TRIGRAM = 3
_profile_names = table(PROFILE_NAME_FTS, column("rowid"))
_phones = table(PHONE_FTS, column("rowid"))


def search_condition(session: Session, q: str, region: str) -> ColumnElement[bool]:
    """Profiles matching `q`, as a condition on `profiles`.

    Each way of matching is its own SELECT in a UNION so each can use its own index; one OR across them
    makes the planner read every customer instead.
    """
    sqlite = session.bind is not None and session.bind.dialect.name == "sqlite"
    branches: list[Select[Any]] = [_identifier_prefix(c) for c in sorted(_spellings(q, region))]
    digits = re.sub(r"\D", "", q)
    if len(digits) >= 4 and len(digits) >= len(q.replace(" ", "").replace("-", "")) - 1:
        branches.append(_phone_digits_sqlite(digits) if sqlite else _phone_digits(digits))
    name = q.lower()
    branches.append(_name_sqlite(name) if sqlite and len(name) >= TRIGRAM else _name_contains(name, sqlite))
    return Profile.id.in_(union(*branches))


def _spellings(q: str, region: str) -> set[str]:
    """What `q` may be stored as: as typed, lower-cased, and normalised as an email or phone number."""
    found = {q, q.lower()}
    for kind in (EMAIL, PHONE):
        try:
            found.add(normalise(kind, q, region=region, field="q").value)
        except InvalidIdentifier:
            continue
    return {s for s in found if s}


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


def _name_sqlite(name: str) -> Select[Any]:
    # With the trigram tokenizer a phrase matches any substring of at least three characters. MATCH
    # takes the text as a phrase, so %, _ and quotes typed by a person are plain characters.
    matching = select(_profile_names.c.rowid).where(
        literal_column(PROFILE_NAME_FTS).op("MATCH")(_fts_phrase(name))
    )
    return select(Profile.id).where(literal_column("profiles.rowid").in_(matching))


def _phone_digits_sqlite(digits: str) -> Select[Any]:
    matching = select(_phones.c.rowid).where(literal_column(PHONE_FTS).op("MATCH")(_fts_phrase(digits)))
    return select(Identity.profile_id).where(Identity.id.in_(matching))
