"""CSAT, CES and NPS from "Survey Answered" events, until service surveys (issue 5) record them.

An answer is a track event named "Survey Answered" with properties {"survey": "csat" | "nps" | "ces",
"score": n}. Scales and definitions (docs/analytics.md, Dashboards):
- CSAT: 1-5; the share of answers of 4 or 5, in percent.
- NPS: 0-10; percent promoters (9-10) minus percent detractors (0-6), from -100 to 100.
- CES: 1-7, 7 the easiest (CES 2.0 "the company made it easy"); the average score.
A score off its scale, or not a JSON number, is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal_column, or_
from sqlalchemy.sql.elements import ColumnElement

from threadline.analytics.expressions import json_number, json_text
from threadline.storage.models import Event

SURVEY_EVENT = "Survey Answered"


@dataclass(frozen=True, slots=True)
class Scale:
    low: int
    high: int


SCALES = {"csat": Scale(1, 5), "nps": Scale(0, 10), "ces": Scale(1, 7)}


def survey_kind(dialect: str) -> ColumnElement[str]:
    return func.lower(json_text(dialect, Event.properties, "survey"))


def survey_score(dialect: str) -> ColumnElement[float]:
    return json_number(dialect, Event.properties, "score")


def on_scale(dialect: str) -> ColumnElement[bool]:
    """The answer has a known survey and a score within its scale."""
    kind, score = survey_kind(dialect), survey_score(dialect)
    return or_(
        *(
            and_(kind == literal_column(f"'{name}'"), score >= scale.low, score <= scale.high)
            for name, scale in SCALES.items()
        )
    )


def experience_of_answer(dialect: str) -> ColumnElement[float]:
    """An answer on a common 0-100 scale (the consistency report compares them): the score's place
    between its scale's worst and best."""
    kind, score = survey_kind(dialect), survey_score(dialect)
    return case(
        *(
            (kind == literal_column(f"'{name}'"), (score - scale.low) * 100.0 / (scale.high - scale.low))
            for name, scale in SCALES.items()
        ),
        else_=cast(None, Float),
    )


def answer_counts(dialect: str) -> list[ColumnElement[Any]]:
    """The sums a CSAT, NPS or CES figure is computed from, in the order `survey_value` reads them."""
    kind, score = survey_kind(dialect), survey_score(dialect)
    return [
        func.count().label("responses"),
        func.sum(score).label("score_sum"),
        func.sum(case((and_(kind == literal_column("'csat'"), score >= 4), 1), else_=0)).label("satisfied"),
        func.sum(case((and_(kind == literal_column("'nps'"), score >= 9), 1), else_=0)).label("promoters"),
        func.sum(case((and_(kind == literal_column("'nps'"), score <= 6), 1), else_=0)).label("detractors"),
    ]


def survey_value(
    kind: str, responses: int, score_sum: float, satisfied: int, promoters: int, detractors: int
) -> float:
    if kind == "csat":
        return 100.0 * satisfied / responses
    if kind == "nps":
        return 100.0 * (promoters - detractors) / responses
    return score_sum / responses
