"""telegram_update: the webhook's durable inbox, shared by every worker

Revision ID: 0018_scaleout
Revises: 0017_bounces
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_scaleout"
down_revision = "0017_bounces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telegram_update",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("sender", sa.String(length=340), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_telegram_update_pending", "telegram_update", ["handled_at", "update_id"])
    op.create_index("ix_telegram_update_sender", "telegram_update", ["sender", "update_id"])


def downgrade() -> None:
    op.drop_index("ix_telegram_update_sender", table_name="telegram_update")
    op.drop_index("ix_telegram_update_pending", table_name="telegram_update")
    op.drop_table("telegram_update")
