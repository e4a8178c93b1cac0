"""Routing: which team and agent a new conversation goes to, by the workspace's ordered rules.

A rule matches on the conversation's channel, the customer's language, tier (the trait the SLA
policies use) and segments, and keywords in the subject or the first message; every condition given
must hold, and a condition lists alternatives (any of them will do). The first matching rule, in
order, gives the conversation its team and an agent of that team: round-robin (the next member after
the last one it gave a conversation to) or least-loaded (the fewest open and pending conversations).
VIP customers to a dedicated team is a rule on the tier, placed first.

Kept in `workspace_settings`: the rules ("service.routing"), the agents who marked themselves away
("service.availability", a list of user ids: nobody is away by default, so a desk works before anyone
touches the toggle) and each team's last round-robin agent ("service.routing.round_robin"), which
`route` updates in the transaction that opens the conversation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from threadline.errors import Invalid
from threadline.service.conversations import OPEN, PENDING, SERVICE_CHANNELS
from threadline.service.sla import TIER_TRAIT
from threadline.storage import Database, put_setting, read_setting
from threadline.storage.models import (
    Conversation,
    Profile,
    Segment,
    SegmentMembership,
    Team,
    User,
)

ROUTING_KEY = "service.routing"
AVAILABILITY_KEY = "service.availability"
ROUND_ROBIN_KEY = "service.routing.round_robin"
ROUND_ROBIN, LEAST_LOADED = "round_robin", "least_loaded"
STRATEGIES = (ROUND_ROBIN, LEAST_LOADED)
# Traits that say which language a customer writes in, tried in this order.
LANGUAGE_TRAITS = ("language", "locale")
MAX_RULES = 200
MAX_VALUES = 50
MAX_TEXT = 100
# Analysts read, they do not answer: they never get conversations.
HANDLING_ROLES = ("admin", "manager", "agent")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")


@dataclass(frozen=True, slots=True)
class RoutingRule:
    team_id: int
    strategy: str = ROUND_ROBIN
    name: str = ""
    channels: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    segment_ids: tuple[int, ...] = ()
    keywords: tuple[str, ...] = ()
    active: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channels": list(self.channels),
            "languages": list(self.languages),
            "tiers": list(self.tiers),
            "segment_ids": list(self.segment_ids),
            "keywords": list(self.keywords),
            "team_id": self.team_id,
            "strategy": self.strategy,
            "active": self.active,
        }

    def matches(
        self, *, channel: str, language: str | None, tier: str | None, segments: set[int], text: str
    ) -> bool:
        if not self.active:
            return False
        if self.channels and channel not in self.channels:
            return False
        if self.languages and not (language and any(_same_language(language, x) for x in self.languages)):
            return False
        if self.tiers and (tier is None or tier.lower() not in self.tiers):
            return False
        if self.segment_ids and not segments.intersection(self.segment_ids):
            return False
        return not self.keywords or any(k in text for k in self.keywords)


@dataclass(frozen=True, slots=True)
class Routed:
    """What `route` decided: the rule's position and the team; agent None when nobody was available."""

    rule: int
    team_id: int
    assignee_id: int | None


def _same_language(value: str, wanted: str) -> bool:
    """A rule for "zh" takes "zh-CN" and "zh_TW"; a rule for "zh-cn" takes only that one."""
    value = value.lower().replace("_", "-")
    return value == wanted or value.startswith(wanted + "-")


def _strings(item: Mapping[str, Any], key: str, where: str, *, lower: bool = True) -> tuple[str, ...]:
    value = item.get(key) or []
    if isinstance(value, str):
        value = [value]
    field = f"{where}.{key}"
    if not isinstance(value, list) or len(value) > MAX_VALUES:
        raise Invalid(f"{field}: a list of at most {MAX_VALUES} words", details={"field": field})
    cleaned: list[str] = []
    for entry in value:
        if not isinstance(entry, str) or not entry.strip() or len(entry.strip()) > MAX_TEXT:
            raise Invalid(f"{field}: each 1 to {MAX_TEXT} characters", details={"field": field})
        text = " ".join(entry.split())
        cleaned.append(text.lower() if lower else text)
    return tuple(dict.fromkeys(cleaned))


