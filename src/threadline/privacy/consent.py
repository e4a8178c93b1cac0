"""The consent ledger: what each customer said about being contacted, for which purpose, on which channel.

Records are append-only and stay on the profile they were recorded for. The state of a live profile is
the latest record (by `recorded_at`, then `id`) per (purpose, channel) among it and the profiles merged
into it, so a merge shows both people's statements and an unmerge gives each back their own without
moving a row. A statement for the channel "all" (Segment's `categoryPreferences`, a "no marketing at
all" on a paper form) competes by time with the channel-specific ones: whichever was said last wins.

`check_send` is the one question every sender asks (messaging, journeys, service replies): may we
contact this customer on this channel for this purpose? See its docstring for the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from threadline.accounts import Viewer, customer_filter, customer_write_filter
from threadline.errors import Forbidden, Invalid, NotFound
from threadline.privacy.erasure import live_profile_id
from threadline.storage import Database
from threadline.storage.models import ConsentRecord, ProcessingRestriction, Profile, User

PURPOSES = ("marketing", "analytics", "personalisation", "service")
CHANNELS = ("email", "sms", "phone", "push", "whatsapp", "wechat", "social", "post")
ALL = "all"  # a statement covering every channel
STATUSES = ("granted", "denied", "withdrawn")
UNKNOWN = "unknown"  # nothing was said
# Purposes that need an explicit, current "granted" (opt-in). `service` is the exception: see check_send.
OPT_IN = frozenset({"marketing", "analytics", "personalisation"})
SERVICE = "service"
_REFUSALS = frozenset({"denied", "withdrawn"})
# Spellings senders use for the same purpose; Segment's consent manager writes category names freely.
_PURPOSE_ALIASES = {"personalization": "personalisation"}
MAX_STATEMENTS = 50  # per call or message: a form has a handful of boxes, not hundreds
MAX_EVIDENCE_BYTES = 4096
MAX_TEXT = 2000  # the consent text shown to the customer, kept as evidence
# A statement dated ahead of the clock would outrank everything said until then.
FUTURE_TOLERANCE = timedelta(minutes=5)
HISTORY_LIMIT = 500


class InvalidConsent(Invalid):
    """A statement that is not one Threadline understands, naming the field (`statements[0].channel`)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", details={"field": field})
        self.field = field
        self.reason = reason


class CustomerNotFound(NotFound):
    """No such customer, or not in the viewer's data scope (details say `out_of_scope`), as
    threadline.profiles' ProfileNotFound says it. Not that class itself: threadline.profiles imports
    this package (masking), so this package cannot import it back."""


class SendRefused(Forbidden):
    """Raised by `require_send`: the customer may not be contacted so; details hold the decision."""


@dataclass(frozen=True, slots=True)
class Statement:
    purpose: str
    channel: str
    status: str

    def as_dict(self) -> dict[str, str]:
        return {"purpose": self.purpose, "channel": self.channel, "status": self.status}


@dataclass(frozen=True, slots=True)
class ConsentContext:
    """`context.consent` of an incoming message, validated: the statements and what was shown."""

    statements: tuple[Statement, ...]
    form: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class SendDecision:
    """Whether a message may go out; `reason` is a stable code, `explanation` says it in words."""

    allowed: bool
    reason: str  # granted | service | restricted | no_consent | denied | withdrawn
    explanation: str
    record: dict[str, Any] | None = field(default=None)  # the deciding statement, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "explanation": self.explanation,
            "record": self.record,
        }


def _word(value: Any, field: str, choices: Sequence[str], what: str) -> str:
    if not isinstance(value, str):
        raise InvalidConsent(field, f"must be a string, one of {', '.join(choices)}")
    word = value.strip().lower()
    word = _PURPOSE_ALIASES.get(word, word) if what == "purpose" else word
    if word not in choices:
        raise InvalidConsent(field, f"{value[:40]!r} is not a {what}; use one of {', '.join(choices)}")
    return word


def statement(purpose: Any, channel: Any, status: Any, *, prefix: str = "") -> Statement:
    """A validated statement; `prefix` (e.g. `statements[2].`) makes the error name the field."""
    return Statement(
        _word(purpose, f"{prefix}purpose", PURPOSES, "purpose"),
        _word(channel, f"{prefix}channel", (ALL, *CHANNELS), "channel"),
        _word(status, f"{prefix}status", STATUSES, "status"),
    )


