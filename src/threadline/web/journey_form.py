"""The journey editor's form, both ways: a definition as the fields the page shows, and the posted fields
as the definition threadline.journeys checks. Only the shape is read here; every rule (and the error
naming the field, `steps[2].hours`) is definitions.py's, so the page and the API say the same thing.

Fields: `name`, `purpose`, `reentry`, `reentry_days`, `exit_goal`; `trigger_type` and `trigger_<field>`;
`step_count` and `steps-<i>-<field>` per step. Values that are objects (a branch's condition, a split's
paths, an event's `where`) are JSON in a text area; a trait value is JSON when it reads as JSON, else
the text as written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from threadline.errors import Invalid

# Each trigger's and step's fields in the order shown, with how a posted text becomes a value. Kept in
# step with threadline.journeys.definitions (which checks them) and templates/journey_editor_form.html.
NUMBER, INTEGER, TEXT, AREA, JSON, VALUE, CHANNEL, SEGMENT, CHANGE = (
    "number",
    "integer",
    "text",
    "area",
    "json",
    "value",
    "channel",
    "segment",
    "change",
)
TRIGGER_FIELDS: dict[str, list[tuple[str, str]]] = {
    "event": [("event", TEXT), ("where", JSON)],
    "segment": [("segment_id", SEGMENT), ("on", CHANGE)],
    "schedule": [("at_hour", INTEGER)],
    "trait": [("trait", TEXT), ("from", VALUE), ("to", VALUE)],
    "date": [("trait", TEXT), ("at_hour", INTEGER), ("offset_days", INTEGER)],
}
STEP_FIELDS: dict[str, list[tuple[str, str]]] = {
    "wait": [("minutes", NUMBER), ("hours", NUMBER), ("days", NUMBER)],
    "wait_for_event": [
        ("event", TEXT),
        ("timeout_hours", NUMBER),
        ("timeout_days", NUMBER),
        ("on_timeout", TEXT),
    ],
    "branch": [("condition", JSON), ("else", TEXT)],
    "split": [("paths", JSON)],
    "send_email": [("subject", TEXT), ("body_text", AREA), ("body_html", AREA)],
    "send_message": [("channel", CHANNEL), ("subject", TEXT), ("body_text", AREA)],
    "record_event": [("event", TEXT), ("properties", JSON)],
    "set_trait": [("trait", TEXT), ("value", VALUE)],
    "add_tag": [("tag", TEXT)],
    "remove_tag": [("tag", TEXT)],
    "create_task": [("title", TEXT), ("due_days", NUMBER)],
    "add_loyalty_points": [("points", INTEGER), ("reason", TEXT)],
    "webhook": [("destination", INTEGER), ("properties", JSON)],
}
MAX_FORM_STEPS = 50  # definitions.MAX_STEPS: more is refused there, naming `steps`


def _json(text: str, named: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise Invalid(f"{named}: not valid JSON", details={"field": named}) from None


def _value(text: str, kind: str, named: str) -> Any:
    """A posted text as the definition's value; a number that is not one stays text, and
    definitions.py says what is wrong with it under the field's name."""
    if kind == JSON:
        return _json(text, named)
    if kind == VALUE:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if kind in (NUMBER, INTEGER, SEGMENT):
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if number.is_integer() and (kind != NUMBER or "." not in text) else number
    return text


@dataclass(slots=True)
class StepForm:
    type: str
    key: str
    texts: dict[str, str] = field(default_factory=dict)  # field name: the text its input shows


@dataclass(slots=True)
class JourneyForm:
    """The editor's fields as texts: what the page shows, whether they came from a definition or a post
    (a post keeps broken JSON as written, to show it beside its error)."""

    texts: dict[str, str]  # name, purpose, reentry, reentry_days, exit_goal
    trigger_type: str
    trigger: dict[str, str]
    steps: list[StepForm]


TOP = ("name", "purpose", "reentry", "reentry_days", "exit_goal")


def _step_fields(kind: str) -> list[tuple[str, str]]:
    return [*STEP_FIELDS.get(kind, []), ("next", TEXT)]


