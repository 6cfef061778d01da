"""school licences: products, the school directory, carriers' buyers, licences and their schools, list dry runs

Revision ID: 0011_licences
Revises: 0010_courses
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_licences"
down_revision = "0013_bookpage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "product",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("price_per_school", sa.String(length=32), nullable=False),
        sa.Column("single_price", sa.String(length=32), nullable=True),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("renewal_notice_days", sa.Integer(), nullable=False),
        sa.Column("invoice_after_days", sa.Integer(), nullable=False),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "school",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("carrier", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("single_product", sa.String(length=200), nullable=True),
        sa.Column("single_until", sa.Date(), nullable=True),
        sa.Column("single_paid_cents", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("number"),
    )
    op.create_index("ix_school_carrier", "school", ["carrier"])
    op.create_table(
        "carrier_buyer",
        sa.Column("carrier", sa.String(length=200), primary_key=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_carrier_buyer_person_id", "carrier_buyer", ["person_id"])
    op.create_table(
        "licence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("product_id", sa.Integer(), sa.ForeignKey("product.id"), nullable=False),
        sa.Column("carrier", sa.String(length=200), nullable=False),
        sa.Column("buyer_person_id", sa.Integer(), sa.ForeignKey("person.id", ondelete="SET NULL"), nullable=True),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("term", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("carrier", "product_id", "live", name="uq_licence_live"),
    )
    op.create_index("ix_licence_buyer_person_id", "licence", ["buyer_person_id"])
    op.create_table(
        "licence_school",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("licence_id", sa.Integer(), sa.ForeignKey("licence.id", ondelete="CASCADE"), nullable=False),
        sa.Column("school_id", sa.Integer(), sa.ForeignKey("school.id"), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("invitation_expires_at", sa.DateTime(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
        sa.Column("credit_cents", sa.Integer(), nullable=False),
        sa.UniqueConstraint("licence_id", "school_id", name="uq_licence_school"),
    )
    op.create_index("ix_licence_school_school_id", "licence_school", ["school_id"])
    op.create_index("ix_licence_school_email", "licence_school", ["email"])
    op.create_table(
        "licence_batch",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("product", sa.String(length=120), nullable=True),
        sa.Column("uploaded_by", sa.String(length=340), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_licence_batch_uploaded_by", "licence_batch", ["uploaded_by"])


def downgrade() -> None:
    for name in ("licence_batch", "licence_school", "licence", "carrier_buyer", "school", "product"):
        op.drop_table(name)
