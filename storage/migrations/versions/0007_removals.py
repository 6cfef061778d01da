"""chat messages that must go away at a time, kept across restarts

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "removal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("remove_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_removal_remove_at", "removal", ["remove_at"])


def downgrade() -> None:
    op.drop_index("ix_removal_remove_at", table_name="removal")
    op.drop_table("removal")