def form_of_definition(definition: dict[str, Any]) -> JourneyForm:
    trigger = dict(definition.get("trigger") or {})
    kind = str(trigger.get("type", "event"))
    goal = definition.get("exit_goal") or {}
    texts = {
        "name": str(definition.get("name") or ""),
        "purpose": str(definition.get("purpose") or "marketing"),
        "reentry": str(definition.get("reentry") or "once"),
        "reentry_days": text_of(definition.get("reentry_days"), INTEGER),
        "exit_goal": str(goal.get("event") or ""),
    }
    steps = [
        StepForm(
            str(step.get("type")),
            str(step.get("key") or ""),
            {name: text_of(step.get(name), k) for name, k in _step_fields(str(step.get("type")))},
        )
        for step in definition.get("steps") or []
        if isinstance(step, dict)
    ]
    trigger_texts = {name: text_of(trigger.get(name), k) for name, k in TRIGGER_FIELDS.get(kind, [])}
    return JourneyForm(texts, kind, trigger_texts, steps)


def form_of_post(form: FormData) -> JourneyForm:
    def get(name: str) -> str:
        return str(form.get(name, ""))

    kind = get("trigger_type") or "event"
    steps = []
    for index in range(_count(get("step_count"))):
        prefix, step_type = f"steps-{index}-", get(f"steps-{index}-type")
        texts = {name: get(prefix + name) for name, _ in _step_fields(step_type)}
        steps.append(StepForm(step_type, get(prefix + "key"), texts))
    trigger = {name: get(f"trigger_{name}") for name, _ in TRIGGER_FIELDS.get(kind, [])}
    return JourneyForm({name: get(name) for name in TOP}, kind, trigger, steps)


def _parsed(texts: dict[str, str], fields: list[tuple[str, str]], named: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, kind in fields:
        text = texts.get(name, "")
        if text.strip():
            found[name] = _value(text if kind == AREA else text.strip(), kind, f"{named}.{name}")
    return found


def definition_of_form(form: JourneyForm) -> dict[str, Any]:
    """The fields as a definition (unchecked: definitions.py checks it); Invalid naming the field for
    JSON that is not."""
    trigger = {"type": form.trigger_type}
    trigger |= _parsed(form.trigger, TRIGGER_FIELDS.get(form.trigger_type, []), "trigger")
    steps = []
    for index, step in enumerate(form.steps):
        parsed = _parsed(step.texts, _step_fields(step.type), f"steps[{index}]")
        steps.append({"key": step.key.strip(), "type": step.type, **parsed})
    goal, days = form.texts["exit_goal"].strip(), form.texts["reentry_days"].strip()
    return {
        "name": form.texts["name"],
        "trigger": trigger,
        "steps": steps,
        "exit_goal": {"event": goal} if goal else None,
        "reentry": form.texts["reentry"] or "once",
        "reentry_days": _value(days, INTEGER, "reentry_days") if days else None,
        "purpose": form.texts["purpose"] or "marketing",
    }


def _count(text: str) -> int:
    return min(int(text), MAX_FORM_STEPS) if text.isdigit() else 0


def text_of(value: Any, kind: str) -> str:
    """A definition's value as its form field shows it."""
    if value is None:
        return ""
    if kind == JSON or (kind == VALUE and not isinstance(value, str)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def edit_steps(form: JourneyForm, op: str, kind: str) -> None:
    """The editor's add / remove / move up / move down (`add`, `remove-2`, `up-1`, `down-0`)."""
    steps = form.steps
    if op == "add" and kind in STEP_FIELDS and len(steps) < MAX_FORM_STEPS:
        keys = {step.key for step in steps}
        number, stem = len(steps) + 1, kind.replace("_", "-")
        while f"{stem}-{number}" in keys:  # the key is what jumps and the figures name: unique
            number += 1
        steps.append(StepForm(kind, f"{stem}-{number}", {name: "" for name, _ in _step_fields(kind)}))
        return
    action, _, number_text = op.partition("-")
    if not number_text.isdigit() or int(number_text) >= len(steps):
        return
    index = int(number_text)
    if action == "remove":
        del steps[index]
    elif action == "up" and index > 0:
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
    elif action == "down" and index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
