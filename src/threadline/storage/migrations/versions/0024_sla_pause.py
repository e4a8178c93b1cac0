"""service: SLA clocks paused while a conversation waits on the customer

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("sla_paused_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("sla_paused_minutes", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("conversation_messages") as batch:
        batch.add_column(sa.Column("automated", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Conversations pending now pause from their last change: the closest time we have to when they
    # were set pending (a later priority or tag change only shortens the pause they get).
    op.execute("UPDATE conversations SET sla_paused_at = updated_at WHERE status = 'pending'")


def downgrade() -> None:
    with op.batch_alter_table("conversation_messages") as batch:
        batch.drop_column("automated")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("sla_paused_minutes")
        batch.drop_column("sla_paused_at")
