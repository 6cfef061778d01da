"""an emailed member list is kept unread until the code of its round trip comes back

Revision ID: 0008_files
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_files"
down_revision = "0008_ics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_batch") as batch:
        batch.add_column(sa.Column("upload", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_batch") as batch:
        batch.drop_column("upload")
