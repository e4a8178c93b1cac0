"""Who may see and handle a conversation: the one place the rule is written.

A conversation is visible to whoever may read its customer (`threadline.accounts.customer_filter`:
own / team / all, and customers shared with them), plus its assignee and the members of its team.
Assigning a conversation is how work is handed to someone who does not own the customer: a service
agent answering a salesperson's customer, a team queue. Handling (reply, note, status, assignment)
needs the edit permission and the conversation in the same rule with the customer's *write* filter,
so a customer shared read-only is readable, not answerable, unless the conversation was assigned.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session, aliased

from threadline.accounts import Viewer, customer_filter, customer_write_filter
from threadline.errors import Forbidden, NotFound
from threadline.storage.models import Conversation, Profile, User


class ConversationNotFound(NotFound):
    """Unknown, or outside the viewer's scope: the same answer, so a guessed id learns nothing."""


def viewer_teams(session: Session, viewer: Viewer) -> frozenset[int]:
    """The teams whose conversations the viewer works on: a manager's teams (with sub-teams), else the
    user's own team."""
    if viewer.team_ids:
        return viewer.team_ids
    if viewer.user_id is None:
        return frozenset()
    team = session.scalar(select(User.team_id).where(User.id == viewer.user_id))
    return frozenset() if team is None else frozenset({team})


def _rule(session: Session, viewer: Viewer, *, write: bool) -> ColumnElement[bool]:
    if viewer.scope == "all":
        return true()
    if viewer.user_id is None:
        return false()
    customer = aliased(Profile)
    survivor = aliased(Profile)
    allowed = customer_write_filter if write else customer_filter
    visible = select(survivor.id).where(allowed(viewer, survivor))
    # A conversation keeps the profile id it was opened under; after a merge that profile points at
    # its survivor, whose scope then decides (one hop, as delivery logs and consent read merges).
    family = select(customer.id).where(or_(customer.id.in_(visible), customer.merged_into.in_(visible)))
    conditions = [Conversation.profile_id.in_(family), Conversation.assignee_id == viewer.user_id]
    teams = viewer_teams(session, viewer)
    if teams:
        conditions.append(Conversation.team_id.in_(sorted(teams)))
    return or_(*conditions)


def conversation_filter(session: Session, viewer: Viewer) -> ColumnElement[bool]:
    """The conversations `viewer` may read, as a condition on `conversations`."""
    return _rule(session, viewer, write=False)


def visible_conversation(session: Session, viewer: Viewer, conversation_id: int) -> Conversation:
    found = session.scalar(
        select(Conversation).where(Conversation.id == conversation_id, conversation_filter(session, viewer))
    )
    if found is None:
        raise ConversationNotFound(
            f"conversation {conversation_id} does not exist", details={"field": "conversation_id"}
        )
    return found


def handled_conversation(session: Session, viewer: Viewer, conversation_id: int) -> Conversation:
    """The conversation, locked, for a change by `viewer`: ConversationNotFound outside the scope,
    Forbidden without the edit permission or when the customer is shared with them read-only."""
    visible_conversation(session, viewer, conversation_id)
    if not viewer.can("edit"):
        raise Forbidden("handling a conversation needs the edit permission")
    found = session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id, _rule(session, viewer, write=True))
        .with_for_update()
    )
    if found is None:
        raise Forbidden("this customer is shared with you read-only")
    return found
