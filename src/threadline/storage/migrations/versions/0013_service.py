"""service: conversations and their messages and attachments, SLA policies, survey responses

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("language", sa.String(length=10), nullable=True),
        sa.Column("thread_key", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_message_at", sa.DateTime(), nullable=False),
        sa.Column("first_response_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("reopened", sa.Integer(), nullable=False),
        sa.Column("sla_policy_id", sa.Integer(), nullable=True),
        sa.Column("first_response_due", sa.DateTime(), nullable=True),
        sa.Column("resolution_due", sa.DateTime(), nullable=True),
        sa.Column("sla_state", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_conversations_profile", "conversations", ["profile_id", "last_message_at"])
    op.create_index("ix_conversations_queue", "conversations", ["status", "assignee_id", "last_message_at"])
    op.create_index("ix_conversations_thread", "conversations", ["channel", "thread_key"])
    op.create_table(
        "conversation_messages",
        sa.Column("id", BigID, autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=5), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("message_id_header", sa.String(length=300), nullable=True),
        sa.Column("in_reply_to", sa.String(length=300), nullable=True),
        sa.Column("outbound_message_id", BigID, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_conversation_messages_conversation", "conversation_messages", ["conversation_id", "created_at"]
    )
    op.create_index("ix_conversation_messages_header", "conversation_messages", ["message_id_header"])
    op.create_table(
        "attachments",
        sa.Column("id", BigID, autoincrement=True, nullable=False),
        sa.Column("message_id", BigID, nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=False),
        sa.Column("content_type", sa.String(length=150), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["conversation_messages.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_attachments_message_id", "attachments", ["message_id"])
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("priority", sa.String(length=10), nullable=True),
        sa.Column("tier", sa.String(length=40), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column("warn_before_minutes", sa.Integer(), nullable=False),
        sa.Column("calendar", JSONType, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "survey_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_survey_responses_profile", "survey_responses", ["profile_id", "sent_at"])
    op.create_index("ix_survey_responses_conversation_id", "survey_responses", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_survey_responses_conversation_id", table_name="survey_responses")
    op.drop_index("ix_survey_responses_profile", table_name="survey_responses")
    op.drop_table("survey_responses")
    op.drop_table("sla_policies")
    op.drop_index("ix_attachments_message_id", table_name="attachments")
    op.drop_table("attachments")
    op.drop_index("ix_conversation_messages_header", table_name="conversation_messages")
    op.drop_index("ix_conversation_messages_conversation", table_name="conversation_messages")
    op.drop_table("conversation_messages")
    op.drop_index("ix_conversations_thread", table_name="conversations")
    op.drop_index("ix_conversations_queue", table_name="conversations")
    op.drop_index("ix_conversations_profile", table_name="conversations")
    op.drop_table("conversations")
