"""The loyalty program: how events earn points, when points expire, the tiers and how a tier is kept.

Kept per workspace in `workspace_settings` ("loyalty.program") with who changed it and when, like the
golden record's rules (threadline.profiles.golden). `check_program` validates a program and names the
field at fault; a workspace that never saved one runs `DEFAULT_PROGRAM`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from threadline.config import CHANNELS
from threadline.errors import Invalid
from threadline.storage import Database, put_setting
from threadline.storage.models import WorkspaceSetting

PROGRAM_KEY = "loyalty.program"
# What the program writes on the timeline; an earn rule on one of them would earn points for earning.
POINTS_EARNED = "Points Earned"
TIER_CHANGED = "Loyalty Tier Changed"
OWN_EVENTS = (POINTS_EARNED, TIER_CHANGED)
# lifetime_points: every point ever credited (never goes down, so never downgrades);
# points_12m / spend_12m: points credited / spend in a rolling 12-month window.
TIER_BASES = ("lifetime_points", "points_12m", "spend_12m")
MAX_RULES = 50
MAX_TIERS = 20
MAX_MONTHS = 120
MAX_NAME = 40  # loyalty_status.tier
MAX_EVENT = 200  # events.name
MAX_BENEFITS = 500


@dataclass(frozen=True, slots=True)
class EarnRule:
    """An event that earns: `points_per_unit` x the first numeric property of `properties` (a purchase's
    revenue), or a fixed number of `points` (a review, a referral)."""

    event: str
    points: int = 0
    points_per_unit: float = 0.0
    properties: tuple[str, ...] = ()

    @property
    def per_amount(self) -> bool:
        return bool(self.properties)

    def amount(self, properties: Mapping[str, Any]) -> float | None:
        """The purchase amount this rule reads from an event's properties (None: not a number)."""
        for name in self.properties:
            value = properties.get(name)
            if isinstance(value, bool):
                continue
            if isinstance(value, int | float) and math.isfinite(value):
                return float(value)
            if isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    continue
                if math.isfinite(number):
                    return number
        return None

    def as_json(self) -> dict[str, Any]:
        if self.per_amount:
            return {
                "event": self.event,
                "points_per_unit": self.points_per_unit,
                "properties": list(self.properties),
            }
        return {"event": self.event, "points": self.points}


@dataclass(frozen=True, slots=True)
class ChannelBonus:
    """On this channel every earning event's points are multiplied, then `bonus` points are added."""

    multiplier: float = 1.0
    bonus: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"multiplier": self.multiplier, "bonus": self.bonus}


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    threshold: float  # in the program's tier basis: points, or spend in currency units
    benefits: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold, "benefits": self.benefits}


@dataclass(frozen=True, slots=True)
class Program:
    earn_rules: tuple[EarnRule, ...] = ()
    channels: Mapping[str, ChannelBonus] = field(default_factory=dict)
    expiry_months: int = 12  # 0: points never expire
    tier_basis: str = "spend_12m"
    keep_tier_months: int = 12  # a tier reached is held at least this long (0: it follows the figure)
    tiers: tuple[Tier, ...] = ()  # by threshold, lowest first

    def rule_for(self, event_name: str | None) -> EarnRule | None:
        return next((rule for rule in self.earn_rules if rule.event == event_name), None)

    @property
    def purchase_rules(self) -> tuple[EarnRule, ...]:
        """The rules that read an amount: their events are the spend of `spend_12m`."""
        return tuple(rule for rule in self.earn_rules if rule.per_amount)

    def points_for(self, rule: EarnRule, properties: Mapping[str, Any], channel: str) -> int:
        """Points an event earns: rounded down, so a 9.99 purchase at 1 point per unit earns 9. A refund
        (a negative amount) or a missing amount earns nothing, bonus included."""
        if rule.per_amount:
            amount = rule.amount(properties)
            if amount is None or amount <= 0:
                return 0
            base = amount * rule.points_per_unit
        else:
            base = float(rule.points)
        bonus = self.channels.get(channel, ChannelBonus())
        return max(0, math.floor(base * bonus.multiplier + 1e-9) + bonus.bonus)

    def tier_for(self, figure: float) -> str | None:
        """The highest tier whose threshold `figure` reaches (None below the lowest)."""
        reached = [tier.name for tier in self.tiers if figure >= tier.threshold]
        return reached[-1] if reached else None

    def rank(self, tier: str | None) -> int:
        """A tier's place, lowest 0; -1 for none or a tier the program no longer has."""
        return next((i for i, t in enumerate(self.tiers) if t.name == tier), -1)

    def next_tier(self, tier: str | None) -> Tier | None:
        rank = self.rank(tier)
        return self.tiers[rank + 1] if rank + 1 < len(self.tiers) else None

    def as_json(self) -> dict[str, Any]:
        return {
            "earn_rules": [rule.as_json() for rule in self.earn_rules],
            "channels": {name: bonus.as_json() for name, bonus in sorted(self.channels.items())},
            "expiry_months": self.expiry_months,
            "tier_basis": self.tier_basis,
            "keep_tier_months": self.keep_tier_months,
            "tiers": [tier.as_json() for tier in self.tiers],
        }


