"""index appointments by staff and end with every column busy time reads, so it never visits the table

Revision ID: 0019_busy
Revises: 0018_scaleout
"""
from alembic import op

revision = "0019_busy"
down_revision = "0018_scaleout"
branch_labels = None
depends_on = None

BUSY = ["staff_id", "end_at", "start_at", "status", "hold_expires_at"]


def upgrade() -> None:
    op.create_index("ix_appointment_busy", "appointment", BUSY)
    op.drop_index("ix_appointment_staff_end", table_name="appointment")  # the new index's first two columns


def downgrade() -> None:
    op.create_index("ix_appointment_staff_end", "appointment", ["staff_id", "end_at"])
    op.drop_index("ix_appointment_busy", table_name="appointment")
