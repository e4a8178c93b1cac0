"""Conversations as their readers see them: frozen views, and their JSON (masked without pii)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from threadline.storage.models import Conversation


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: int
    profile_id: str
    customer_name: str | None
    channel: str
    subject: str | None
    status: str
    priority: str
    assignee_id: int | None
    assignee_name: str | None
    team_id: int | None
    tags: tuple[str, ...]
    language: str | None
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopened: int
    sla_state: str
    first_response_due: datetime | None
    resolution_due: datetime | None

    @classmethod
    def of(cls, row: Conversation, customer_name: str | None, assignee_name: str | None) -> ConversationView:
        return cls(
            row.id,
            row.profile_id,
            customer_name,
            row.channel,
            row.subject,
            row.status,
            row.priority,
            row.assignee_id,
            assignee_name,
            row.team_id,
            tuple(row.tags or ()),
            row.language,
            row.created_at,
            row.updated_at,
            row.last_message_at,
            row.first_response_at,
            row.resolved_at,
            row.closed_at,
            row.reopened,
            row.sla_state,
            row.first_response_due,
            row.resolution_due,
        )

    def as_dict(self, *, reveal: bool) -> dict[str, Any]:
        """Without the pii permission the subject and the customer's name are left out."""
        return {
            "id": self.id,
            "profile_id": self.profile_id,
            "customer_name": self.customer_name if reveal else None,
            "channel": self.channel,
            "subject": self.subject if reveal else None,
            "status": self.status,
            "priority": self.priority,
            "assignee_id": self.assignee_id,
            "team_id": self.team_id,
            "tags": list(self.tags),
            "language": self.language,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "last_message_at": _iso(self.last_message_at),
            "first_response_at": _iso(self.first_response_at),
            "resolved_at": _iso(self.resolved_at),
            "closed_at": _iso(self.closed_at),
            "reopened": self.reopened,
            "sla_state": self.sla_state,
            "first_response_due": _iso(self.first_response_due),
            "resolution_due": _iso(self.resolution_due),
        }


@dataclass(frozen=True, slots=True)
class AttachmentView:
    id: int
    filename: str
    content_type: str
    size: int
    kept: bool  # False: over THREADLINE_MAX_ATTACHMENT_BYTES, recorded by name and size only

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "kept": self.kept,
        }


@dataclass(frozen=True, slots=True)
class EntryView:
    """One message of a conversation: `in` from the customer, `out` from an agent, or a `note`."""

    id: int
    direction: str
    author_user_id: int | None
    author_name: str | None
    sender: str | None
    body_text: str
    body_html: str | None
    message_id_header: str | None
    in_reply_to: str | None
    created_at: datetime
    attachments: tuple[AttachmentView, ...]
    outbound_message_id: int | None = None
    delivery_status: str | None = None  # an agent's reply: queued, sent, failed, refused (messaging)
    delivery_reason: str | None = None
    automated: bool = False  # sent by Threadline itself (a survey in the chat), not an agent

    def as_dict(self, *, reveal: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "direction": self.direction,
            "automated": self.automated,
            "author_user_id": self.author_user_id,
            "sender": self.sender if reveal else None,
            "body_text": self.body_text if reveal else None,
            "body_html": self.body_html if reveal else None,
            "message_id_header": self.message_id_header,
            "in_reply_to": self.in_reply_to,
            "created_at": _iso(self.created_at),
            "attachments": [a.as_dict() for a in self.attachments] if reveal else [],
            "outbound_message_id": self.outbound_message_id,
            "delivery_status": self.delivery_status,
            "delivery_reason": self.delivery_reason,
        }


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    conversation: ConversationView
    entries: tuple[EntryView, ...]

    def as_dict(self, *, reveal: bool) -> dict[str, Any]:
        return {
            **self.conversation.as_dict(reveal=reveal),
            "messages": [e.as_dict(reveal=reveal) for e in self.entries],
        }


@dataclass(frozen=True, slots=True)
class Inbox:
    """A queue's page of conversations and how many each queue holds under the same filters."""

    conversations: tuple[ConversationView, ...]
    counts: dict[str, int]
