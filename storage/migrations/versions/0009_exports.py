"""export presets: a person's saved list, file kind, fields and arguments, one per person and name

Revision ID: 0009_exports
Revises: 0008_groups
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_exports"
down_revision = "0009_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_preset",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("name_key", sa.String(length=160), nullable=False),
        sa.Column("list_name", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("args", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("person_id", "name_key", name="uq_export_preset_person_name"),
    )
    op.create_index("ix_export_preset_person_id", "export_preset", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_export_preset_person_id", table_name="export_preset")
    op.drop_table("export_preset")
