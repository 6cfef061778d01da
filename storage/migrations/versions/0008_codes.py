"""wrong tries from elsewhere counted apart; one pending profile change per field; email addresses in lower case

Revision ID: 0008_codes
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_codes"
down_revision = "0008_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("code") as batch:
        batch.add_column(sa.Column("other_attempts", sa.Integer(), nullable=False, server_default="0"))
    # Earlier races could leave two pending changes of one field: the newest stays pending.
    op.execute(
        "UPDATE profile_change SET status = 'superseded' WHERE status = 'pending' AND EXISTS ("
        "SELECT 1 FROM profile_change AS newer WHERE newer.person_id = profile_change.person_id"
        " AND newer.field = profile_change.field AND newer.status = 'pending' AND newer.id > profile_change.id)")
    op.create_index("ux_profile_change_pending", "profile_change", ["person_id", "field"], unique=True,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    # One spelling per mailbox: lower case, unless that spelling is taken already (then it stays as it was).
    op.execute(
        "UPDATE address SET address = lower(address) WHERE kind = 'email' AND address <> lower(address)"
        " AND NOT EXISTS (SELECT 1 FROM address AS other WHERE other.address = lower(address.address))")
    op.execute("UPDATE ticket SET email = lower(email) WHERE email <> lower(email)")


def downgrade() -> None:
    op.drop_index("ux_profile_change_pending", table_name="profile_change")
    with op.batch_alter_table("code") as batch:
        batch.drop_column("other_attempts")
