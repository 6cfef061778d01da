"""index appointments by staff and end, for busy-time lookups

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_appointment_staff_end", "appointment", ["staff_id", "end_at"])


def downgrade() -> None:
    op.drop_index("ix_appointment_staff_end", table_name="appointment")