def consent_from_context(value: Any, prefix: str = "context.consent") -> ConsentContext:
    """Validate a message's `context.consent`, in Segment's form or Threadline's (docs/privacy.md):

    - `{"categoryPreferences": {"marketing": true, "analytics": false}}`: each category a purpose, on
      every channel ("all"); true is granted, false is denied;
    - `{"preferences": [{"purpose": "marketing", "channel": "email", "status": "granted"}]}`; a missing
      channel means "all".

    Both may carry `form` (where it was asked) and `text` (what the customer was shown) as evidence.
    """
    if not isinstance(value, dict):
        raise InvalidConsent(prefix, "must be a JSON object")
    categories = value.get("categoryPreferences")
    preferences = value.get("preferences")
    if categories is None and preferences is None:
        raise InvalidConsent(prefix, "needs categoryPreferences or preferences")
    found: list[Statement] = []
    if categories is not None:
        if not isinstance(categories, dict):
            raise InvalidConsent(f"{prefix}.categoryPreferences", "must be a JSON object")
        for name, given in categories.items():
            where = f"{prefix}.categoryPreferences.{name}"
            if not isinstance(given, bool):
                raise InvalidConsent(where, "must be true or false")
            purpose = _word(name, where, PURPOSES, "purpose")
            found.append(Statement(purpose, ALL, "granted" if given else "denied"))
    if preferences is not None:
        if not isinstance(preferences, list):
            raise InvalidConsent(f"{prefix}.preferences", "must be a list")
        for n, item in enumerate(preferences):
            where = f"{prefix}.preferences[{n}]"
            if not isinstance(item, dict):
                raise InvalidConsent(where, "must be a JSON object")
            found.append(
                statement(
                    item.get("purpose"), item.get("channel", ALL), item.get("status"), prefix=f"{where}."
                )
            )
    if len(found) > MAX_STATEMENTS:
        raise InvalidConsent(prefix, f"more than {MAX_STATEMENTS} statements")
    return ConsentContext(
        tuple(found), _text(value, "form", prefix, 200), _text(value, "text", prefix, MAX_TEXT)
    )


def _text(value: dict[str, Any], key: str, prefix: str, limit: int) -> str | None:
    text = value.get(key)
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidConsent(f"{prefix}.{key}", "must be a string")
    return text[:limit] or None


def consent_rows(
    profile_id: str,
    consent: ConsentContext,
    *,
    source: str,
    recorded_at: datetime,
    now: datetime,
    message_id: str,
    ip: Any = None,
) -> list[dict[str, Any]]:
    """Rows for `consent_records` from a message's consent (the ingestion pipeline inserts them in the
    event's transaction). Evidence: the message, its source, the sender's IP, the form and its text."""
    evidence = {"messageId": message_id, "source": source}
    for key, item in (("ip", ip), ("form", consent.form), ("text", consent.text)):
        if isinstance(item, str) and item:
            evidence[key] = item[:MAX_TEXT]
    return [
        {
            "profile_id": profile_id,
            "purpose": s.purpose,
            "channel": s.channel,
            "status": s.status,
            "source": source[:100],
            "recorded_at": recorded_at,
            "created_at": now,
            "actor_user_id": None,
            "evidence": evidence,
        }
        for s in consent.statements
    ]


