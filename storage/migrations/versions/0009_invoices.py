"""invoices: the per-year number counter, invoices and credit notes, billing addresses, the seller's invoice data

Revision ID: 0009_invoices
Revises: 0008_groups
"""
import sqlalchemy as sa
from alembic import op

from storage.migrations.columns import drop_columns

revision = "0009_invoices"
down_revision = "0010_reminders"
branch_labels = None
depends_on = None

SELLER_COLUMNS = (("address", sa.Text()), ("tax_id", sa.String(32)), ("vat_percent", sa.String(8)),
                  ("iban", sa.String(34)), ("bic", sa.String(11)))


def upgrade() -> None:
    with op.batch_alter_table("business") as batch_op:
        for name, kind in SELLER_COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))
    counter = op.create_table(
        "invoice_counter",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "invoice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("corrects", sa.String(32), nullable=True),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("buyer_person_id", sa.Integer(), nullable=True),
        sa.Column("buyer_name", sa.String(200), nullable=False),
        sa.Column("buyer_address", sa.Text(), nullable=False),
        sa.Column("buyer_reference", sa.String(100), nullable=True),
        sa.Column("seller", sa.JSON(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("vat_percent", sa.String(8), nullable=False),
        sa.Column("net_cents", sa.BigInteger(), nullable=False),
        sa.Column("vat_cents", sa.BigInteger(), nullable=False),
        sa.Column("gross_cents", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.CheckConstraint("kind IN ('invoice', 'credit_note')", name="invoice_kind"),
        sa.CheckConstraint("gross_cents = net_cents + vat_cents", name="invoice_gross_is_net_plus_vat"),
        sa.ForeignKeyConstraint(["buyer_person_id"], ["person.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["corrects"], ["invoice.number"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("year", "sequence"),
    )
    op.create_index("ix_invoice_buyer_person_id", "invoice", ["buyer_person_id"])
    op.create_table(
        "billing_address",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id"),
    )
    # Seat orders numbered their invoices themselves so far (R-YYYY-NNNNNN): the counter goes on from there.
    last: dict[int, int] = {}
    for (number,) in op.get_bind().execute(sa.text(
            "SELECT invoice_number FROM seat_order WHERE invoice_number IS NOT NULL")).all():
        _, year, sequence = number.split("-")
        last[int(year)] = max(last.get(int(year), 0), int(sequence))
    if last:
        op.bulk_insert(counter, [{"year": year, "last": n} for year, n in sorted(last.items())])


def downgrade() -> None:
    op.drop_table("billing_address")
    op.drop_index("ix_invoice_buyer_person_id", table_name="invoice")
    op.drop_table("invoice")
    op.drop_table("invoice_counter")
    drop_columns("business", *(name for name, _ in reversed(SELLER_COLUMNS)))
