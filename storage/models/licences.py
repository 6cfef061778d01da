"""School licences: products, the school directory, carriers' buyers, licences with their schools, and the
dry runs of uploaded lists waiting for `confirm`."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


class Product(Base):
    """A licence product of the setup file ([[products]]); money as decimal text."""

    __tablename__ = "product"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    price_per_school: Mapped[str] = mapped_column(String(32))
    single_price: Mapped[str | None] = mapped_column(String(32))
    term_months: Mapped[int] = mapped_column(Integer)
    renewal_notice_days: Mapped[int] = mapped_column(Integer)
    invoice_after_days: Mapped[int] = mapped_column(Integer)


class School(Base):
    """A school of the directory, with the single licence it may hold already."""

    __tablename__ = "school"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(200), unique=True)  # Schulnummer
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(200))
    carrier: Mapped[str] = mapped_column(String(200), index=True)
    email: Mapped[str] = mapped_column(String(320))
    single_product: Mapped[str | None] = mapped_column(String(200))
    single_until: Mapped[date | None]
    single_paid_cents: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class CarrierBuyer(Base):
    """Who buys a carrier's licences: the first order's person (the primary key settles a race)."""

    __tablename__ = "carrier_buyer"
    carrier: Mapped[str] = mapped_column(String(200), primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime]


class Licence(Base):
    """A carrier's licence of a product. `live` is true until it ended and NULL after: one live licence per
    carrier and product (NULLs never clash in a unique constraint, on SQLite or PostgreSQL)."""

    __tablename__ = "licence"
    __table_args__ = (UniqueConstraint("carrier", "product_id", "live", name="uq_licence_live"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"))
    carrier: Mapped[str] = mapped_column(String(200))
    buyer_person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"), index=True)
    price_cents: Mapped[int] = mapped_column(Integer)  # per school and term
    starts_on: Mapped[date]
    ends_on: Mapped[date]  # end of the current term (exclusive): renewal or end
    term: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | cancelled | ended
    live: Mapped[bool | None] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]


class LicenceSchool(Base):
    """A school under a licence: its contact and its activation."""

    __tablename__ = "licence_school"
    __table_args__ = (UniqueConstraint("licence_id", "school_id", name="uq_licence_school"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("licence.id", ondelete="CASCADE"))
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    contact: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | activated | failed
    failure_reason: Mapped[str | None] = mapped_column(String(200))  # e.g. its activation mail bounced
    invitation_expires_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    credit_cents: Mapped[int] = mapped_column(Integer, default=0)


class LicenceBatch(Base):
    """A checked directory or registration list waiting for `confirm` (kind: schools | licence)."""

    __tablename__ = "licence_batch"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    product: Mapped[str | None] = mapped_column(String(120))
    uploaded_by: Mapped[str] = mapped_column(String(340), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    rows: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="dry_run")  # dry_run | done | discarded
    created_at: Mapped[datetime]