def record_consent(
    db: Database,
    viewer: Viewer,
    profile_id: str,
    statements: Sequence[Statement],
    *,
    source: str,
    now: datetime,
    recorded_at: datetime | None = None,
    actor_user_id: int | None = None,
    evidence: dict[str, Any] | None = None,
) -> str:
    """Append `statements` (validated with `statement`) for a customer; returns the live profile's ID,
    which they are recorded on. Needs the edit permission and the customer in the viewer's write scope:
    out of scope is CustomerNotFound (as for every read), shared read-only is Forbidden."""
    if not statements:
        raise InvalidConsent("statements", "give at least one statement")
    if len(statements) > MAX_STATEMENTS:
        raise InvalidConsent("statements", f"at most {MAX_STATEMENTS} at a time")
    if not viewer.can("edit"):
        raise Forbidden("recording consent needs the edit permission")
    said = recorded_at or now
    if said > now + FUTURE_TOLERANCE:
        raise InvalidConsent("recorded_at", "is in the future")
    evidence = {k: v for k, v in (evidence or {}).items() if v not in (None, "")}
    if len(orjson.dumps(evidence)) > MAX_EVIDENCE_BYTES:
        raise InvalidConsent("evidence", f"larger than {MAX_EVIDENCE_BYTES // 1024} KB")
    with db.write() as session:
        live, _ = _family(session, profile_id, viewer)
        writable = select(Profile.id).where(Profile.id == live, customer_write_filter(viewer))
        if session.scalar(writable) is None:
            raise Forbidden("this customer is shared with you read-only")
        session.execute(
            insert(ConsentRecord),
            [
                {
                    "profile_id": live,
                    "purpose": s.purpose,
                    "channel": s.channel,
                    "status": s.status,
                    "source": source[:100],
                    "recorded_at": said,
                    "created_at": now,
                    "actor_user_id": actor_user_id,
                    "evidence": evidence,
                }
                for s in statements
            ],
        )
    return live


def _family(
    bind: Connection | Session, profile_id: str, viewer: Viewer | None = None
) -> tuple[str, list[str]]:
    """The live profile for an ID (following merges, as resolve_profile_id does) and every ID whose
    records count for it; with `viewer`, CustomerNotFound when the live profile is out of their scope."""
    conn = bind if isinstance(bind, Connection) else bind.connection()
    try:
        current = live_profile_id(conn, profile_id)
    except NotFound as error:
        raise CustomerNotFound(f"profile {profile_id} does not exist") from error
    if viewer is not None:
        visible = select(Profile.id).where(Profile.id == current, customer_filter(viewer))
        if bind.scalar(visible) is None:
            raise CustomerNotFound(f"profile {profile_id} does not exist", details={"out_of_scope": True})
    # merged_into always names the live survivor (kept one hop by identity), so one level is all.
    merged = bind.scalars(select(Profile.id).where(Profile.merged_into == current))
    return current, [current, *merged]


def _restricted(bind: Connection | Session, ids: list[str]) -> bool:
    query = select(ProcessingRestriction.profile_id).where(ProcessingRestriction.profile_id.in_(ids))
    return bind.scalar(query.limit(1)) is not None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


def _summary(record: ConsentRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "id": record.id,
        "profile_id": record.profile_id,
        "channel": record.channel,
        "status": record.status,
        "source": record.source,
        "recorded_at": _iso(record.recorded_at),
    }


def decide(purpose: str, latest: ConsentRecord | None, *, restricted: bool) -> SendDecision:
    """The rule behind check_send, given the latest statement for (purpose, channel or "all")."""
    said = _summary(latest)
    if restricted:
        return SendDecision(False, "restricted", "the customer's processing is restricted", said)
    if purpose == SERVICE:
        if latest is not None and latest.status in _REFUSALS:
            return SendDecision(False, latest.status, f"the customer {latest.status} service messages", said)
        return SendDecision(True, "service", "a reply to the customer's own request, not refused", said)
    if latest is None:
        return SendDecision(False, "no_consent", f"the customer never granted {purpose}", said)
    if latest.status == "granted":
        return SendDecision(True, "granted", f"the customer granted {purpose}", said)
    return SendDecision(False, latest.status, f"the customer {latest.status} {purpose}", said)


def check_send(bind: Connection | Session, profile_id: str, channel: str, purpose: str) -> SendDecision:
    """May we contact this customer on `channel` for `purpose`? The one check every sender makes.

    - Refused while processing is restricted (a `processing_restrictions` row for the live profile or
      any profile merged into it): GDPR art. 18 leaves nothing to send until the restriction is lifted.
    - marketing, analytics, personalisation are opt-in: allowed only when the latest statement for that
      purpose on that channel (or on "all", whichever is later) is `granted`; silence is a refusal.
    - service (a transactional reply to the customer's own request: an order update, an answer to their
      ticket) rests on the request itself, not on consent: allowed unless the latest statement for
      service on that channel is `denied` or `withdrawn`.

    Follows merges: a merged-away ID answers for its survivor. Raises CustomerNotFound for an unknown ID.
    """
    channel = _word(channel, "channel", CHANNELS, "channel")
    purpose = _word(purpose, "purpose", PURPOSES, "purpose")
    _, ids = _family(bind, profile_id)
    if _restricted(bind, ids):
        return decide(purpose, None, restricted=True)
    latest = bind.scalars(
        select(ConsentRecord)
        .where(
            ConsentRecord.profile_id.in_(ids),
            ConsentRecord.purpose == purpose,
            ConsentRecord.channel.in_((channel, ALL)),
        )
        .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
        .limit(1)
    ).first()
    return decide(purpose, latest, restricted=False)


