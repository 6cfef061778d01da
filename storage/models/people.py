"""People and how to reach them: addresses, roles, staff with their services and hours, notes, profile changes."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.models.base import Base


class Person(Base):
    __tablename__ = "person"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime]
    # Set by `forget`: the name is a pseudonym now, and nothing else about the person is left.
    erased_at: Mapped[datetime | None]
    addresses: Mapped[list["Address"]] = relationship(lazy="raise", back_populates="person")


class Address(Base):
    """A way to reach a person: telegram:<id>, email:<addr>, console:<name>."""

    __tablename__ = "address"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(340), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    person: Mapped[Person] = relationship(lazy="raise", back_populates="addresses")


class Role(Base):
    """A role of a person; scope narrows it (e.g. a group for a group manager), '' means global."""

    __tablename__ = "role"
    __table_args__ = (UniqueConstraint("person_id", "role", "scope"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(64), default="")


class Staff(Base):
    """A person who works here: provider (has a calendar) or assistant (books for others)."""

    __tablename__ = "staff"
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    rights: Mapped[list[Any]] = mapped_column(default=list)
    agenda_minute: Mapped[int | None] = mapped_column(Integer)  # the daily agenda's local time; None: none


class StaffService(Base):
    __tablename__ = "staff_service"
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"), primary_key=True)


class StaffHours(Base):
    """Bookable time of a staff member at a location on a weekday, in local minutes."""

    __tablename__ = "staff_hours"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("location.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)


class CustomerNote(Base):
    __tablename__ = "customer_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(340))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ProfileChange(Base):
    """A customer's own change of name or email, for an admin to accept or ignore."""

    __tablename__ = "profile_change"
    __table_args__ = (
        # The database keeps one pending change per person and field, whatever arrives at once.
        Index("ux_profile_change_pending", "person_id", "field", unique=True,
              sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(16))  # name | email
    old_value: Mapped[str | None] = mapped_column(String(340))
    new_value: Mapped[str] = mapped_column(String(340))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | accepted | ignored
    created_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(340))
