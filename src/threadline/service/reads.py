"""Reading conversations: the inbox's queues with their counts, one conversation with its messages, a
customer's conversations, an attachment. Every read goes through scope.py's rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select, text, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from threadline.accounts import Viewer
from threadline.errors import Invalid
from threadline.profiles import resolve_profile_id
from threadline.service.conversations import OPEN, PENDING, PRIORITIES, SERVICE_CHANNELS, STATUSES
from threadline.service.scope import (
    ConversationNotFound,
    conversation_filter,
    viewer_teams,
    visible_conversation,
)
from threadline.service.views import AttachmentView, ConversationDetail, ConversationView, EntryView, Inbox
from threadline.storage import Database
from threadline.storage.models import (
    Attachment,
    Conversation,
    ConversationMessage,
    OutboundMessage,
    Profile,
    User,
)

QUEUES = ("unassigned", "mine", "team", "all")
SLA_STATES = ("ok", "warning", "breached")
ACTIVE = (OPEN, PENDING)  # what a queue shows unless a status is asked for
ANY_STATUS = "any"
MAX_LIMIT = 200


def _choice(value: str | None, field: str, choices: Iterable[str]) -> str | None:
    if value is None or value == "":
        return None
    options = tuple(choices)
    if value not in options:
        raise Invalid(f"{field}: must be one of {', '.join(options)}", details={"field": field})
    return value


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(Conversation.tags, JSONB).contains([tag])  # JSONB @>
    return text(
        "EXISTS (SELECT 1 FROM json_each(conversations.tags) WHERE json_each.value = :tag)"
    ).bindparams(tag=tag)  # type: ignore[return-value]


def _queue_conditions(viewer: Viewer, teams: frozenset[int]) -> dict[str, ColumnElement[bool]]:
    mine = Conversation.assignee_id == (viewer.user_id if viewer.user_id is not None else -1)
    team = Conversation.team_id.in_(sorted(teams)) if teams else Conversation.id.is_(None)
    return {
        "unassigned": Conversation.assignee_id.is_(None),
        "mine": mine,
        "team": team,
        "all": Conversation.id.is_not(None),
    }


def _views(session: Session, rows: list[Conversation]) -> list[ConversationView]:
    profile_ids = {r.profile_id for r in rows}
    user_ids = {r.assignee_id for r in rows if r.assignee_id is not None}
    names = dict(
        session.execute(select(Profile.id, Profile.display_name).where(Profile.id.in_(profile_ids))).all()
    )
    users = {
        uid: name or email
        for uid, name, email in session.execute(
            select(User.id, User.name, User.email).where(User.id.in_(user_ids))
        ).all()
    }
    return [ConversationView.of(r, names.get(r.profile_id), users.get(r.assignee_id or 0)) for r in rows]


def list_conversations(
    db: Database,
    viewer: Viewer,
    *,
    queue: str = "all",
    channel: str | None = None,
    status: str | None = None,
    priority: str | None = None,
    tag: str | None = None,
    sla_state: str | None = None,
    limit: int = 50,
) -> Inbox:
    """A queue (unassigned, mine, team, all), newest activity first, within the viewer's scope; open
    and pending conversations unless `status` names one (or "any"). Counts per queue apply the same
    filters, so the tabs say what each would show."""
    queue = _choice(queue, "queue", QUEUES) or "all"
    channel = _choice(channel, "channel", SERVICE_CHANNELS)
    status = _choice(status, "status", (*STATUSES, ANY_STATUS))
    priority = _choice(priority, "priority", PRIORITIES)
    sla_state = _choice(sla_state, "sla_state", SLA_STATES)
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit: must be between 1 and {MAX_LIMIT}", details={"field": "limit"})
    with db.read() as session:
        where: list[ColumnElement[bool]] = [conversation_filter(session, viewer)]
        if status is None:
            where.append(Conversation.status.in_(ACTIVE))
        elif status != ANY_STATUS:
            where.append(Conversation.status == status)
        if channel:
            where.append(Conversation.channel == channel)
        if priority:
            where.append(Conversation.priority == priority)
        if sla_state:
            where.append(Conversation.sla_state == sla_state)
        if tag:
            where.append(_has_tag(session, tag.strip()))
        queues = _queue_conditions(viewer, viewer_teams(session, viewer))
        counted = session.execute(
            select(*(func.sum(case((c, 1), else_=0)) for c in queues.values())).where(and_(*where))
        ).one()
        counts = {name: int(n or 0) for name, n in zip(queues, counted, strict=True)}
        rows = list(
            session.scalars(
                select(Conversation)
                .where(and_(*where), queues[queue])
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .limit(limit)
            )
        )
        return Inbox(tuple(_views(session, rows)), counts)


def _entries(session: Session, conversation_id: int) -> list[EntryView]:
    rows = list(
        session.execute(
            select(ConversationMessage, OutboundMessage.status, OutboundMessage.reason)
            .outerjoin(OutboundMessage, OutboundMessage.id == ConversationMessage.outbound_message_id)
            .where(ConversationMessage.conversation_id == conversation_id)
            .order_by(ConversationMessage.created_at, ConversationMessage.id)
        ).all()
    )
    ids = [m.id for m, _, _ in rows]
    files: dict[int, list[AttachmentView]] = {}
    for a_id, message_id, filename, content_type, size, stored in session.execute(
        select(
            Attachment.id,
            Attachment.message_id,
            Attachment.filename,
            Attachment.content_type,
            Attachment.size,
            func.length(Attachment.data),
        )
        .where(Attachment.message_id.in_(ids))
        .order_by(Attachment.id)
    ).all():
        kept = size == 0 or int(stored or 0) > 0
        files.setdefault(message_id, []).append(AttachmentView(a_id, filename, content_type, size, kept))
    authors = {m.author_user_id for m, _, _ in rows if m.author_user_id is not None}
    names = {
        uid: name or email
        for uid, name, email in session.execute(
            select(User.id, User.name, User.email).where(User.id.in_(authors))
        ).all()
    }
    return [
        EntryView(
            m.id,
            m.direction,
            m.author_user_id,
            names.get(m.author_user_id or 0),
            m.sender,
            m.body_text,
            m.body_html,
            m.message_id_header,
            m.in_reply_to,
            m.created_at,
            tuple(files.get(m.id, ())),
            m.outbound_message_id,
            status,
            reason,
            bool(m.automated),
        )
        for m, status, reason in rows
    ]


def get_conversation(db: Database, viewer: Viewer, conversation_id: int) -> ConversationDetail:
    """The conversation with every message, oldest first; ConversationNotFound outside the scope."""
    with db.read() as session:
        row = visible_conversation(session, viewer, conversation_id)
        return ConversationDetail(_views(session, [row])[0], tuple(_entries(session, row.id)))


def customer_conversations(
    db: Database, viewer: Viewer, profile_id: str, *, limit: int = 20
) -> tuple[str, list[ConversationView]]:
    """A customer's conversations (also those opened under a profile since merged into theirs),
    newest activity first; ProfileNotFound outside the viewer's scope. Whoever may read the customer
    may read their conversations (scope.py)."""
    with db.read() as session:
        live = resolve_profile_id(session, profile_id, viewer)
        family = [live, *session.scalars(select(Profile.id).where(Profile.merged_into == live))]
        rows = list(
            session.scalars(
                select(Conversation)
                .where(Conversation.profile_id.in_(family))
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .limit(min(max(limit, 1), MAX_LIMIT))
            )
        )
        return live, _views(session, rows)


def read_attachment(db: Database, viewer: Viewer, attachment_id: int) -> tuple[AttachmentView, bytes, int]:
    """An attachment's content and its conversation's id, for a download; ConversationNotFound when
    its conversation is outside the scope (or it does not exist)."""
    with db.read() as session:
        found: Any = session.execute(
            select(Attachment, ConversationMessage.conversation_id)
            .join(ConversationMessage, ConversationMessage.id == Attachment.message_id)
            .where(Attachment.id == attachment_id)
        ).first()
        if found is None:
            raise ConversationNotFound(f"attachment {attachment_id} does not exist")
        attachment, conversation_id = found
        visible_conversation(session, viewer, conversation_id)
        data = bytes(attachment.data)
        view = AttachmentView(
            attachment.id, attachment.filename, attachment.content_type, attachment.size, bool(data)
        )
        return view, data, conversation_id
