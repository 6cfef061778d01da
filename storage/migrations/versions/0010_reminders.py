"""reminders before appointments (per business), a daily agenda (per staff member), buttons on queued
chat messages

Revision ID: 0010_reminders
Revises: 0009_jobs
"""
import sqlalchemy as sa
from alembic import op

from storage.migrations.columns import drop_columns

revision = "0010_reminders"
down_revision = "0012_privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("business") as batch_op:
        batch_op.add_column(sa.Column("reminders", sa.JSON(), server_default='["24h"]', nullable=False))
    with op.batch_alter_table("staff") as batch_op:
        batch_op.add_column(sa.Column("agenda_minute", sa.Integer(), nullable=True))
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("choices", sa.JSON(), server_default="[]", nullable=False))


def downgrade() -> None:
    drop_columns("outbox", "choices")
    drop_columns("staff", "agenda_minute")
    drop_columns("business", "reminders")
