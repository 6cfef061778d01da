"""Invoices: the per-year number counter, every invoice and credit note as issued, and buyers' billing addresses."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class InvoiceCounter(Base):
    """The last number used in a year. Taking a number is one `UPDATE … SET last = last + 1 … RETURNING`
    in the transaction that stores the invoice: a rollback gives the number back, so numbers have no gaps."""

    __tablename__ = "invoice_counter"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(Base):
    """An invoice or credit note exactly as issued: the seller and buyer as they were, the lines, the totals
    in cents (a credit note's are negative). Rows are never changed; a correction is a credit note."""

    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("year", "sequence"),
        CheckConstraint("kind IN ('invoice', 'credit_note')", name="invoice_kind"),
        CheckConstraint("gross_cents = net_cents + vat_cents", name="invoice_gross_is_net_plus_vat"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    corrects: Mapped[str | None] = mapped_column(ForeignKey("invoice.number"))  # BT-25, for a credit note
    issued_at: Mapped[datetime]
    issue_date: Mapped[date] = mapped_column(Date)  # in the business's time zone
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    buyer_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), index=True)
    buyer_name: Mapped[str] = mapped_column(String(200))
    buyer_address: Mapped[str] = mapped_column(Text)
    buyer_reference: Mapped[str | None] = mapped_column(String(100))  # BT-10, e.g. a public buyer's Leitweg-ID
    seller: Mapped[dict[str, Any]] = mapped_column(default=dict)  # name, address, tax_id, iban, bic
    lines: Mapped[list[Any]] = mapped_column(default=list)  # [{description, quantity, unit_cents, amount_cents, …}]
    currency: Mapped[str] = mapped_column(String(3))
    vat_percent: Mapped[str] = mapped_column(String(8))  # decimal text
    net_cents: Mapped[int] = mapped_column(BigInteger)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    gross_cents: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(64))  # what it bills, e.g. "seat_order:12"
    language: Mapped[str] = mapped_column(String(8))


class BillingAddress(Base):
    """The name and postal address a person wants on their invoices (`billing`)."""

    __tablename__ = "billing_address"
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
