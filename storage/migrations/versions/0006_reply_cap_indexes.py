"""index tickets by address and outbox rows by recipient, for the per-hour reply caps

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ticket_email", "ticket", ["email"])
    op.create_index("ix_outbox_recipient_created", "outbox", ["recipient", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_recipient_created", table_name="outbox")
    op.drop_index("ix_ticket_email", table_name="ticket")
