"""privacy: consent ledger, processing restrictions, data subject requests, suppression list, and an
append-only audit log enforced by triggers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:00:00
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from threadline.storage.append_only import create_guards, drop_guards

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "consent_records",
        sa.Column("id", BigID, autoincrement=True, nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("evidence", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_consent_records_profile", "consent_records", ["profile_id", "purpose", "channel", "recorded_at"]
    )
    op.create_table(
        "processing_restrictions",
        sa.Column("profile_id", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("set_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("profile_id"),
    )
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("regulation", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("profile_id", sa.String(length=32), nullable=True),
        sa.Column("requester", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=320), nullable=True),
        sa.Column("details", JSONType, nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("verified_at", sa.DateTime(), nullable=True),
        sa.Column("verified_by", sa.Integer(), nullable=True),
        sa.Column("verification", sa.String(length=40), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("completed_by", sa.Integer(), nullable=True),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_privacy_requests_status_due", "privacy_requests", ["status", "due_at"])
    op.create_index("ix_privacy_requests_profile_id", "privacy_requests", ["profile_id"])
    op.create_table(
        "privacy_request_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["privacy_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_privacy_request_log_request_id", "privacy_request_log", ["request_id"])
    op.create_table(
        "suppressions",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("digest"),
    )
    # The key of the suppression list's hashes when THREADLINE_PRIVACY_KEY is not set: made once per
    # database so that every process hashes alike (privacy/suppression.py).
    settings = sa.table(
        "workspace_settings",
        sa.column("key", sa.String),
        sa.column("value", JSONType),
        sa.column("updated_at", sa.DateTime),
        sa.column("updated_by", sa.Integer),
    )
    op.bulk_insert(
        settings,
        [
            {
                "key": "privacy.suppression_salt",
                "value": secrets.token_hex(32),
                "updated_at": datetime.now(UTC).replace(tzinfo=None),
                "updated_by": None,
            }
        ],
    )
    create_guards(op.get_bind())


def downgrade() -> None:
    drop_guards(op.get_bind())
    op.execute("DELETE FROM workspace_settings WHERE key = 'privacy.suppression_salt'")
    op.drop_table("suppressions")
    op.drop_index("ix_privacy_request_log_request_id", table_name="privacy_request_log")
    op.drop_table("privacy_request_log")
    op.drop_index("ix_privacy_requests_profile_id", table_name="privacy_requests")
    op.drop_index("ix_privacy_requests_status_due", table_name="privacy_requests")
    op.drop_table("privacy_requests")
    op.drop_table("processing_restrictions")
    op.drop_index("ix_consent_records_profile", table_name="consent_records")
    op.drop_table("consent_records")
