"""Messages of a contact plan: a plan on the email, SMS or WeChat channel can send its content to its
audience, instead of (or besides) the reps' tasks.

Each message goes through `threadline.messaging.send_message` as marketing (a plan is outreach), so the
customer's consent decides, quiet hours and caps apply, and the delivery lands on their timeline. The
message's origin names the plan (`contact-plan:<id>`), which makes sending idempotent (a customer who has
a message of the plan gets no second one, so "send" can be pressed again after new members or a refusal
was fixed) and lets the plan count its messages by status. Only within the plan's time window, and only
to the customers the sender may write to.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from threadline.accounts import Viewer
from threadline.config import Settings
from threadline.errors import Forbidden, Invalid
from threadline.messaging import send_message
from threadline.profiles import ProfileNotFound
from threadline.sales.contact_plans import get_plan
from threadline.storage import Database
from threadline.storage.models import OutboundMessage

# A plan's channel -> the messaging channel that carries it; the others are contacts people make.
MESSAGE_CHANNELS = {"email": "email", "sms": "sms", "wechat": "wechat"}


def plan_origin(plan_id: int) -> str:
    return f"contact-plan:{plan_id}"


def send_plan_messages(
    db: Database, settings: Settings, viewer: Viewer, plan_id: int, *, now: datetime
) -> dict[str, int]:
    """Ask for one message per audience member who has none from this plan yet; answers counts:
    queued, refused (consent, suppression, caps: the delivery log says why), already_sent,
    no_address (no email address or phone number for the channel) and not_in_your_scope."""
    if not viewer.can("edit"):
        raise Forbidden("your role may not send messages")
    plan = get_plan(db, viewer, plan_id)
    channel = MESSAGE_CHANNELS.get(plan.channel)
    if channel is None:
        raise Invalid(
            f"channel: a {plan.channel} plan is carried out by people (its tasks); only "
            f"{', '.join(MESSAGE_CHANNELS)} plans send messages",
            details={"field": "channel"},
        )
    if not (plan.content or "").strip():
        raise Invalid("content: the plan has no content to send", details={"field": "content"})
    if not plan.starts_at <= now <= plan.ends_at:
        raise Invalid(
            "starts_at: messages go out within the plan's time window", details={"field": "starts_at"}
        )
    origin = plan_origin(plan_id)
    with db.read() as session:
        already = set(
            session.scalars(select(OutboundMessage.profile_id).where(OutboundMessage.origin == origin))
        )
    counts = {"queued": 0, "refused": 0, "already_sent": 0, "no_address": 0, "not_in_your_scope": 0}
    for member in plan.members:
        profile_id = str(member["profile_id"])
        if profile_id in already:
            counts["already_sent"] += 1
            continue
        try:
            message = send_message(
                db,
                settings,
                viewer,
                profile_id,
                purpose="marketing",
                subject=plan.name,
                body_text=str(plan.content),
                channel=channel,
                origin=origin,
                created_by=viewer.user_id,
                now=now,
            )
        except (ProfileNotFound, Forbidden):  # out of the sender's scope, or shared with them read-only
            counts["not_in_your_scope"] += 1
            continue
        except Invalid as problem:
            if (problem.details or {}).get("field") != "channel":
                raise  # the plan's content is no valid template: the same for everyone, so stop
            counts["no_address"] += 1
            continue
        counts["refused" if message.status == "refused" else "queued"] += 1
    return counts


def plan_message_counts(db: Database, plan_id: int) -> dict[str, int]:
    """The plan's messages by status (queued, sent, failed, refused...)."""
    with db.read() as session:
        rows = session.execute(
            select(OutboundMessage.status, func.count())
            .where(OutboundMessage.origin == plan_origin(plan_id))
            .group_by(OutboundMessage.status)
        ).all()
    return {str(status): int(n) for status, n in rows}
