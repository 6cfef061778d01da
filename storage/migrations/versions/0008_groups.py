"""group names unique regardless of case (a normalised key), seat orders waiting for approval, the approval limit

Revision ID: 0008_groups
Revises: 0007
"""
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0008_groups"
down_revision = "0008_codes"
branch_labels = None
depends_on = None


def key(name: str) -> str:
    """As storage.models.name_key at the time of writing (a migration does not follow later code)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def fill_keys(table: str, merge: bool) -> None:
    """Give every row its key; names that clash by case are merged (customer groups) or renamed (seat groups)."""
    bind = op.get_bind()
    seen: dict[str, int] = {}
    for row_id, name in bind.execute(sa.text(f"SELECT id, name FROM {table} ORDER BY id")).all():
        value = key(name)
        if value in seen and merge:
            first = seen[value]
            bind.execute(sa.text(
                "INSERT INTO customer_group_member (group_id, person_id) SELECT :first, person_id "
                "FROM customer_group_member m WHERE group_id = :dup AND NOT EXISTS (SELECT 1 FROM "
                "customer_group_member o WHERE o.group_id = :first AND o.person_id = m.person_id)"),
                {"first": first, "dup": row_id})
            bind.execute(sa.text("DELETE FROM customer_group_member WHERE group_id = :dup"), {"dup": row_id})
            bind.execute(sa.text(f"DELETE FROM {table} WHERE id = :dup"), {"dup": row_id})
            continue
        if value in seen:
            name = f"{name[:100]} (#{row_id})"
            value = key(name)
            bind.execute(sa.text(f"UPDATE {table} SET name = :name WHERE id = :id"), {"name": name, "id": row_id})
        seen[value] = row_id
        bind.execute(sa.text(f"UPDATE {table} SET name_key = :key WHERE id = :id"), {"key": value, "id": row_id})


def upgrade() -> None:
    for table in ("customer_group", "seat_group"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("name_key", sa.String(length=480), nullable=True))
        fill_keys(table, merge=table == "customer_group")
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("name_key", existing_type=sa.String(length=480), nullable=False)
            batch_op.create_index(f"ix_{table}_name_key", ["name_key"], unique=True)
    with op.batch_alter_table("business") as batch_op:
        batch_op.add_column(sa.Column("max_seats_without_approval", sa.Integer(), server_default="20",
                                      nullable=False))
    with op.batch_alter_table("seat_order") as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="approved", nullable=False))
        batch_op.add_column(sa.Column("decided_by", sa.String(length=340), nullable=True))
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(), nullable=True))
        batch_op.alter_column("invoice_number", existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM seat_order WHERE invoice_number IS NULL")
    with op.batch_alter_table("seat_order") as batch_op:
        batch_op.alter_column("invoice_number", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_column("decided_at")
        batch_op.drop_column("decided_by")
        batch_op.drop_column("status")
    with op.batch_alter_table("business") as batch_op:
        batch_op.drop_column("max_seats_without_approval")
    for table in ("seat_group", "customer_group"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(f"ix_{table}_name_key")
            batch_op.drop_column("name_key")
