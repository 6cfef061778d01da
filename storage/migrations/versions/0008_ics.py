"""a random id of this installation, for calendar invitations that outlive a new sender address

Revision ID: 0008_ics
Revises: 0007
"""
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008_ics"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("first_appointment", sa.Integer(), nullable=False),
    )
    # Invitations already sent named their event after the mail domain: those appointments keep that name,
    # so the events in customers' calendars still update; every later appointment uses the random id.
    first = op.get_bind().execute(sa.text("SELECT COALESCE(MAX(id), 0) + 1 FROM appointment")).scalar_one()
    op.bulk_insert(table, [{"id": 1, "key": secrets.token_hex(16), "first_appointment": first}])


def downgrade() -> None:
    op.drop_table("installation")
