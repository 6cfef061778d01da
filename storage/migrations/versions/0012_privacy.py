"""privacy: how long raw mails and closed tickets are kept, and when a person was erased

Revision ID: 0012_privacy
Revises: 0009_jobs
"""
import sqlalchemy as sa
from alembic import op

from storage.migrations.columns import drop_columns

revision = "0012_privacy"
down_revision = "0009_holidays"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("business", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.add_column("person", sa.Column("erased_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    drop_columns("person", "erased_at")
    drop_columns("business", "retention_days")