DEFAULT_PROGRAM = Program(
    earn_rules=(
        EarnRule("Order Completed", points_per_unit=1.0, properties=("revenue", "total")),
        EarnRule("Review Submitted", points=50),
        EarnRule("Referral Completed", points=200),
    ),
    channels={"store": ChannelBonus(multiplier=2.0)},
    expiry_months=12,
    tier_basis="spend_12m",
    keep_tier_months=12,
    tiers=(
        Tier("Member", 0, "Points on every purchase"),
        Tier("Silver", 500, "Free delivery"),
        Tier("Gold", 2000, "Free delivery, early access to sales, a birthday gift"),
    ),
)


# -- validation ------------------------------------------------------------------------------------


def _error(field_name: str, message: str) -> Invalid:
    return Invalid(f"{field_name}: {message}", details={"field": field_name})


def _number(value: Any, where: str, *, low: float, high: float, whole: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _error(where, "must be a number")
    if whole and value != int(value):
        raise _error(where, "must be a whole number")
    if not low <= value <= high:
        raise _error(where, f"must be between {low:g} and {high:g}")
    return float(value)


def _text(value: Any, where: str, *, limit: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _error(where, "must be a non-empty text" if required else "must be a text")
    text = value.strip()
    if len(text) > limit:
        raise _error(where, f"has at most {limit} characters")
    return text


def _known(value: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise _error(f"{prefix}{unknown[0]}", f"unknown field; expected {', '.join(sorted(allowed))}")


def _earn_rule(raw: Any, where: str) -> EarnRule:
    if not isinstance(raw, Mapping):
        raise _error(where, "must be an object with event and points or points_per_unit")
    _known(raw, where, {"event", "points", "points_per_unit", "properties"})
    event = _text(raw.get("event"), f"{where}.event", limit=MAX_EVENT)
    if event in OWN_EVENTS:
        raise _error(f"{where}.event", f"{event} is written by the program itself and cannot earn points")
    fixed, per_unit = raw.get("points"), raw.get("points_per_unit")
    if (fixed is None) == (per_unit is None):
        raise _error(where, "give either points (fixed) or points_per_unit (per currency unit)")
    if fixed is not None:
        points = int(_number(fixed, f"{where}.points", low=1, high=1_000_000, whole=True))
        return EarnRule(event, points=points)
    rate = _number(per_unit, f"{where}.points_per_unit", low=0.0001, high=10_000)
    raw_names = raw.get("properties", ["revenue", "total"])
    if isinstance(raw_names, str):
        raw_names = [raw_names]
    if not isinstance(raw_names, list | tuple) or not raw_names:
        raise _error(f"{where}.properties", "must list the properties that carry the amount")
    names = tuple(_text(n, f"{where}.properties[{i}]", limit=100) for i, n in enumerate(raw_names))
    return EarnRule(event, points_per_unit=rate, properties=names)


def _channels(raw: Any) -> dict[str, ChannelBonus]:
    if not isinstance(raw, Mapping):
        raise _error("channels", "must be an object of channel -> {multiplier, bonus}")
    found: dict[str, ChannelBonus] = {}
    for channel, bonus in raw.items():
        where = f"channels.{channel}"
        if channel not in CHANNELS:
            raise _error(where, f"not a channel; one of {', '.join(CHANNELS)}")
        if not isinstance(bonus, Mapping):
            raise _error(where, "must be an object with multiplier and bonus")
        _known(bonus, where, {"multiplier", "bonus"})
        multiplier = _number(bonus.get("multiplier", 1), f"{where}.multiplier", low=0, high=100)
        extra = int(_number(bonus.get("bonus", 0), f"{where}.bonus", low=0, high=1_000_000, whole=True))
        if multiplier != 1 or extra:
            found[str(channel)] = ChannelBonus(multiplier, extra)
    return found


def _tiers(raw: Any, basis: str) -> tuple[Tier, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise _error("tiers", "must list at least one tier")
    if len(raw) > MAX_TIERS:
        raise _error("tiers", f"at most {MAX_TIERS} tiers")
    tiers: list[Tier] = []
    for index, entry in enumerate(raw):
        where = f"tiers[{index}]"
        if not isinstance(entry, Mapping):
            raise _error(where, "must be an object with name, threshold and benefits")
        _known(entry, where, {"name", "threshold", "benefits"})
        name = _text(entry.get("name"), f"{where}.name", limit=MAX_NAME)
        if any(t.name.casefold() == name.casefold() for t in tiers):
            raise _error(f"{where}.name", f"{name} is named twice")
        threshold = _number(entry.get("threshold"), f"{where}.threshold", low=0, high=1e12)
        if basis != "spend_12m" and threshold != int(threshold):
            raise _error(f"{where}.threshold", "must be a whole number of points")
        if tiers and threshold <= tiers[-1].threshold:
            raise _error(f"{where}.threshold", "must be above the tier before it (list tiers lowest first)")
        benefits = _text(entry.get("benefits"), f"{where}.benefits", limit=MAX_BENEFITS, required=False)
        tiers.append(Tier(name, threshold, benefits))
    return tuple(tiers)


def check_program(value: Any) -> Program:
    """A program from its JSON form, or an Invalid naming the field at fault."""
    if not isinstance(value, Mapping):
        raise _error("program", "must be an object")
    _known(value, "", {"earn_rules", "channels", "expiry_months", "tier_basis", "keep_tier_months", "tiers"})
    raw_rules = value.get("earn_rules", [])
    if not isinstance(raw_rules, list | tuple):
        raise _error("earn_rules", "must be a list of rules")
    if len(raw_rules) > MAX_RULES:
        raise _error("earn_rules", f"at most {MAX_RULES} rules")
    rules: list[EarnRule] = []
    for index, raw in enumerate(raw_rules):
        rule = _earn_rule(raw, f"earn_rules[{index}]")
        if any(r.event == rule.event for r in rules):
            raise _error(f"earn_rules[{index}].event", f"{rule.event} has a rule already")
        rules.append(rule)
    basis = value.get("tier_basis", DEFAULT_PROGRAM.tier_basis)
    if basis not in TIER_BASES:
        raise _error("tier_basis", f"must be one of {', '.join(TIER_BASES)}")
    months = {
        key: int(_number(value.get(key, default), key, low=0, high=MAX_MONTHS, whole=True))
        for key, default in (("expiry_months", 12), ("keep_tier_months", 12))
    }
    return Program(
        earn_rules=tuple(rules),
        channels=_channels(value.get("channels", {})),
        expiry_months=months["expiry_months"],
        tier_basis=basis,
        keep_tier_months=months["keep_tier_months"],
        tiers=_tiers(value.get("tiers"), basis),
    )


# -- the workspace's program -----------------------------------------------------------------------


def _stored(value: Any) -> Program:
    """A program as stored (checked when saved); anything unreadable counts as the default."""
    try:
        return check_program(value)
    except Invalid:
        return DEFAULT_PROGRAM


def program_in(connection: Connection) -> Program:
    """The workspace's program, read in the caller's transaction."""
    stored = connection.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == PROGRAM_KEY))
    return DEFAULT_PROGRAM if stored is None else _stored(stored)


@dataclass(frozen=True, slots=True)
class ProgramSetting:
    program: Program
    updated_at: datetime | None
    updated_by: int | None


def get_program(db: Database) -> ProgramSetting:
    with db.read() as session:
        row = session.get(WorkspaceSetting, PROGRAM_KEY)
    if row is None:
        return ProgramSetting(DEFAULT_PROGRAM, None, None)
    return ProgramSetting(_stored(row.value), row.updated_at, row.updated_by)


def set_program(db: Database, value: Any, *, user_id: int | None, now: datetime) -> Program:
    """Check and save the program. Earning uses it from the next run of `loyalty.earn` on; points
    already earned keep their amount and expiry."""
    program = check_program(value)
    with db.write() as session:
        put_setting(session.connection(), PROGRAM_KEY, program.as_json(), user_id=user_id, now=now)
    return program