def _rule(session: Session, item: Any, where: str) -> RoutingRule:
    if not isinstance(item, Mapping):
        raise Invalid(f"{where}: must be an object", details={"field": where})
    team_id = item.get("team_id")
    if isinstance(team_id, str) and team_id.strip().isdigit():
        team_id = int(team_id)
    if not isinstance(team_id, int) or isinstance(team_id, bool) or session.get(Team, team_id) is None:
        raise Invalid(f"{where}.team_id: not a team", details={"field": f"{where}.team_id"})
    strategy = item.get("strategy") or ROUND_ROBIN
    if strategy not in STRATEGIES:
        field = f"{where}.strategy"
        raise Invalid(f"{field}: one of {', '.join(STRATEGIES)}", details={"field": field})
    name = item.get("name") or ""
    if not isinstance(name, str) or len(name) > MAX_TEXT:
        raise Invalid(f"{where}.name: at most {MAX_TEXT} characters", details={"field": f"{where}.name"})
    channels = _strings(item, "channels", where)
    unknown = [c for c in channels if c not in SERVICE_CHANNELS]
    if unknown:
        field = f"{where}.channels"
        raise Invalid(f"{field}: unknown channel {unknown[0]}", details={"field": field})
    segment_ids = _segment_ids(session, item.get("segment_ids") or [], f"{where}.segment_ids")
    active = item.get("active", True)
    if not isinstance(active, bool):
        raise Invalid(f"{where}.active: true or false", details={"field": f"{where}.active"})
    return RoutingRule(
        team_id=team_id,
        strategy=strategy,
        name=name.strip(),
        channels=channels,
        languages=tuple(x.replace("_", "-") for x in _strings(item, "languages", where)),
        tiers=_strings(item, "tiers", where),
        segment_ids=segment_ids,
        keywords=_strings(item, "keywords", where),
        active=active,
    )


