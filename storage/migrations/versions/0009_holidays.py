"""public holidays: a holiday code for the business and, overriding it, for a location

Revision ID: 0009_holidays
Revises: 0008_groups
"""
import sqlalchemy as sa
from alembic import op

from storage.migrations.columns import drop_columns

revision = "0009_holidays"
down_revision = "0009_exports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("business", "location"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("holidays", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("location", "business"):
        drop_columns(table, "holidays")
