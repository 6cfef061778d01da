"""Why a school of a licence failed (its activation mail bounced).

Revision ID: 0017_bounces
Revises: 0011_licences
"""
import sqlalchemy as sa
from alembic import op

from storage.migrations.columns import drop_columns

revision = "0017_bounces"
down_revision = "0011_licences"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("licence_school") as batch:
        batch.add_column(sa.Column("failure_reason", sa.String(length=200), nullable=True))


def downgrade() -> None:
    drop_columns("licence_school", "failure_reason")