def _segment_ids(session: Session, value: Any, field: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_VALUES:
        raise Invalid(f"{field}: a list of segment ids", details={"field": field})
    ids: list[int] = []
    for entry in value:
        if isinstance(entry, str) and entry.strip().isdigit():
            entry = int(entry)
        if not isinstance(entry, int) or isinstance(entry, bool) or session.get(Segment, entry) is None:
            raise Invalid(f"{field}: no segment {entry}", details={"field": field})
        ids.append(entry)
    return tuple(dict.fromkeys(ids))


def _stored_rules(session: Session) -> list[RoutingRule]:
    stored = read_setting(session.connection(), ROUTING_KEY)
    if not isinstance(stored, list):
        return []
    rules = []
    for item in stored:
        if not isinstance(item, dict) or not isinstance(item.get("team_id"), int):
            continue
        rules.append(
            RoutingRule(
                team_id=item["team_id"],
                strategy=str(item.get("strategy") or ROUND_ROBIN),
                name=str(item.get("name") or ""),
                channels=tuple(item.get("channels") or ()),
                languages=tuple(item.get("languages") or ()),
                tiers=tuple(item.get("tiers") or ()),
                segment_ids=tuple(item.get("segment_ids") or ()),
                keywords=tuple(item.get("keywords") or ()),
                active=bool(item.get("active", True)),
            )
        )
    return rules


def routing_rules(db: Database) -> list[RoutingRule]:
    """The rules, in the order they are tried."""
    with db.read() as session:
        return _stored_rules(session)


def set_routing_rules(db: Database, value: Any, *, user_id: int | None, now: datetime) -> list[RoutingRule]:
    """Replace the rules; Invalid names the field (`rules[2].team_id`), nothing is saved then."""
    if not isinstance(value, list) or len(value) > MAX_RULES:
        raise Invalid(f"rules: a list of at most {MAX_RULES} rules", details={"field": "rules"})
    with db.write() as session:
        rules = [_rule(session, item, f"rules[{n}]") for n, item in enumerate(value)]
        put_setting(session.connection(), ROUTING_KEY, [r.as_dict() for r in rules], user_id=user_id, now=now)
        # Made now, so the first routed conversations lock an existing row rather than racing to
        # insert it.
        if read_setting(session.connection(), ROUND_ROBIN_KEY) is None:
            put_setting(session.connection(), ROUND_ROBIN_KEY, {}, user_id=user_id, now=now)
    return rules


def _away(session: Session, *, for_update: bool = False) -> set[int]:
    value = read_setting(session.connection(), AVAILABILITY_KEY, for_update=for_update)
    return {int(i) for i in value if isinstance(i, int)} if isinstance(value, list) else set()


def away_agents(db: Database) -> set[int]:
    """The ids of the agents who marked themselves away: routing passes them over."""
    with db.read() as session:
        return _away(session)


def set_away(db: Database, user_id: int, away: bool, *, now: datetime) -> bool:
    """An agent marks themself away (True) or available; returns the new state."""
    with db.write() as session:
        current = _away(session, for_update=True)
        changed = current | {user_id} if away else current - {user_id}
        put_setting(session.connection(), AVAILABILITY_KEY, sorted(changed), user_id=user_id, now=now)
    return away


def _language(conversation: Conversation, traits: Mapping[str, Any], text: str) -> str | None:
    """The conversation's language, else the customer's, else a guess from the message: Han
    characters without kana are Chinese (customers rarely have a language trait, and a Chinese
    desk is the usual reason for a language rule)."""
    if conversation.language:
        return conversation.language
    for key in LANGUAGE_TRAITS:
        value = traits.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    if _HAN.search(text) and not _KANA.search(text):
        return "zh"
    return None


def _agents(session: Session, team_id: int) -> list[int]:
    """The team's available agents, by id: active, not analysts, not away."""
    away = _away(session)
    ids = session.scalars(
        select(User.id)
        .where(User.team_id == team_id, User.is_active.is_(True), User.role.in_(HANDLING_ROLES))
        .order_by(User.id)
    )
    return [i for i in ids if i not in away]


def _round_robin(session: Session, team_id: int, agents: Sequence[int], at: datetime) -> int:
    """The first agent after the team's last one (by id, so members joining or leaving keep the
    cycle), and that agent recorded as the last. The row is locked, so two conversations opening at
    once on PostgreSQL go to two agents."""
    conn = session.connection()
    stored = read_setting(conn, ROUND_ROBIN_KEY, for_update=True)
    state = dict(stored) if isinstance(stored, dict) else {}
    last = state.get(str(team_id))
    chosen = next((a for a in agents if isinstance(last, int) and a > last), agents[0])
    state[str(team_id)] = chosen
    put_setting(conn, ROUND_ROBIN_KEY, state, user_id=None, now=at)
    return chosen


def _least_loaded(session: Session, agents: Sequence[int]) -> int:
    """The agent with the fewest open and pending conversations; the lowest id among equals."""
    counts = dict(
        session.execute(
            select(Conversation.assignee_id, func.count())
            .where(Conversation.assignee_id.in_(agents), Conversation.status.in_((OPEN, PENDING)))
            .group_by(Conversation.assignee_id)
        ).all()
    )
    return min(agents, key=lambda a: (counts.get(a, 0), a))


def route(session: Session, conversation: Conversation, first_message_text: str) -> Routed | None:
    """Give an opening conversation its team and agent by the first matching rule, in the
    transaction that opens it; None (left unassigned) when no rule matches. A rule whose team has
    nobody available still gives the team: the conversation waits in the team's queue."""
    rules = _stored_rules(session)
    if not rules:
        return None
    profile = session.get(Profile, conversation.profile_id)
    traits: Mapping[str, Any] = (profile.traits or {}) if profile is not None else {}
    tier = traits.get(TIER_TRAIT)
    text = f"{conversation.subject or ''}\n{first_message_text}".lower()
    member_of = SegmentMembership.profile_id == conversation.profile_id
    segments = set(session.scalars(select(SegmentMembership.segment_id).where(member_of)))
    language = _language(conversation, traits, text)
    for position, rule in enumerate(rules):
        if not rule.matches(
            channel=conversation.channel,
            language=language,
            tier=None if tier is None else str(tier),
            segments=segments,
            text=text,
        ):
            continue
        if session.get(Team, rule.team_id) is None:  # removed since the rule was saved
            continue
        agents = _agents(session, rule.team_id)
        assignee = None
        if agents:
            assignee = (
                _round_robin(session, rule.team_id, agents, conversation.created_at)
                if rule.strategy == ROUND_ROBIN
                else _least_loaded(session, agents)
            )
        conversation.team_id, conversation.assignee_id = rule.team_id, assignee
        return Routed(position, rule.team_id, assignee)
    return None
