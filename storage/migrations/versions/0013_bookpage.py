"""booking page: the page's look in the business row, and the seats that cap a page's open holds

Revision ID: 0013_bookpage
Revises: 0012_privacy
"""
import sqlalchemy as sa
from alembic import op

from storage.migrations.columns import drop_columns

revision = "0013_bookpage"
down_revision = "0010_courses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("business") as batch:
        batch.add_column(sa.Column("widget_accent", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("widget_font", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("widget_css", sa.Text(), nullable=True))
    op.create_table(
        "hold_seat",
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointment.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("holder", "seat"),
    )
    with op.batch_alter_table("hold_seat") as batch:
        batch.create_index(batch.f("ix_hold_seat_appointment_id"), ["appointment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hold_seat") as batch:
        batch.drop_index(batch.f("ix_hold_seat_appointment_id"))
    op.drop_table("hold_seat")
    drop_columns("business", "widget_css", "widget_font", "widget_accent")
