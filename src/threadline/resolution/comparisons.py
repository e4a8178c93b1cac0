"""The comparisons of the matching model, as Splink settings: each level's SQL, label and fallback m/u.

Each comparison reads the columns `threadline.resolution.blocking.prepare` adds to the records (`given`,
`family`, `given_formal`, `name_key`, `dob`, `dob_swapped`, `email_local`, `phone_tail`, normalised
`street`/`postcode`/`city`). Levels run top to bottom and the first whose condition holds wins; the first
level is the null level (weight 0), the last is "different".

Households. The model adds up each comparison's weight as if they were independent, which people who
live together break: a couple shares an address, often a landline and a family name, so those three
together would outweigh two different first names and birth dates. A phone or address shared by records
whose given names clearly differ (`GIVEN_NAMES_DIFFER`) therefore lands on a neutral level (m = u, fixed:
weight 0), and the names and birth dates decide. A person's own records rarely have two unrelated given
names, so matches lose little.

The m and u probabilities written here are the model's fallback: what it keeps for a level that training
could not estimate (a tiny data set, a level no sampled pair reached). They are rough shares from
customer data: m = share of true matches at the level, u = share of random non-matching pairs.

The conditions are written once, in DuckDB's SQL; `as_splink("spark")` translates them for Splink's Spark
backend (`threadline.resolution.spark`) with sqlglot, mapping the two functions Spark lacks (`in_spark`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import sqlglot
from sqlglot import exp

Dialect = Literal["duckdb", "spark"]


@dataclass(frozen=True, slots=True)
class Level:
    label: str
    sql: str
    m: float
    u: float
    tf_column: str | None = None  # term-frequency adjustment on this column's value (exact levels)
    neutral: bool = False  # m = u, never trained: the level carries no evidence

    def as_splink(self, dialect: Dialect = "duckdb") -> dict[str, Any]:
        level: dict[str, Any] = {
            "sql_condition": self.sql if dialect == "duckdb" else in_spark(self.sql),
            "label_for_charts": self.label,
            "m_probability": self.m,
            "u_probability": self.m if self.neutral else self.u,
        }
        if self.neutral:
            level["fix_m_probability"] = level["fix_u_probability"] = True
        if self.tf_column:
            level["tf_adjustment_column"] = self.tf_column
            level["tf_adjustment_weight"] = 1.0
        return level


@dataclass(frozen=True, slots=True)
class Comparison:
    name: str
    description: str
    null_sql: str
    levels: tuple[Level, ...]  # the "different" level is added by as_splink

    def as_splink(self, dialect: Dialect = "duckdb") -> dict[str, Any]:
        null_sql = self.null_sql if dialect == "duckdb" else in_spark(self.null_sql)
        levels: list[dict[str, Any]] = [
            {"sql_condition": null_sql, "label_for_charts": "null", "is_null_level": True}
        ]
        levels += [level.as_splink(dialect) for level in self.levels]
        m_left = 1 - sum(level.m for level in self.levels)
        u_left = 1 - sum(level.m if level.neutral else level.u for level in self.levels)
        levels.append(
            {
                "sql_condition": "ELSE",
                "label_for_charts": "different",
                "m_probability": max(1e-4, m_left),
                "u_probability": max(1e-4, u_left),
            }
        )
        return {
            "output_column_name": self.name,
            "comparison_description": self.description,
            "comparison_levels": levels,
        }


def in_spark(sql: str) -> str:
    """A level's DuckDB condition in Spark SQL. Spark has no Jaro-Winkler of its own (Splink's jar adds
    `jaro_winkler`: another implementation, so a pair right at a threshold could land on another level;
    tests/test_resolution_spark.py checks that generated pairs do not) and no Hamming distance (written out:
    the positions where the characters differ, for strings of one length)."""

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.JarowinklerSimilarity):
            return exp.Anonymous(this="jaro_winkler", expressions=[node.this, node.expression])
        if isinstance(node, exp.Anonymous) and node.name.lower() == "hamming":
            left, right = (part.sql(dialect="spark") for part in node.expressions)
            differs = f"substring({left}, i, 1) <> substring({right}, i, 1)"
            return sqlglot.parse_one(
                f"size(filter(sequence(1, length({left})), i -> {differs}))", read="spark"
            )
        return node

    return sqlglot.parse_one(sql, read="duckdb").transform(rewrite).sql(dialect="spark")


def _jw(left: str, threshold: float, right: str | None = None) -> str:
    return f"jaro_winkler_similarity({left}_l, {right or left}_r) >= {threshold}"


def _typos(column: str, distance: int) -> str:
    """At most `distance` characters differ, for values of one length (dates, phones): cheap Hamming."""
    return (
        f"(CASE WHEN length({column}_l) = length({column}_r)"
        f" THEN hamming({column}_l, {column}_r) ELSE {distance + 1} END) <= {distance}"
    )


def _edits(column: str, distance: int, guard: float = 0.8) -> str:
    """Levenshtein <= `distance`, computed only where Jaro-Winkler (far cheaper in DuckDB) is close."""
    return f"{_jw(column, guard)} AND levenshtein({column}_l, {column}_r) <= {distance}"


def _alike(left: str, right: str) -> str:
    """Two name parts that are one misspelling apart: Jaro-Winkler >= 0.88 or one edit (eric/ehic)."""
    return f"(jaro_winkler_similarity({left}, {right}) >= 0.88 OR levenshtein({left}, {right}) <= 1)"


def _same_given(left: str, right: str) -> str:
    return (
        f"(given_formal_l = given_formal_r OR {_alike(left, right)})"
        if (left, right) == ("given_l", "given_r")
        else f"coalesce({left} = {right} OR {_alike(left, right)}, FALSE)"
    )


# Both records have a given name, and in no reading of them (as typed, or one record's parts swapped, as
# surname-first order does) is the given name the same, misspelt, a nickname, or (for an initial) its
# first letter.
GIVEN_NAMES_DIFFER = (
    "((length(given_l) > 1 AND length(given_r) > 1"
    f" AND NOT {_same_given('given_l', 'given_r')}"
    f" AND NOT coalesce(given_l = family_r AND {_same_given('family_l', 'given_r')}, FALSE)"
    f" AND NOT coalesce(family_l = given_r AND {_same_given('given_l', 'family_r')}, FALSE))"
    " OR ((length(given_l) = 1 OR length(given_r) = 1) AND left(given_l, 1) <> left(given_r, 1)"
    " AND NOT coalesce(given_l = family_r AND left(family_l, 1) = left(given_r, 1), FALSE)"
    " AND NOT coalesce(family_l = given_r AND left(given_l, 1) = left(family_r, 1), FALSE)))"
)

NAME = Comparison(
    "name",
    "Given and family name in their Latin form (threadline.resolution.names), either way round",
    "name_key_l IS NULL OR name_key_r IS NULL",
    (
        Level("exact (any order)", "name_key_l = name_key_r", 0.55, 0.0008, "name_key"),
        Level(
            "nickname of the same name",
            "given_formal_l = given_formal_r AND family_l = family_r",
            0.05,
            0.00005,
        ),
        Level(
            "both parts alike (Jaro-Winkler >= 0.88 or one edit)",
            f"({_alike('given_l', 'given_r')} AND {_alike('family_l', 'family_r')})"
            f" OR ({_alike('given_l', 'family_r')} AND {_alike('family_l', 'given_r')})",
            0.15,
            0.0005,
        ),
        Level(
            "same family name, given name missing or an initial",
            "family_l = family_r AND (given_l IS NULL OR given_r IS NULL"
            " OR ((length(given_l) = 1 OR length(given_r) = 1) AND left(given_l, 1) = left(given_r, 1)))",
            0.06,
            0.002,
        ),
        Level("same family name, other given name", "family_l = family_r", 0.03, 0.01),
        Level(
            "same given name, other or no family name",
            "given_formal_l = given_formal_r",
            0.05,
            0.02,
            "given_formal",
        ),
        Level(
            "one part in common, in another place",
            "given_l = family_r OR family_l = given_r",
            0.03,
            0.002,
        ),
        Level("whole name Jaro-Winkler >= 0.85", _jw("name_key", 0.85), 0.03, 0.01),
    ),
)

BIRTH_DATE = Comparison(
    "birth_date",
    "Date of birth as typed (ISO), with typos (characters that differ) and day/month swaps",
    "birth_date_l IS NULL OR birth_date_r IS NULL",
    (
        Level("exact", "birth_date_l = birth_date_r", 0.8, 0.00005, "birth_date"),
        Level(
            "one typo or day and month swapped",
            f"birth_date_l = dob_swapped_r OR {_typos('birth_date', 1)}",
            0.1,
            0.002,
        ),
        Level("within a year", "abs(date_diff('day', dob_l, dob_r)) <= 366", 0.03, 0.02),
        Level("two typos", _typos("birth_date", 2), 0.03, 0.02),
    ),
)

# A typo keeps the first letter and the numbers: jsmith@ and ksmith@, jones27@ and jones91@ are two
# people. Local parts that are merely alike
# are no level of their own: most are made of the name, so "alike" would count the name a second time.
_SAME_INITIAL = "left(email_l, 1) = left(email_r, 1)"

EMAIL = Comparison(
    "email",
    "Email address, and its local part (before @, without dots and +tags)",
    "email_l IS NULL OR email_r IS NULL",
    (
        Level("exact", "email_l = email_r", 0.6, 0.00001),
        Level(
            "one or two typos, same numbers",
            f"{_SAME_INITIAL} AND email_digits_l = email_digits_r AND {_edits('email', 2, guard=0.9)}",
            0.05,
            0.00001,
        ),
        Level("same local part", "email_local_l = email_local_r", 0.1, 0.0001, "email_local"),
    ),
)

PHONE = Comparison(
    "phone",
    "Phone number in E.164; one shared by people with different given names is a household's",
    "phone_l IS NULL OR phone_r IS NULL",
    (
        Level(
            "shared by people with different given names",
            f"phone_l = phone_r AND {GIVEN_NAMES_DIFFER}",
            0.01,
            0.01,
            neutral=True,
        ),
        Level("exact", "phone_l = phone_r", 0.65, 0.00001),
        Level("same last 8 digits", "phone_tail_l = phone_tail_r", 0.05, 0.00001),
        Level("one or two digits differ", _typos("phone", 2), 0.05, 0.0001),
    ),
)

_SAME_STREET = "street_l = street_r AND postcode_l = postcode_r"
_CLOSE_STREET = f"{_jw('street', 0.92)} AND (({_edits('postcode', 1, 0.0)}) OR city_l = city_r)"

ADDRESS = Comparison(
    "address",
    "Street, postcode and city, normalised; one shared by people with different given names is a household's",
    "(street_l IS NULL AND postcode_l IS NULL AND city_l IS NULL)"
    " OR (street_r IS NULL AND postcode_r IS NULL AND city_r IS NULL)",
    (
        Level(
            "shared by people with different given names",
            f"(({_SAME_STREET}) OR ({_CLOSE_STREET})) AND {GIVEN_NAMES_DIFFER}",
            0.01,
            0.01,
            neutral=True,
        ),
        Level("same street and postcode", _SAME_STREET, 0.45, 0.00005),
        Level("street Jaro-Winkler >= 0.92 in the same area", _CLOSE_STREET, 0.08, 0.0001),
        Level("same postcode", "postcode_l = postcode_r", 0.1, 0.001, "postcode"),
        Level(
            "postcode one typo, same city", f"city_l = city_r AND {_edits('postcode', 1, 0.0)}", 0.04, 0.002
        ),
        Level("same city", "city_l = city_r", 0.1, 0.02, "city"),
    ),
)

COMPARISONS = (NAME, BIRTH_DATE, EMAIL, PHONE, ADDRESS)
