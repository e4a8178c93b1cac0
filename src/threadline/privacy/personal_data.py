"""Where a customer's personal data lives: one holder per table, each able to export and to erase it.

Access exports and erasures walk the same list, so what one finds the other removes. Every table of the
schema is either covered by a holder here or named in NO_CUSTOMER_DATA with the reason it holds none;
tests/test_erasure.py fails when a new table is neither, so a capability that adds a table (follow-ups,
conversations, loyalty...) decides here how it is exported and erased.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, delete, func, insert, or_, select, update

from threadline.storage.models import (
    Attachment,
    AuditEntry,
    ConsentRecord,
    Contact,
    ContactCard,
    ContactPlanMember,
    Conversation,
    ConversationMessage,
    Deal,
    Destination,
    DestinationDelivery,
    Event,
    EventSentiment,
    FollowUp,
    FollowUpFile,
    Identity,
    Journey,
    JourneyEnrollment,
    JourneyStepLog,
    Lead,
    LoyaltyEntry,
    LoyaltyStatus,
    MatchCandidate,
    Merge,
    OutboundMessage,
    PrivacyRequest,
    PrivacyRequestEntry,
    ProcessingRestriction,
    Profile,
    ProfileMember,
    ProfileScore,
    QuarantinedMessage,
    RollupProfile,
    SalesAccount,
    Segment,
    SegmentMembership,
    Source,
    SurveyResponse,
    Task,
    TraitChange,
)

# Anonymised events move to this one profile, which is never live (it names itself as its survivor), so
# counts and sums over events stay right while nothing links them back to a person.
ERASED_PROFILE_ID = "erased"
_CHUNK = 500

NO_CUSTOMER_DATA = {
    "rollup_days": "per-day counts and arrays of numbers that rollup_profiles alone links to customers",
    "rollup_event_times": "per-day event names, numbers and times; rollup_profiles alone links numbers to "
    "customers",
    "rollup_first_seen": "customers counted per day of first sight and channel, with their CLV summed",
    "rollup_state": "how far the dashboards' rollups have read the events",
    "rollup_portraits": "customers counted per portrait tag and trait value, every customer together",
    "rollup_surveys": "survey answers counted per day, channel and source",
    "segments": "audience definitions",
    "sla_policies": "service targets per priority, tier and channel",
    "marketing_spend": "what channels and campaigns cost per day",
    "sources": "channels and their write keys",
    "teams": "the organisation's teams",
    "users": "staff accounts (a staff member's own data, not a customer's)",
    "api_tokens": "staff tokens, stored as hashes",
    "saved_views": "staff's saved list queries",
    "user_sessions": "staff sign-ins",
    "sign_in_failures": "keyed hashes of emails that failed to sign in",
    "resolution_runs": "counts of each resolver run",
    "workspace_settings": "the team's settings",
    "jobs": "background work; payloads carry ids, never personal data",
    "suppressions": "keyed hashes of erased identifiers: what keeps an erasure in force",
    "privacy_request_log": "erased with its request (see the privacy_requests holder)",
    "calendar_feeds": "hashed secrets of staff's calendar feed links",
    "pipelines": "deal stages and their win probabilities",
    "custom_fields": "definitions of the fields added to sales records",
    "deal_stage_history": "stage keys, times and the staff member who moved the deal",
    "journeys": "journey definitions: triggers, steps and message templates",
    "contact_plans": "plan definitions: goal, channel, window, content (its audience: contact_plan_members)",
    "destinations": "webhook URLs, filters and signing secrets (the payloads: destination_deliveries)",
}


@dataclass(slots=True)
class Person:
    """A data subject as the database knows them: a live profile and every profile merged into it."""

    live_id: str
    profile_ids: list[str]
    identifiers: list[tuple[str, str]] = field(default_factory=list)  # (kind, value), normalised
    display_names: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ErasurePolicy:
    """What erasure does to events: delete them, or keep them anonymised for aggregates (order counts,
    revenue) with only the listed properties."""

    events: str = "anonymise"  # anonymise | delete
    keep_properties: tuple[str, ...] = (
        "revenue",
        "total",
        "subtotal",
        "value",
        "price",
        "quantity",
        "currency",
        "tax",
        "shipping",
        "discount",
    )


@dataclass(frozen=True, slots=True)
class Holder:
    table: str
    export: Callable[[Connection, Person], Any] | None
    erase: Callable[[Connection, Person, ErasurePolicy], int]
    section: str = ""  # its name in an access export, when not the table's

    @property
    def name(self) -> str:
        return self.section or self.table


def find_person(conn: Connection, live_id: str) -> Person:
    ids = [
        live_id,
        *conn.scalars(select(Profile.id).where(Profile.merged_into == live_id).order_by(Profile.id)),
    ]
    idents = conn.execute(
        select(Identity.kind, Identity.value).where(Identity.profile_id.in_(ids)).order_by(Identity.id)
    ).all()
    names = [n for n in conn.scalars(select(Profile.display_name).where(Profile.id.in_(ids))) if n]
    return Person(live_id, ids, [(k, v) for k, v in idents], sorted(set(names)))


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


def _rows(conn: Connection, query: Any) -> list[dict[str, Any]]:
    out = []
    for row in conn.execute(query):
        out.append({k: (_iso(v) if isinstance(v, datetime) else v) for k, v in row._mapping.items()})
    return out


def _chunks(ids: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


# -- profiles ------------------------------------------------------------------------------------
def _export_profile(conn: Connection, person: Person) -> dict[str, Any]:
    row = conn.execute(select(Profile.__table__).where(Profile.id == person.live_id)).one()
    return {
        "id": row.id,
        "display_name": row.display_name,
        "traits": row.traits,
        "trait_sources": row.trait_meta,
        "channels": row.channels,
        "tags": row.tags,
        "first_seen": _iso(row.first_seen),
        "last_seen": _iso(row.last_seen),
        "event_count": row.event_count,
        "merged_profile_ids": person.profile_ids[1:],
    }


def _erase_profiles(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    # Merged-away rows first: nothing points at them but the live row's lineage.
    merged = person.profile_ids[1:]
    removed = 0
    for chunk in _chunks(merged):
        removed += conn.execute(delete(Profile).where(Profile.id.in_(chunk))).rowcount
    removed += conn.execute(delete(Profile).where(Profile.id == person.live_id)).rowcount
    return removed


# -- identities, trait history, consents, sharing ------------------------------------------------------
def _deleting(model: Any, column: str) -> Callable[[Connection, Person, ErasurePolicy], int]:
    def erase(conn: Connection, person: Person, _: ErasurePolicy) -> int:
        col = getattr(model, column)
        return sum(
            conn.execute(delete(model).where(col.in_(chunk))).rowcount
            for chunk in _chunks(person.profile_ids)
        )

    return erase


# -- events ----------------------------------------------------------------------------------------------
def _of_person(table: str, model: Any, query: Select[*tuple[Any, ...]], section: str = "") -> Holder:
    """A table whose rows are the person's by `profile_id`: exported as `query` selects them (its
    columns and order), deleted on erasure."""

    def export(conn: Connection, person: Person) -> list[dict[str, Any]]:
        return _rows(conn, query.where(model.profile_id.in_(person.profile_ids)))

    return Holder(table, export, _deleting(model, "profile_id"), section)


def _export_events(conn: Connection, person: Person) -> list[dict[str, Any]]:
    return _rows(
        conn,
        select(
            Event.timestamp,
            Event.channel,
            Event.type,
            Event.name,
            Source.name.label("source"),
            Event.message_id,
            Event.user_id,
            Event.anonymous_id,
            Event.properties,
            Event.traits,
            Event.context,
        )
        .join(Source, Source.id == Event.source_id)
        .where(Event.profile_id.in_(person.profile_ids))
        .order_by(Event.timestamp, Event.id),
    )


def _erase_events(conn: Connection, person: Person, policy: ErasurePolicy) -> int:
    where = Event.profile_id.in_(person.profile_ids)
    if policy.events == "delete":
        return conn.execute(delete(Event).where(where)).rowcount
    ensure_erased_profile(conn)
    keep = set(policy.keep_properties)
    changed = 0
    rows = conn.execute(select(Event.id, Event.properties).where(where)).all()
    for chunk in _chunks(rows):
        for event_id, properties in chunk:
            kept = {
                k: v
                for k, v in (properties or {}).items()
                if k in keep and (v is None or isinstance(v, int | float | bool) or k == "currency")
            }
            conn.execute(
                update(Event)
                .where(Event.id == event_id)
                .values(
                    profile_id=ERASED_PROFILE_ID,
                    original_profile_id=ERASED_PROFILE_ID,
                    user_id=None,
                    anonymous_id=None,
                    properties=kept,
                    traits=None,
                    context={},
                )
            )
            changed += 1
    return changed


def ensure_erased_profile(conn: Connection) -> None:
    if conn.scalar(select(Profile.id).where(Profile.id == ERASED_PROFILE_ID)) is not None:
        return
    epoch = datetime(1970, 1, 1)
    conn.execute(
        insert(Profile).values(
            id=ERASED_PROFILE_ID,
            created_at=epoch,
            first_seen=epoch,
            last_seen=epoch,
            event_count=0,
            traits={},
            trait_meta={},
            channels={},
            tags=[],
            merged_into=ERASED_PROFILE_ID,
            merged_at=epoch,
        )
    )


# -- lineage and resolver pairs ----------------------------------------------------------------------------
def _export_merges(conn: Connection, person: Person) -> list[dict[str, Any]]:
    # Only merges inside the person: a blocked or undone merge names another customer's profile.
    return _rows(
        conn,
        select(Merge.created_at, Merge.trigger, Merge.identifier_kind, Merge.identifier_value, Merge.reason)
        .where(
            Merge.status == "merged",
            Merge.survivor_id.in_(person.profile_ids),
            Merge.merged_id.in_(person.profile_ids),
        )
        .order_by(Merge.id),
    )


def _erase_merges(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    # Every row naming the person goes, blocked and undone ones too: they carry the person's identifiers
    # and snapshots of their traits.
    removed = 0
    for chunk in _chunks(person.profile_ids):
        removed += conn.execute(
            delete(Merge).where(or_(Merge.survivor_id.in_(chunk), Merge.merged_id.in_(chunk)))
        ).rowcount
    return removed


def _erase_rollup_numbers(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    """The dashboards' rollups keep the person's number in their day arrays (aggregates stay); the link
    from the number to the profile id goes, so it leads to no one."""
    cleared = 0
    for chunk in _chunks(person.profile_ids):
        cleared += conn.execute(
            update(RollupProfile).where(RollupProfile.profile_id.in_(chunk)).values(profile_id=None)
        ).rowcount
    return cleared


def _erase_candidates(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    removed = 0
    for chunk in _chunks(person.profile_ids):
        removed += conn.execute(
            delete(MatchCandidate).where(
                or_(MatchCandidate.left_id.in_(chunk), MatchCandidate.right_id.in_(chunk))
            )
        ).rowcount
    return removed


# -- quarantine: rejected messages that carried the person's identifiers ----------------------------------
def _quarantine_where(person: Person) -> Any:
    needles = sorted({v.lower() for _, v in person.identifiers if len(v) >= 5})
    if not needles:
        return None
    return or_(*(func.lower(QuarantinedMessage.payload).contains(n, autoescape=True) for n in needles))


def _export_quarantine(conn: Connection, person: Person) -> list[dict[str, Any]]:
    where = _quarantine_where(person)
    if where is None:
        return []
    return _rows(
        conn,
        select(
            QuarantinedMessage.received_at,
            QuarantinedMessage.field,
            QuarantinedMessage.reason,
            QuarantinedMessage.payload,
        )
        .where(where)
        .order_by(QuarantinedMessage.id),
    )


def _erase_quarantine(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    where = _quarantine_where(person)
    return 0 if where is None else conn.execute(delete(QuarantinedMessage).where(where)).rowcount


# -- outbound messages: the address and the bodies written for the person ----------------------------------
def _export_requests(conn: Connection, person: Person) -> list[dict[str, Any]]:
    return _rows(
        conn,
        select(
            PrivacyRequest.id,
            PrivacyRequest.kind,
            PrivacyRequest.regulation,
            PrivacyRequest.status,
            PrivacyRequest.received_at,
            PrivacyRequest.due_at,
            PrivacyRequest.completed_at,
        )
        .where(PrivacyRequest.profile_id.in_(person.profile_ids))
        .order_by(PrivacyRequest.id),
    )


def _erase_requests(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    """Requests stay as the record that they were handled, without what could identify the person."""
    ids = list(
        conn.scalars(select(PrivacyRequest.id).where(PrivacyRequest.profile_id.in_(person.profile_ids)))
    )
    for chunk in _chunks(ids):
        conn.execute(
            update(PrivacyRequest)
            .where(PrivacyRequest.id.in_(chunk))
            .values(profile_id=None, requester=None, subject=None, details={})
        )
        conn.execute(
            update(PrivacyRequestEntry).where(PrivacyRequestEntry.request_id.in_(chunk)).values(note=None)
        )
    return len(ids)


def _export_audit(conn: Connection, person: Person) -> list[dict[str, Any]]:
    # What was done with the person's record and when; who did it is a staff member's data, not theirs.
    return _rows(
        conn,
        select(AuditEntry.at, AuditEntry.action, AuditEntry.object_type)
        .where(AuditEntry.object_type == "profile", AuditEntry.object_id.in_(person.profile_ids))
        .order_by(AuditEntry.id),
    )


def _conversation_ids(conn: Connection, person: Person) -> list[int]:
    return list(conn.scalars(select(Conversation.id).where(Conversation.profile_id.in_(person.profile_ids))))


def _message_ids(conn: Connection, person: Person) -> list[int]:
    ids = _conversation_ids(conn, person)
    found: list[int] = []
    for chunk in _chunks(ids):
        found += conn.scalars(
            select(ConversationMessage.id).where(ConversationMessage.conversation_id.in_(chunk))
        )
    return found


def _export_conversations(conn: Connection, person: Person) -> list[dict[str, Any]]:
    """Each conversation with its messages (internal notes left out: staff's words about the case)."""
    conversations = _rows(
        conn,
        select(
            Conversation.id,
            Conversation.channel,
            Conversation.subject,
            Conversation.status,
            Conversation.created_at,
            Conversation.resolved_at,
        )
        .where(Conversation.profile_id.in_(person.profile_ids))
        .order_by(Conversation.id),
    )
    for conversation in conversations:
        conversation["messages"] = _rows(
            conn,
            select(
                ConversationMessage.direction,
                ConversationMessage.sender,
                ConversationMessage.body_text,
                ConversationMessage.created_at,
            )
            .where(
                ConversationMessage.conversation_id == conversation["id"],
                ConversationMessage.direction != "note",
            )
            .order_by(ConversationMessage.id),
        )
    return conversations


def _erase_conversation_messages(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    removed = 0
    for chunk in _chunks(_conversation_ids(conn, person)):
        removed += conn.execute(
            delete(ConversationMessage).where(ConversationMessage.conversation_id.in_(chunk))
        ).rowcount
    return removed


def _export_attachments(conn: Connection, person: Person) -> list[dict[str, Any]]:
    # Named and sized; the files themselves are handed over separately when asked for.
    found: list[dict[str, Any]] = []
    for chunk in _chunks(_message_ids(conn, person)):
        found += _rows(
            conn,
            select(Attachment.id, Attachment.filename, Attachment.content_type, Attachment.size).where(
                Attachment.message_id.in_(chunk)
            ),
        )
    return found


def _erase_attachments(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    removed = 0
    for chunk in _chunks(_message_ids(conn, person)):
        removed += conn.execute(delete(Attachment).where(Attachment.message_id.in_(chunk))).rowcount
    return removed


def _person_tasks(person: Person) -> Any:
    # Tasks linked to the customer themselves; a task on their company's account stays with the account.
    return (Task.related_type == "profile") & Task.related_id.in_(person.profile_ids)


def _export_tasks(conn: Connection, person: Person) -> list[dict[str, Any]]:
    return _rows(
        conn,
        select(Task.title, Task.description, Task.due_at, Task.status, Task.created_at)
        .where(_person_tasks(person))
        .order_by(Task.id),
    )


def _erase_tasks(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    return int(conn.execute(delete(Task).where(_person_tasks(person))).rowcount or 0)


# -- sales records (threadline.sales) --------------------------------------------------------------------
# Leads and person accounts are anonymised, not deleted, so conversion and customer counts stay right (as
# anonymised events keep revenue right); a contact is only the person at a company, so it goes. A company
# account is the company's, not personal data; a person account's deals stay as sales, named no more.
ERASED_NAME = "(erased)"


def _export_leads(conn: Connection, person: Person) -> list[dict[str, Any]]:
    return _rows(
        conn,
        select(
            Lead.name,
            Lead.company,
            Lead.email,
            Lead.phone,
            Lead.source,
            Lead.status,
            Lead.custom,
            Lead.created_at,
        )
        .where(Lead.profile_id.in_(person.profile_ids))
        .order_by(Lead.id),
    )


def _erase_leads(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    where = Lead.profile_id.in_(person.profile_ids)
    values: dict[str, Any] = {
        "name": ERASED_NAME,
        "company": None,
        "email": None,
        "phone": None,
        "custom": {},
        "profile_id": None,
    }
    return int(conn.execute(update(Lead).where(where).values(**values)).rowcount or 0)


def _person_accounts(person: Person) -> Any:
    return (SalesAccount.kind == "person") & SalesAccount.profile_id.in_(person.profile_ids)


def _export_person_accounts(conn: Connection, person: Person) -> list[dict[str, Any]]:
    return _rows(
        conn,
        select(
            SalesAccount.name,
            SalesAccount.industry,
            SalesAccount.region,
            SalesAccount.source,
            SalesAccount.level,
            SalesAccount.custom,
            SalesAccount.created_at,
        )
        .where(_person_accounts(person))
        .order_by(SalesAccount.id),
    )


def _erase_person_accounts(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    values: dict[str, Any] = {"name": ERASED_NAME, "custom": {}, "profile_id": None}
    return int(
        conn.execute(update(SalesAccount).where(_person_accounts(person)).values(**values)).rowcount or 0
    )


def _person_deals(person: Person) -> Any:
    return Deal.account_id.in_(select(SalesAccount.id).where(_person_accounts(person)))


def _export_deals(conn: Connection, person: Person) -> list[dict[str, Any]]:
    return _rows(
        conn,
        select(Deal.name, Deal.stage, Deal.status, Deal.amount, Deal.currency, Deal.products, Deal.created_at)
        .where(_person_deals(person))
        .order_by(Deal.id),
    )


def _erase_deals(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    # Before the accounts: found through the person account's profile link. The amounts stay for revenue.
    values: dict[str, Any] = {"name": ERASED_NAME, "custom": {}, "lost_reason": None}
    return int(conn.execute(update(Deal).where(_person_deals(person)).values(**values)).rowcount or 0)


def _person_enrollments(person: Person) -> Any:
    return select(JourneyEnrollment.id).where(JourneyEnrollment.profile_id.in_(person.profile_ids))


def _export_enrollments(conn: Connection, person: Person) -> list[dict[str, Any]]:
    return _rows(
        conn,
        select(
            Journey.name.label("journey"),
            JourneyEnrollment.status,
            JourneyEnrollment.outcome,
            JourneyEnrollment.step_key,
            JourneyEnrollment.context,
            JourneyEnrollment.entered_at,
        )
        .join(Journey, Journey.id == JourneyEnrollment.journey_id)
        .where(JourneyEnrollment.profile_id.in_(person.profile_ids))
        .order_by(JourneyEnrollment.id),
    )


def _export_journey_steps(conn: Connection, person: Person) -> list[dict[str, Any]]:
    return _rows(
        conn,
        select(
            JourneyStepLog.enrollment_id, JourneyStepLog.step_key, JourneyStepLog.outcome, JourneyStepLog.at
        )
        .where(JourneyStepLog.enrollment_id.in_(_person_enrollments(person)))
        .order_by(JourneyStepLog.id),
    )


def _erase_journey_steps(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    removed = conn.execute(
        delete(JourneyStepLog).where(JourneyStepLog.enrollment_id.in_(_person_enrollments(person)))
    )
    return int(removed.rowcount or 0)


def _keep(conn: Connection, person: Person, _: ErasurePolicy) -> int:
    return 0


HOLDERS: tuple[Holder, ...] = (
    _of_person(
        "identities",
        Identity,
        select(Identity.kind, Identity.value, Identity.first_seen, Source.name.label("source"))
        .outerjoin(Source, Source.id == Identity.source_id)
        .order_by(Identity.first_seen, Identity.id),
    ),
    _of_person(
        "trait_history",
        TraitChange,
        select(TraitChange.key, TraitChange.value, TraitChange.observed_at, Source.name.label("source"))
        .join(Source, Source.id == TraitChange.source_id)
        .order_by(TraitChange.observed_at, TraitChange.id),
    ),
    Holder("events", _export_events, _erase_events),
    _of_person(
        "consent_records",
        ConsentRecord,
        select(
            ConsentRecord.purpose,
            ConsentRecord.channel,
            ConsentRecord.status,
            ConsentRecord.source,
            ConsentRecord.recorded_at,
            ConsentRecord.evidence,
        ).order_by(ConsentRecord.recorded_at, ConsentRecord.id),
        "consents",
    ),
    _of_person(
        "processing_restrictions", ProcessingRestriction, select(ProcessingRestriction.since), "restriction"
    ),
    Holder("profile_members", None, _deleting(ProfileMember, "profile_id")),
    Holder("merges", _export_merges, _erase_merges),
    Holder("match_candidates", None, _erase_candidates),
    Holder("rollup_profiles", None, _erase_rollup_numbers),
    Holder("quarantine", _export_quarantine, _erase_quarantine),
    Holder("privacy_requests", _export_requests, _erase_requests),
    _of_person(
        "outbound_messages",
        OutboundMessage,
        select(
            OutboundMessage.created_at,
            OutboundMessage.channel,
            OutboundMessage.purpose,
            OutboundMessage.to_address,
            OutboundMessage.subject,
            OutboundMessage.body_text,
            OutboundMessage.body_html,
            OutboundMessage.status,
            OutboundMessage.reason,
            OutboundMessage.sent_at,
        ).order_by(OutboundMessage.created_at, OutboundMessage.id),
        "messages",
    ),
    # What was forwarded about the person to destinations (webhooks): the recipients are theirs to know;
    # the payloads are copies of their events, deleted with them (docs/destinations.md).
    _of_person(
        "destination_deliveries",
        DestinationDelivery,
        select(
            Destination.name.label("destination"),
            DestinationDelivery.kind,
            DestinationDelivery.name,
            DestinationDelivery.status,
            DestinationDelivery.created_at,
            DestinationDelivery.delivered_at,
        )
        .join(Destination, Destination.id == DestinationDelivery.destination_id)
        .order_by(DestinationDelivery.id),
        "forwarded",
    ),
    # Attachments and messages before their conversations: they point at them.
    Holder("attachments", _export_attachments, _erase_attachments),
    Holder("conversation_messages", None, _erase_conversation_messages),
    Holder("conversations", _export_conversations, _deleting(Conversation, "profile_id")),
    _of_person(
        "survey_responses",
        SurveyResponse,
        select(
            SurveyResponse.kind,
            SurveyResponse.channel,
            SurveyResponse.sent_at,
            SurveyResponse.answered_at,
            SurveyResponse.score,
            SurveyResponse.comment,
        ).order_by(SurveyResponse.id),
        "surveys",
    ),
    _of_person(
        "segment_memberships",
        SegmentMembership,
        select(Segment.name, SegmentMembership.entered_at)
        .join(Segment, Segment.id == SegmentMembership.segment_id)
        .order_by(Segment.name),
        "segments",
    ),
    _of_person(
        "loyalty_ledger",
        LoyaltyEntry,
        select(LoyaltyEntry.kind, LoyaltyEntry.points, LoyaltyEntry.reason, LoyaltyEntry.created_at).order_by(
            LoyaltyEntry.id
        ),
        "loyalty",
    ),
    _of_person(
        "loyalty_status",
        LoyaltyStatus,
        select(LoyaltyStatus.points, LoyaltyStatus.lifetime_points, LoyaltyStatus.tier),
    ),
    # What models concluded about the person (CLV, churn risk, recommendations): profiling, theirs to see.
    _of_person(
        "profile_scores",
        ProfileScore,
        select(
            ProfileScore.name, ProfileScore.value, ProfileScore.details, ProfileScore.computed_at
        ).order_by(ProfileScore.name),
        "computed_scores",
    ),
    _of_person(
        "event_sentiments",
        EventSentiment,
        select(
            EventSentiment.event_id, EventSentiment.channel, EventSentiment.score, EventSentiment.label
        ).order_by(EventSentiment.event_id),
        "sentiments",
    ),
    # Sales notes about the person (threadline.sales): what was said and agreed is theirs to see. The
    # files first: they hang off the follow-ups.
    _of_person(
        "follow_up_files",
        FollowUpFile,
        select(
            FollowUpFile.follow_up_id,
            FollowUpFile.filename,
            FollowUpFile.content_type,
            FollowUpFile.size,
            FollowUpFile.created_at,
        ).order_by(FollowUpFile.id),
        "follow_up_files",
    ),
    _of_person(
        "follow_ups",
        FollowUp,
        select(
            FollowUp.method, FollowUp.content, FollowUp.outcome, FollowUp.next_contact_at, FollowUp.created_at
        ).order_by(FollowUp.created_at, FollowUp.id),
    ),
    Holder("tasks", _export_tasks, _erase_tasks),
    Holder("leads", _export_leads, _erase_leads),
    _of_person(
        "contacts",
        Contact,
        select(
            Contact.name,
            Contact.title,
            Contact.email,
            Contact.phone,
            SalesAccount.name.label("account"),
            Contact.custom,
            Contact.created_at,
        )
        .join(SalesAccount, SalesAccount.id == Contact.account_id)
        .order_by(Contact.id),
    ),
    Holder("deals", _export_deals, _erase_deals),
    Holder("accounts", _export_person_accounts, _erase_person_accounts),
    # Step logs before their enrollments: they point at them.
    Holder("journey_step_log", _export_journey_steps, _erase_journey_steps, "journey_steps"),
    Holder(
        "journey_enrollments", _export_enrollments, _deleting(JourneyEnrollment, "profile_id"), "journeys"
    ),
    # A plan's figures lose the person with their rows: the plan no longer counts them (docs/sales.md).
    _of_person(
        "contact_cards",
        ContactCard,
        select(
            ContactCard.plan_id,
            ContactCard.contacted_at,
            ContactCard.reached,
            ContactCard.effective,
            ContactCard.rating,
            ContactCard.feedback,
        ).order_by(ContactCard.contacted_at, ContactCard.id),
    ),
    # Which contact plans the person was in; the cards above say how each contact went.
    _of_person(
        "contact_plan_members",
        ContactPlanMember,
        select(ContactPlanMember.plan_id).order_by(ContactPlanMember.plan_id),
        "contact_plans",
    ),
    # Audit entries hold the profile id, never personal data (privacy/audit.py): they stay, so the
    # erasure itself remains on record.
    Holder("audit_log", _export_audit, _keep, "audit"),
    # Last: the rows above point at the profiles.
    Holder("profiles", _export_profile, _erase_profiles, "profile"),
)
