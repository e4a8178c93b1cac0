"""The tables of the customer data spine.

Times are stored as naive UTC on both databases (one convention, no per-dialect surprises); the API
layer adds the `Z` on the way out.

Rows that move when profiles merge (identities, events, trait history) keep `original_profile_id`, the
profile they first landed on, so that a merge can be undone exactly (see docs/identity.md).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity for events.
BigID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    write_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Team(Base):
    """A sales or service team; teams nest (a manager of a team sees its sub-teams' customers)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True)
    manager_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True, index=True)
    # Empty locale/timezone: follow the browser (Accept-Language) and THREADLINE_TIMEZONE.
    locale: Mapped[str | None] = mapped_column(String(10), nullable=True)
    timezone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


_LIVE = text("merged_into IS NULL")


class Profile(Base):
    __tablename__ = "profiles"
    # The customer list reads live profiles newest first, for everyone or for one owner: these partial
    # indexes give it the first page without sorting every customer. Merged-away rows are few and only
    # looked up by merged_into, so that index holds just them.
    __table_args__ = (
        # owner_id rides along so an agent's list ("mine or shared with me") and a search can test
        # each entry without reading its profile row.
        Index(
            "ix_profiles_live_last_seen",
            "last_seen",
            "id",
            "owner_id",
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
        ),
        Index(
            "ix_profiles_live_owner_last_seen",
            "owner_id",
            "last_seen",
            "id",
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
        ),
        # New and total customers on the dashboards count live profiles by first sight.
        Index("ix_profiles_live_first_seen", "first_seen", postgresql_where=_LIVE, sqlite_where=_LIVE),
        Index(
            "ix_profiles_merged_into",
            "merged_into",
            postgresql_where=text("merged_into IS NOT NULL"),
            sqlite_where=text("merged_into IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Lower-cased name for case-insensitive search that works the same on both databases.
    search_name: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # key -> [event time ISO, source name, rule, seen]: why the shown value of each trait won, and the
    # observed values with their counts (seen; profiles/golden.py meta_for). Older rows have two fields.
    trait_meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # channel -> {"first_seen", "last_seen", "events"}
    channels: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    merged_into: Mapped[str | None] = mapped_column(String(32), nullable=True)
    merged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The user responsible for the customer; NULL means unowned (the customer pool).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)


class ProfileMember(Base):
    """A colleague the owner shares a customer with (WukongCRM's team members), read or write."""

    __tablename__ = "profile_members"

    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    access: Mapped[str] = mapped_column(String(10))  # read | write


class AuditEntry(Base):
    """Who did what to which record, when and from where. Append-only: the app never edits it."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class SavedView(Base):
    """A named customer-list query ("my customers", "seen this week") for one user, or shared."""

    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Identity(Base):
    __tablename__ = "identities"
    # Value first: lookups ask for many values at once, and a leading column that is that selective
    # gets an index scan even before the planner has statistics (a fresh or bulk-loaded database).
    # The search index adds profile_id so that "identifiers starting with ..." finds its customers from
    # the index alone (threadline.profiles.search); a prefix can match thousands of emails. On
    # PostgreSQL its pattern ops make a prefix LIKE an index range whatever the database's collation.
    __table_args__ = (
        UniqueConstraint("value", "kind", name="uq_identities_value_kind"),
        Index(
            "ix_identities_value_profile",
            "value",
            "kind",
            "profile_id",
            postgresql_ops={"value": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(320))
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id"), index=True)
    original_profile_id: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # messageId first, for the same reason as identities' (value, kind).
        UniqueConstraint("message_id", "source_id", name="uq_events_message_source"),
        Index("ix_events_profile_time", "profile_id", "timestamp", "id"),
        # "Did X within N days" per customer, under an OR too (segments, journeys' last-event reads):
        # without it PostgreSQL scans each customer's whole timeline per condition (bench/segment_eval.py).
        Index("ix_events_profile_name_time", "profile_id", "name", "timestamp"),
        # Insight's reads of one kind of event over a range of days, for every customer: survey answers,
        # complaints (the consistency report), a funnel's steps (bench/dashboards.py).
        Index("ix_events_name_time", "name", "timestamp"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id"))
    original_profile_id: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    channel: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(10))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    timestamp: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    traits: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class TraitChange(Base):
    """One observed value of a trait: the history behind the profile's shown value."""

    __tablename__ = "trait_history"
    __table_args__ = (Index("ix_trait_history_profile_key", "profile_id", "key"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("profiles.id"))
    original_profile_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    observed_at: Mapped[datetime] = mapped_column(DateTime)
    message_id: Mapped[str] = mapped_column(String(100))


class Merge(Base):
    """A merge of two profiles, or one that merge protection blocked, with what caused it; an undone
    merge keeps its row (status `unmerged`) with who undid it, when and why (docs/identity.md)."""

    __tablename__ = "merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(10))  # merged | blocked | unmerged
    survivor_id: Mapped[str] = mapped_column(String(32), index=True)
    merged_id: Mapped[str] = mapped_column(String(32), index=True)
    trigger: Mapped[str] = mapped_column(String(20))  # message | alias | resolver | steward
    identifier_kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    identifier_value: Mapped[str | None] = mapped_column(String(320), nullable=True)
    source_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Explicit merges: the steward who decided, or the resolver's rule and match probability.
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rule: Mapped[str | None] = mapped_column(String(100), nullable=True)
    match_probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    # What an unmerge needs from merge time: row watermarks and what absorb gave the survivor
    # (written by IdentityGraph.merge in identity/stitch.py, read by identity/unmerge.py).
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    unmerged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    unmerged_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    unmerge_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class QuarantinedMessage(Base):
    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_source_message", "source_id", "message_id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), nullable=True, index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    message_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    field: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)


class UserSession(Base):
    """A signed-in browser. The cookie carries a random secret; only its SHA-256 digest is stored, as
    the key, so a leaked table signs nobody in (accounts/sessions.py)."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex of the cookie's secret
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)  # at most a minute behind (one write a minute)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class SignInFailure(Base):
    """Failed sign-ins for an email that belongs to nobody, so that it locks like a real account in
    every server process (accounts/signin.py). Keyed by an HMAC of the email, never the email."""

    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # old rows are pruned by it


class ResolutionRun(Base):
    """One batch run of identity resolution (`threadline resolve`): what it read, scored and decided."""

    __tablename__ = "resolution_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(10))  # running | done | failed
    stage: Mapped[str] = mapped_column(String(10))  # read | score | decide | done
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    started_by: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the CLI or the worker
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSONType)
    profiles: Mapped[int] = mapped_column(Integer, default=0)
    pairs: Mapped[int] = mapped_column(Integer, default=0)
    queued: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class MatchCandidate(Base):
    """A pair of profiles the resolver thinks may be one person, and what became of it.

    One row per pair, ever (left_id < right_id): a rejected pair stays rejected, so it is never
    suggested again; a later run only refreshes the score of a pair still pending.
    """

    __tablename__ = "match_candidates"
    __table_args__ = (
        UniqueConstraint("left_id", "right_id", name="uq_match_candidates_pair"),
        Index("ix_match_candidates_status_probability", "status", "match_probability"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    left_id: Mapped[str] = mapped_column(String(32))
    right_id: Mapped[str] = mapped_column(String(32))
    # pending | merged (auto or approved) | rejected | obsolete (merged another way, or a profile is gone)
    status: Mapped[str] = mapped_column(String(10))
    match_probability: Mapped[float] = mapped_column(Float)
    match_weight: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType)  # {"prior": w, "comparisons": [...]}
    run_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    scored_at: Mapped[datetime] = mapped_column(DateTime)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    decided_by: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the resolver's rule
    merge_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class WorkspaceSetting(Base):
    """A workspace-wide setting changed from the pages (e.g. the resolver's thresholds), with who and when.

    Environment settings (threadline.config) configure the installation; these are the team's choices.
    """

    __tablename__ = "workspace_settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    updated_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Job(Base):
    """A unit of background work (threadline.jobs): queued, claimed by one worker under a lease, done or
    failed. A worker that dies leaves its job `running` with a lease that runs out; another worker then
    claims it again (docs/worker.md)."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_jobs_dedupe_key"),
        Index("ix_jobs_status_run_at", "status", "run_at"),
        Index("ix_jobs_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(10))  # queued | running | done | failed
    run_at: Mapped[datetime] = mapped_column(DateTime)  # not before; a retry moves it by the backoff
    attempts: Mapped[int] = mapped_column(Integer)  # claims so far, the one running included
    max_attempts: Mapped[int] = mapped_column(Integer)
    locked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # the worker holding it
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # its lease
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # One job per scheduled occurrence ("resolve:2026-11-23T03:00"), however many workers enqueue it.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ConsentRecord(Base):
    """One statement of consent for a purpose on a channel: the ledger behind a customer's consent state.

    Append-only. A record stays on the profile it was recorded for; the state of a live profile is the
    latest record per (purpose, channel) among it and the profiles merged into it (privacy/consent.py),
    so merges and unmerges need not move these rows.
    """

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_records_profile", "profile_id", "purpose", "channel", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(20))  # marketing | analytics | personalisation | service
    channel: Mapped[str] = mapped_column(String(20))  # email | sms | phone | push | whatsapp | wechat | post
    status: Mapped[str] = mapped_column(String(10))  # granted | denied | withdrawn
    source: Mapped[str] = mapped_column(String(100))  # how it came: a source's name, api, web, import, ...
    recorded_at: Mapped[datetime] = mapped_column(DateTime)  # when the customer said it
    created_at: Mapped[datetime] = mapped_column(DateTime)  # when Threadline stored it
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # staff who entered it
    # What proves it: form, text shown, IP, messageId, note. Personal data: erased with the person.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ProcessingRestriction(Base):
    """A customer's processing is restricted (GDPR art. 18): nothing is sent to them while it lasts."""

    __tablename__ = "processing_restrictions"

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime)
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    set_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PrivacyRequest(Base):
    """A data subject request (access, rectification, erasure, restriction, objection) and its progress.

    `requester` and `subject` hold what the person gave to be found (an email, a phone number): personal
    data, blanked when an erasure completes; the request itself stays as the record that it was done.
    """

    __tablename__ = "privacy_requests"
    __table_args__ = (Index("ix_privacy_requests_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    regulation: Mapped[str] = mapped_column(String(10))  # gdpr | ccpa | pipl
    status: Mapped[str] = mapped_column(String(12))  # received | verified | completed | rejected
    profile_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    requester: Mapped[str | None] = mapped_column(String(320), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(320), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    verified_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    verification: Mapped[str | None] = mapped_column(String(40), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    completed_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # counts, never personal data


class PrivacyRequestEntry(Base):
    """The log of one data subject request: received, verified, exported, erased, reminded..."""

    __tablename__ = "privacy_request_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("privacy_requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Suppression(Base):
    """An erased identifier, kept only as a keyed hash so that later messages carrying it are dropped and
    never re-create the person (privacy/suppression.py)."""

    __tablename__ = "suppressions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC-SHA256 hex of kind:value
    kind: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    request_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class OutboundMessage(Base):
    """A message Threadline sent, or was asked to send, to a customer (threadline.messaging): the
    delivery log. The address and the bodies are personal data, erased with the person."""

    __tablename__ = "outbound_messages"
    __table_args__ = (Index("ix_outbound_messages_profile", "profile_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(String(32))  # the live profile when it was asked for
    channel: Mapped[str] = mapped_column(String(20))  # email (sms, webhook later)
    purpose: Mapped[str] = mapped_column(String(20))  # marketing | analytics | personalisation | service
    to_address: Mapped[str | None] = mapped_column(String(320), nullable=True)
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    # queued | sending | sent | failed | refused; `sending` is held only during the relay's conversation
    status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why refused, failed or still queued
    message_id_header: Mapped[str | None] = mapped_column(String(250), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # hand-overs to the relay begun
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)  # staff user, or NULL
    origin: Mapped[str] = mapped_column(String(40))  # manual | journey | service: who asked
    # Extra headers the email carries: a service reply's In-Reply-To and References (threading).
    headers: Mapped[dict[str, str] | None] = mapped_column(JSONType, nullable=True)
    # Pacing and tracking (migration 0022, threadline.messaging.quiet_hours / tracking): not sent before
    # `send_after` (held for the customer's quiet hours); `tracked` when the email went out with an
    # open pixel and redirected links, so an empty first_opened_at means "not opened" only then.
    send_after: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    tracked: Mapped[bool] = mapped_column(Boolean, default=False)
    first_opened_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    first_clicked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ProfileScore(Base):
    """A computed trait of a customer from a model (threadline.analytics): 12-month CLV, expected
    purchases, churn risk, next-best products... One row per customer and score, replaced by each run;
    `details` says why (a churn score's main reasons, the recommended products). Readable by segments."""

    __tablename__ = "profile_scores"
    __table_args__ = (Index("ix_profile_scores_name_value", "name", "value"),)

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    computed_at: Mapped[datetime] = mapped_column(DateTime)
    model: Mapped[str] = mapped_column(String(60))  # which model and version wrote it


class EventSentiment(Base):
    """The sentiment of an event's free text (a message, a survey comment, a review), scored offline
    (threadline.analytics), kept beside the event so channels and customers can be compared."""

    __tablename__ = "event_sentiments"
    __table_args__ = (Index("ix_event_sentiments_profile", "profile_id"),)

    event_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10))  # en | zh
    score: Mapped[float] = mapped_column(Float)  # -1 (negative) .. 1 (positive)
    label: Mapped[str] = mapped_column(String(10))  # negative | neutral | positive
    scored_at: Mapped[datetime] = mapped_column(DateTime)


class MarketingSpend(Base):
    """What a channel or campaign cost on a day, imported from the ad platforms' exports: the
    denominator of CAC per channel (threadline.analytics)."""

    __tablename__ = "marketing_spend"
    __table_args__ = (UniqueConstraint("channel", "day", "campaign", name="uq_marketing_spend_day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    campaign: Mapped[str] = mapped_column(String(100), default="")
    day: Mapped[date] = mapped_column(Date)
    amount: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Conversation(Base):
    """A service conversation with a customer on one channel (threadline.service): the inbox's unit.

    Status open -> pending (waiting for the customer) -> resolved -> closed; a customer's new message
    reopens a resolved one. SLA due times are set from the matching policy when it opens; `sla_state`
    is kept by the worker (ok | warning | breached)."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_profile", "profile_id", "last_message_at"),
        Index("ix_conversations_queue", "status", "assignee_id", "last_message_at"),
        Index("ix_conversations_thread", "channel", "thread_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(20))  # email, chat, sms, whatsapp, wechat, social, phone
    subject: Mapped[str | None] = mapped_column(String(300), nullable=True)
    status: Mapped[str] = mapped_column(String(10))
    priority: Mapped[str] = mapped_column(String(10))  # low | normal | high | urgent
    assignee_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    team_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    language: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # What threads the channel's messages into this conversation: the root Message-ID of an email
    # thread, a chat session, a phone number for SMS.
    thread_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    last_message_at: Mapped[datetime] = mapped_column(DateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    sla_policy_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_response_due: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolution_due: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sla_state: Mapped[str] = mapped_column(String(10), default="ok")
    # The resolution clock pauses while the conversation is pending (threadline.service.sla_pause):
    # when the current pause began, and the business minutes paused so far, by which
    # `resolution_due` has already been moved.
    sla_paused_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    sla_paused_minutes: Mapped[int] = mapped_column(Integer, default=0)


class ConversationMessage(Base):
    """One message of a conversation: in from the customer, out from an agent, or an internal note."""

    __tablename__ = "conversation_messages"
    __table_args__ = (
        Index("ix_conversation_messages_conversation", "conversation_id", "created_at"),
        Index("ix_conversation_messages_header", "message_id_header"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    direction: Mapped[str] = mapped_column(String(5))  # in | out | note
    author_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sender: Mapped[str | None] = mapped_column(String(320), nullable=True)  # address or number as sent
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id_header: Mapped[str | None] = mapped_column(String(300), nullable=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(300), nullable=True)
    outbound_message_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Sent by Threadline itself (a survey in the chat), not an agent: not a reply in the metrics.
    automated: Mapped[bool] = mapped_column(Boolean, default=False)


class Attachment(Base):
    """A file that came with (or went with) a conversation message; kept in the database so that a
    backup, an export and an erasure see it like any other row."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), ForeignKey("conversation_messages.id"), index=True
    )
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(150))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SlaPolicy(Base):
    """First-response and resolution targets for conversations of a priority / tier / channel, counted
    in business hours (hours per weekday and holidays in `calendar`)."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # the first matching policy applies
    priority: Mapped[str | None] = mapped_column(String(10), nullable=True)  # None: any
    tier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(20), nullable=True)
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    warn_before_minutes: Mapped[int] = mapped_column(Integer, default=30)
    # {"timezone": "Asia/Shanghai", "hours": {"mon": ["09:00", "18:00"], ...}, "holidays": ["2026-10-01"]}
    calendar: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SurveyResponse(Base):
    """A CSAT (1-5), CES (1-7) or NPS (0-10) survey sent to a customer and, once answered, the answer."""

    __tablename__ = "survey_responses"
    __table_args__ = (Index("ix_survey_responses_profile", "profile_id", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(4))  # csat | ces | nps
    channel: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # the answer link's secret, hashed
    sent_at: Mapped[datetime] = mapped_column(DateTime)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class Segment(Base):
    """A named audience: a condition tree on traits, identities, channels, events, computed scores and
    consent (threadline.segments), compiled to SQL on both databases. Members are kept current."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SegmentMembership(Base):
    """A customer in a segment since `entered_at`; leaving deletes the row (and is an event)."""

    __tablename__ = "segment_memberships"
    __table_args__ = (Index("ix_segment_memberships_profile", "profile_id"),)

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(DateTime)


class LoyaltyEntry(Base):
    """One line of a customer's points ledger (threadline.loyalty): earned from an event, redeemed,
    expired or adjusted with a reason. Append-only; the balance is the sum."""

    __tablename__ = "loyalty_ledger"
    __table_args__ = (
        Index("ix_loyalty_ledger_profile", "profile_id", "created_at"),
        # An event earns once, however often the earning job runs.
        UniqueConstraint("event_id", "kind", name="uq_loyalty_ledger_event_kind"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    profile_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(10))  # earn | redeem | expire | adjust
    points: Mapped[int] = mapped_column(Integer)  # negative for redeem and expire
    reason: Mapped[str] = mapped_column(String(300))
    event_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), nullable=True
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class LoyaltyStatus(Base):
    """A customer's current balance and tier, kept beside the ledger so lists and segments read one row."""

    __tablename__ = "loyalty_status"

    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    points: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_points: Mapped[int] = mapped_column(Integer, default=0)
    spend: Mapped[float] = mapped_column(Float, default=0.0)
    tier: Mapped[str | None] = mapped_column(String(40), nullable=True)
    tier_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class FollowUp(Base):
    """A sales follow-up (跟进记录) on a lead, account, contact, deal or customer (threadline.sales).
    `profile_id` is the unified profile it concerns, so the customer's timeline and an erasure find it;
    the same follow-up is also an event on that timeline."""

    __tablename__ = "follow_ups"
    __table_args__ = (
        Index("ix_follow_ups_subject", "subject_type", "subject_id", "created_at"),
        Index("ix_follow_ups_profile", "profile_id"),
        Index("ix_follow_ups_owner_next", "owner_id", "next_contact_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(10))  # lead | account | contact | deal | profile
    subject_id: Mapped[str] = mapped_column(String(40))  # an integer id, or a profile's id
    profile_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    method: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(200), nullable=True)
    next_contact_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    related: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # {"contact_ids", "deal_ids"}


class Task(Base):
    """A piece of a rep's work with a due date, linked to any record (threadline.sales)."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"),
        Index("ix_tasks_related", "related_type", "related_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    priority: Mapped[str] = mapped_column(String(10))  # low | normal | high
    status: Mapped[str] = mapped_column(String(10))  # open | done | cancelled
    assignee_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    related_type: Mapped[str | None] = mapped_column(String(10), nullable=True)
    related_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    done_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    remind_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CalendarFeed(Base):
    """A user's iCalendar feed secret, hashed: calendar apps cannot sign in, so the URL is the
    credential. One per user; revoking deletes the row."""

    __tablename__ = "calendar_feeds"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


# -- sales: leads, accounts, contacts, deals (threadline.sales) ---------------------------------------------
# Email and phone are stored normalised the way threadline.identity matches them, so duplicates are found
# by equality and the record links to the person's unified profile (`profile_id`).


class Lead(Base):
    """Someone who might buy, not yet a customer; converted into an account, a contact and a deal."""

    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_owner_updated", "owner_id", "updated_at"),
        Index("ix_leads_profile", "profile_id"),
        Index("ix_leads_email", "email"),
        Index("ix_leads_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # new | contacted | qualified | unqualified | converted
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    profile_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    custom: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    converted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    converted_account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    converted_contact_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    converted_deal_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_follow_up_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    next_follow_up_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class SalesAccount(Base):
    """A customer the sales team manages: a company, or a person (then `profile_id` is that person).
    `in_pool_since` and `previous_owner_id` belong to the customer pool (公海)."""

    __tablename__ = "accounts"
    __table_args__ = (
        Index("ix_accounts_owner_updated", "owner_id", "updated_at"),
        Index("ix_accounts_profile", "profile_id"),
        Index("ix_accounts_name", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # company | person
    industry: Mapped[str | None] = mapped_column(String(100), nullable=True)
    region: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    level: Mapped[str | None] = mapped_column(String(20), nullable=True)  # e.g. A / B / C
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    profile_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    custom: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    last_follow_up_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    next_follow_up_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    in_pool_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    previous_owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Contact(Base):
    """A person at an account; a contact's data scope is its account's."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_account", "account_id"),
        Index("ix_contacts_profile", "profile_id"),
        Index("ix_contacts_email", "email"),
        Index("ix_contacts_phone", "phone"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(100), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    is_decision_maker: Mapped[bool] = mapped_column(Boolean, default=False)
    profile_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    custom: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Pipeline(Base):
    """A deal pipeline: its stages in order, each `{key, name, probability}` (win probability, 0-100)."""

    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class Deal(Base):
    """An opportunity with an account, moving through its pipeline's stages until won or lost."""

    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_owner_updated", "owner_id", "updated_at"),
        Index("ix_deals_account", "account_id"),
        Index("ix_deals_pipeline_stage", "pipeline_id", "stage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    expected_close: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(10))  # open | won | lost
    lost_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    products: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    custom: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class DealStageChange(Base):
    """One move of a deal between stages (the first row has no `from_stage`): the deal cycle's record."""

    __tablename__ = "deal_stage_history"
    __table_args__ = (Index("ix_deal_stage_history_deal", "deal_id", "changed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id"))
    from_stage: Mapped[str | None] = mapped_column(String(40), nullable=True)
    to_stage: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(DateTime)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CustomField(Base):
    """A field the workspace added to leads, accounts, contacts or deals; values live in `custom`."""

    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("entity", "key", name="uq_custom_fields_entity_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entity: Mapped[str] = mapped_column(String(10))  # lead | account | contact | deal
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100))
    # text | number | date | select | multi_select | user | boolean
    type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[str]] = mapped_column(JSONType, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    unique: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Journey(Base):
    """An automated journey: a trigger enrols customers, who then go through its steps (docs/journeys.md)."""

    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    template: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the ready-made one it came from
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONType)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    exit_goal: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    reentry: Mapped[str] = mapped_column(String(10))  # once | every
    reentry_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    purpose: Mapped[str] = mapped_column(String(20))  # the consent purpose of its messages
    status: Mapped[str] = mapped_column(String(10))  # draft | active | paused
    activated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # last schedule run
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class JourneyEnrollment(Base):
    """One customer's way through a journey; `entry_key` makes an entry once per the re-entry rule."""

    __tablename__ = "journey_enrollments"
    __table_args__ = (
        UniqueConstraint("journey_id", "profile_id", "entry_key", name="uq_journey_enrollments_entry"),
        Index("ix_journey_enrollments_due", "status", "next_run_at"),
        Index("ix_journey_enrollments_profile", "profile_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"))
    profile_id: Mapped[str] = mapped_column(String(32))
    entry_key: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10))  # active | completed | exited | failed
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)  # converted, timed_out, ...
    step_index: Mapped[int] = mapped_column(Integer)
    step_key: Mapped[str | None] = mapped_column(String(40), nullable=True)
    step_started_at: Mapped[datetime] = mapped_column(DateTime)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    entered_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class JourneyStepLog(Base):
    """A step an enrollment has done, written with the state change: its unique key makes it once."""

    __tablename__ = "journey_step_log"
    __table_args__ = (UniqueConstraint("enrollment_id", "step_key", name="uq_journey_step_log_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("journey_enrollments.id"))
    step_key: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(40))
    outbound_message_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime)


class ContactPlan(Base):
    """A planned round of contacts (接触计划) with an audience; its members and cards hold the customers."""

    __tablename__ = "contact_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    goal: Mapped[str] = mapped_column(Text)
    audience_type: Mapped[str] = mapped_column(String(10))  # list | segment
    segment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the segment it was drawn from
    channel: Mapped[str] = mapped_column(String(20))  # a follow-up method: phone, email, visit, ...
    method: Mapped[str | None] = mapped_column(String(200), nullable=True)  # how: script, offer, approach
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime] = mapped_column(DateTime)
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    incentive: Mapped[str | None] = mapped_column(String(500), nullable=True)
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    team_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lessons: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ContactPlanMember(Base):
    """A customer in a plan's audience, fixed when the plan is made, with the task it generated."""

    __tablename__ = "contact_plan_members"
    __table_args__ = (Index("ix_contact_plan_members_profile", "profile_id"),)

    plan_id: Mapped[int] = mapped_column(ForeignKey("contact_plans.id"), primary_key=True)
    profile_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ContactCard(Base):
    """One contact made under a plan and how it went."""

    __tablename__ = "contact_cards"
    __table_args__ = (
        Index("ix_contact_cards_plan", "plan_id", "contacted_at"),
        Index("ix_contact_cards_profile", "profile_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("contact_plans.id"))
    profile_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    contacted_at: Mapped[datetime] = mapped_column(DateTime)
    reached: Mapped[bool] = mapped_column(Boolean)
    effective: Mapped[bool] = mapped_column(Boolean)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)  # 1-5
    feedback: Mapped[str | None] = mapped_column(Text, nullable=True)


# --- sales admin (migration 0020): new sales models go below this line ---


class FollowUpFile(Base):
    """A file attached to a follow-up (a signed quote, a photo from a visit): kept in the database like a
    conversation's attachments, so a backup, an export and an erasure see it. `profile_id` is the
    follow-up's, so an erasure finds the file without the follow-up."""

    __tablename__ = "follow_up_files"
    __table_args__ = (Index("ix_follow_up_files_follow_up", "follow_up_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    follow_up_id: Mapped[int] = mapped_column(ForeignKey("follow_ups.id", ondelete="CASCADE"))
    profile_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    filename: Mapped[str] = mapped_column(String(300))
    content_type: Mapped[str] = mapped_column(String(150))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


# --- destinations (migration 0021): new destination models go below this line ---


class Destination(Base):
    """A webhook that receives events and segment changes (threadline.destinations). The signing
    secret is kept as it is, not hashed: every delivery is signed with it. It is shown once."""

    __tablename__ = "destinations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    enabled: Mapped[bool] = mapped_column(Boolean)
    # What it receives: {"events", "event_types", "segments", "segment_changes"} (destinations/catalog.py).
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType)
    signing_secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[int | None] = mapped_column(Integer, nullable=True)  # staff user, or NULL


class DestinationDelivery(Base):
    """One payload for one destination and its attempts: the delivery log. The payload is the
    customer's event, personal data, erased with the person."""

    __tablename__ = "destination_deliveries"
    __table_args__ = (
        Index("ix_destination_deliveries_destination", "destination_id", "status", "id"),
        Index("ix_destination_deliveries_profile", "profile_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True, autoincrement=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("destinations.id", ondelete="CASCADE"))
    profile_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # NULL: a test event
    kind: Mapped[str] = mapped_column(String(20))  # event | segment_entered | segment_left | test
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)  # event name or type, for the page
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(10))  # pending | sending | delivered | failed | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


# --- message tracking (migration 0022): new messaging models go below this line ---


# --- rollups (migration 0026): new analytics rollup models go below this line ---


class RollupProfile(Base):
    """A small number for each profile id events were first attached to (`original_profile_id`), so a
    day's customers fit in a compact array. Erasure clears `profile_id`: the number stays in the day
    arrays (aggregates stay) but no longer leads to anyone (threadline.analytics.rollups)."""

    __tablename__ = "rollup_profiles"
    # Readers load the merged-away numbers' map from this index alone.
    __table_args__ = (
        Index(
            "ix_rollup_profiles_moved",
            "number",
            "live_number",
            postgresql_where=text("live_number IS NOT NULL"),
            sqlite_where=text("live_number IS NOT NULL"),
        ),
    )

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    profile_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    # The number of the live customer this profile was merged into (chains followed) as of the worker's
    # last look at the merges (rollup_state.mapped_*); NULL while it is live itself.
    live_number: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RollupDay(Base):
    """One day's events on a channel from a source, counted by measure, with the customers who were
    active and who ordered as sorted arrays of RollupProfile numbers (little-endian uint32). Additive
    counts and unions of these arrays answer the dashboards over any range of days."""

    __tablename__ = "rollup_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    events: Mapped[int] = mapped_column(Integer, default=0)
    page_views: Mapped[int] = mapped_column(Integer, default=0)
    screen_views: Mapped[int] = mapped_column(Integer, default=0)
    app_opens: Mapped[int] = mapped_column(Integer, default=0)
    emails_sent: Mapped[int] = mapped_column(Integer, default=0)
    emails_opened: Mapped[int] = mapped_column(Integer, default=0)
    emails_clicked: Mapped[int] = mapped_column(Integer, default=0)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    revenue: Mapped[float] = mapped_column(Float, default=0.0)
    active: Mapped[bytes] = mapped_column(LargeBinary)
    buyers: Mapped[bytes] = mapped_column(LargeBinary)


class RollupEventTimes(Base):
    """One day's events of one name on a channel, one pair per event: who (RollupProfile numbers,
    little-endian uint32) and when (microseconds since 1970-01-01 UTC, little-endian int64), in the
    order read. Funnels over any sequence of event names follow customers through these exactly."""

    __tablename__ = "rollup_event_times"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    numbers: Mapped[bytes] = mapped_column(LargeBinary)
    times: Mapped[bytes] = mapped_column(LargeBinary)


class RollupFirstSeen(Base):
    """Live customers first seen on one day, per channel, as of the daily scores run (`as_of`; the rows
    cover the days before it): `acquired` on the channel (their first event's; "unknown" when it is gone)
    with the sum and count of their clv_12m scores, and `seen_on` the channel at all (profiles.channels).
    CAC and customer counts with a channel filter add these instead of reading every profile."""

    __tablename__ = "rollup_first_seen"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    acquired: Mapped[int] = mapped_column(Integer, default=0)
    clv_sum: Mapped[float] = mapped_column(Float, default=0.0)
    clv_customers: Mapped[int] = mapped_column(Integer, default=0)
    seen_on: Mapped[int] = mapped_column(Integer, default=0)
    as_of: Mapped[datetime] = mapped_column(DateTime)


class RollupSurvey(Base):
    """One day's survey answers on a channel from a source, per survey (csat, nps, ces): the sums that
    CSAT, NPS and CES are computed from (threadline.analytics.surveys)."""

    __tablename__ = "rollup_surveys"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survey: Mapped[str] = mapped_column(String(10), primary_key=True)
    responses: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[float] = mapped_column(Float, default=0.0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    promoters: Mapped[int] = mapped_column(Integer, default=0)
    detractors: Mapped[int] = mapped_column(Integer, default=0)


class PortraitSnapshot(Base):
    """One chart of the Insight portrait page for every customer, as the daily scores run found it
    (threadline.analytics.portrait_snapshots): what an admin's unfiltered page shows that day."""

    __tablename__ = "rollup_portraits"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)  # "" for every channel
    name: Mapped[str] = mapped_column(String(60), primary_key=True)  # the dataset's name
    columns: Mapped[list[str]] = mapped_column(JSONType)
    rows: Mapped[list[list[Any]]] = mapped_column(JSONType)
    as_of: Mapped[datetime] = mapped_column(DateTime)


class RollupState(Base):
    """How far the rollups have read the events table: every event with id <= `through_event_id` is in
    them. `seen_event_id` is the highest id seen at the last run; on PostgreSQL the next run reads up to
    it, so that a transaction still open at the last run (a lower id committed later) is not skipped."""

    __tablename__ = "rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    through_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    seen_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # The merges rollup_profiles.live_number reflects: profiles merged away then, the highest merge id.
    mapped_merges: Mapped[int] = mapped_column(Integer, default=0)
    mapped_merge_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


# --- SLA pause (migration 0024): new service models go below this line ---