def require_send(bind: Connection | Session, profile_id: str, channel: str, purpose: str) -> SendDecision:
    """check_send for code that must not send otherwise: raises SendRefused with the decision."""
    decision = check_send(bind, profile_id, channel, purpose)
    if not decision.allowed:
        raise SendRefused(f"may not send: {decision.explanation}", details=decision.as_dict())
    return decision


def consent_state(db: Database, profile_id: str, *, viewer: Viewer) -> dict[str, Any]:
    """The matrix purpose x channel of what holds now, within the viewer's data scope.

    Each cell: `status` (granted, denied, withdrawn or unknown), where and when it was said, whether
    it came from an "all" statement, and `allowed`: what check_send answers for it. The "all" column
    shows the latest statement for every channel as it was said.
    """
    with db.read() as session:
        live, ids = _family(session, profile_id, viewer)
        restricted = _restricted(session, ids)
        records = session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.profile_id.in_(ids))
            .order_by(ConsentRecord.recorded_at, ConsentRecord.id)
        ).all()
    latest: dict[tuple[str, str], ConsentRecord] = {}
    for record in records:  # in time order: the last one per (purpose, channel) stays
        latest[(record.purpose, record.channel)] = record
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for purpose in PURPOSES:
        wildcard = latest.get((purpose, ALL))
        row = {ALL: _cell(purpose, wildcard, restricted, via_all=wildcard is not None)}
        for channel in CHANNELS:
            own = latest.get((purpose, channel))
            winner = own if wildcard is None or (own and _later(own, wildcard)) else wildcard
            row[channel] = _cell(
                purpose, winner, restricted, via_all=winner is wildcard and winner is not None
            )
        state[purpose] = row
    return {
        "profile_id": live,
        "requested_id": profile_id if profile_id != live else None,
        "restricted": restricted,
        "purposes": list(PURPOSES),
        "channels": [ALL, *CHANNELS],
        "state": state,
    }


def _later(a: ConsentRecord, b: ConsentRecord) -> bool:
    return (a.recorded_at, a.id) > (b.recorded_at, b.id)


def _cell(purpose: str, record: ConsentRecord | None, restricted: bool, *, via_all: bool) -> dict[str, Any]:
    decision = decide(purpose, record, restricted=restricted)
    return {
        "status": record.status if record else UNKNOWN,
        "source": record.source if record else None,
        "recorded_at": _iso(record.recorded_at) if record else None,
        "via_all": via_all,
        "allowed": decision.allowed,
        "reason": decision.reason,
    }


def consent_history(
    db: Database, profile_id: str, *, viewer: Viewer, limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
    """Every statement that counts for the customer, newest first, with who entered it and the evidence;
    `from_merged` marks those recorded on a profile since merged into this one."""
    with db.read() as session:
        live, ids = _family(session, profile_id, viewer)
        rows = session.execute(
            select(ConsentRecord, User.email, User.name)
            .outerjoin(User, User.id == ConsentRecord.actor_user_id)
            .where(ConsentRecord.profile_id.in_(ids))
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())
            .limit(min(max(limit, 1), HISTORY_LIMIT))
        ).all()
    return [
        {
            "id": r.id,
            "profile_id": r.profile_id,
            "from_merged": r.profile_id != live,
            "purpose": r.purpose,
            "channel": r.channel,
            "status": r.status,
            "source": r.source,
            "recorded_at": _iso(r.recorded_at),
            "created_at": _iso(r.created_at),
            "entered_by": {"id": r.actor_user_id, "email": email, "name": name} if r.actor_user_id else None,
            "evidence": r.evidence or {},
        }
        for r, email, name in rows
    ]


def audit_details(statements: Sequence[Statement], **extra: Any) -> dict[str, Any]:
    """What the audit log keeps of a change: purposes, channels and statuses, never the evidence."""
    return {**extra, "statements": [s.as_dict() for s in statements]}
