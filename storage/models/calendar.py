"""The business and its calendar: locations, opening hours, services, appointments, slot claims, closures."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import Base


class Business(Base):
    """The one business this installation serves (row id 1)."""

    __tablename__ = "business"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    booking_mode: Mapped[str] = mapped_column(String(16), default="direct")
    slot_minutes: Mapped[int] = mapped_column(Integer, default=15)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=60)
    max_days_ahead: Mapped[int] = mapped_column(Integer, default=60)
    support_email: Mapped[str | None] = mapped_column(String(320))
    # A seat order above this waits for an admin's approval (setup file: [business] max_seats_without_approval).
    max_seats_without_approval: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    # Public holidays as the `holidays` package names them ("AT-4", "DE-BY"); None: none are closed.
    holidays: Mapped[str | None] = mapped_column(String(64))
    # Raw mails and closed tickets older than this many days are deleted by a daily job (None: kept).
    retention_days: Mapped[int | None] = mapped_column(Integer)
    # Reminders before each confirmed appointment, as the setup file writes them ("24h", "90m").
    reminders: Mapped[list[Any]] = mapped_column(default=lambda: ["24h"], server_default='["24h"]')
    # What an invoice must show of the seller (setup file); an invoice is refused while one is missing.
    address: Mapped[str | None] = mapped_column(Text)
    tax_id: Mapped[str | None] = mapped_column(String(32))
    vat_percent: Mapped[str | None] = mapped_column(String(8))  # decimal text, 0 … 100
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    # The booking page's look: an accent colour (#rrggbb), a CSS font-family and the text of a small CSS file.
    widget_accent: Mapped[str | None] = mapped_column(String(7))
    widget_font: Mapped[str | None] = mapped_column(String(200))
    widget_css: Mapped[str | None] = mapped_column(Text)


class Installation(Base):
    """This installation's own random id (row id 1), made once by a migration: calendar invitations are
    named after it, not after FRONTDESK_MAIL_FROM, so a new sender address still updates the same events."""

    __tablename__ = "installation"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    # Appointments older than this id were invited under the mail domain before; they keep that name.
    first_appointment: Mapped[int] = mapped_column(Integer)


class Location(Base):
    __tablename__ = "location"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    holidays: Mapped[str | None] = mapped_column(String(64))  # overrides Business.holidays here
    hours: Mapped[list["OpeningHours"]] = relationship(lazy="raise", cascade="all, delete-orphan")


class OpeningHours(Base):
    """One opening interval of a location on a weekday (0 = Monday), in local minutes."""

    __tablename__ = "opening_hours"
    id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)


class Service(Base):
    __tablename__ = "service"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    minutes: Mapped[int] = mapped_column(Integer)
    colour: Mapped[str | None] = mapped_column(String(16))
    price: Mapped[str | None] = mapped_column(String(32))  # decimal text; money is never a float
    kind: Mapped[str] = mapped_column(String(16), default="appointment", server_default="appointment")  # | course
    deleted_at: Mapped[datetime | None]


class Appointment(Base):
    """A held, requested, confirmed, cancelled, expired or rejected appointment; rows are never deleted."""

    __tablename__ = "appointment"
    __table_args__ = (
        Index("ix_appointment_staff_start", "staff_id", "start_at"),
        # busy-time lookups ask for end_at > day start: this keeps years of past rows out of the scan, and
        # holding every column they read, it spares them a visit to the table per appointment
        Index("ix_appointment_busy", "staff_id", "end_at", "start_at", "status", "hold_expires_at"),
        Index("ix_appointment_customer_start", "customer_id", "start_at"),
        Index("ix_appointment_status_hold", "status", "hold_expires_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("location.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # held | requested | confirmed | cancelled | expired | rejected
    hold_expires_at: Mapped[datetime | None]
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # ICS SEQUENCE: rises with every change
    channel: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(340))
    created_at: Mapped[datetime]
    closed_by: Mapped[str | None] = mapped_column(String(340))
    closed_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


class HoldSeat(Base):
    """One of the few holds the booking page lets an email address or a client address have open at once.

    `holder` is an HMAC of the address (never the address itself); the primary key (holder, seat) is the
    guard: a third open hold would need a third seat, and a seat whose hold ended is freed before it is taken.
    """

    __tablename__ = "hold_seat"
    holder: Mapped[str] = mapped_column(String(64), primary_key=True)
    seat: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"), index=True)


class SlotClaim(Base):
    """One 5-minute cell of a staff member's time, owned by one live appointment.

    The primary key is the guard against double booking: two live appointments of one staff
    member that overlap would need the same cell, and the database refuses the second, on SQLite
    and PostgreSQL alike, across tasks and processes.
    """

    __tablename__ = "slot_claim"
    staff_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    cell: Mapped[datetime] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointment.id", ondelete="CASCADE"), index=True)


class Closure(Base):
    """Time closed for online booking: sick or vacation (whole days) or a pause (hours)."""

    __tablename__ = "closure"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)  # None: everyone
    kind: Mapped[str] = mapped_column(String(16))  # sick | vacation | pause
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(340))
    created_at: Mapped[datetime]
