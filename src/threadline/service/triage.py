"""Changing a conversation: status, priority, assignee, team, tags. One call, one transaction; a field
left out is left alone.

Statuses: open -> pending (waiting for the customer) -> resolved -> closed. Resolving stamps
`resolved_at`, closing `closed_at`; moving a resolved or closed conversation back to open or pending
counts as reopened, as a customer's new message to a resolved one does (conversations.py). Pending
pauses the resolution clock and leaving pending resumes it, moving its due time (sla_pause.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import select

from threadline.accounts import Viewer
from threadline.errors import Invalid
from threadline.service.conversations import CLOSED, PRIORITIES, RESOLVED, STATUSES
from threadline.service.reads import get_conversation
from threadline.service.scope import ConversationNotFound, handled_conversation
from threadline.service.sla_pause import status_changed
from threadline.service.views import ConversationDetail
from threadline.storage import Database
from threadline.storage.models import Team, User


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final[Any] = _Unchanged()  # "leave it": None means "nobody" for the assignee and the team
MAX_TAGS = 20
MAX_TAG = 40


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise Invalid("tags: must be a list of words", details={"field": "tags"})
    tags: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item.strip()) > MAX_TAG:
            raise Invalid(f"tags: each tag is 1 to {MAX_TAG} characters", details={"field": "tags"})
        if item.strip() not in tags:
            tags.append(item.strip())
    if len(tags) > MAX_TAGS:
        raise Invalid(f"tags: at most {MAX_TAGS}", details={"field": "tags"})
    return tags


def change_conversation(
    db: Database,
    viewer: Viewer,
    conversation_id: int,
    *,
    status: str | None = None,
    priority: str | None = None,
    assignee_id: Any = UNCHANGED,
    team_id: Any = UNCHANGED,
    tags: Any = None,
    now: datetime,
) -> tuple[ConversationDetail | None, dict[str, Any]]:
    """Apply the changes; answers the conversation and what changed (`{"status": ["open",
    "resolved"]}`, ids and words only: fit for the audit log); the conversation is None when the
    change handed it out of the viewer's scope. Invalid names the field."""
    if status is not None and status not in STATUSES:
        raise Invalid(f"status: must be one of {', '.join(STATUSES)}", details={"field": "status"})
    if priority is not None and priority not in PRIORITIES:
        raise Invalid(f"priority: must be one of {', '.join(PRIORITIES)}", details={"field": "priority"})
    new_tags = None if tags is None else _tags(tags)
    changed: dict[str, Any] = {}
    with db.write() as session:
        conversation = handled_conversation(session, viewer, conversation_id)
        if assignee_id is not UNCHANGED and assignee_id != conversation.assignee_id:
            if assignee_id is not None:
                active = session.scalar(
                    select(User.is_active).where(User.id == assignee_id, User.role != "analyst")
                )
                if not active:
                    raise Invalid(
                        "assignee_id: not an active user who handles conversations",
                        details={"field": "assignee_id"},
                    )
            changed["assignee_id"] = [conversation.assignee_id, assignee_id]
            conversation.assignee_id = assignee_id
        if team_id is not UNCHANGED and team_id != conversation.team_id:
            if team_id is not None and session.get(Team, team_id) is None:
                raise Invalid("team_id: no such team", details={"field": "team_id"})
            changed["team_id"] = [conversation.team_id, team_id]
            conversation.team_id = team_id
        if priority is not None and priority != conversation.priority:
            changed["priority"] = [conversation.priority, priority]
            conversation.priority = priority
        if new_tags is not None and new_tags != list(conversation.tags or []):
            changed["tags"] = [list(conversation.tags or []), new_tags]
            conversation.tags = new_tags
        if status is not None and status != conversation.status:
            changed["status"] = [conversation.status, status]
            status_changed(session, conversation, conversation.status, status, now)
            if conversation.status in (RESOLVED, CLOSED) and status not in (RESOLVED, CLOSED):
                conversation.reopened += 1
                conversation.resolved_at = conversation.closed_at = None
            if status == RESOLVED:
                conversation.resolved_at = now
            if status == CLOSED:
                conversation.closed_at = now
                conversation.resolved_at = conversation.resolved_at or now
            conversation.status = status
        if changed:
            conversation.updated_at = now
    try:
        return get_conversation(db, viewer, conversation_id), changed
    except ConversationNotFound:  # handed to someone else: out of the viewer's scope now
        return None, changed
