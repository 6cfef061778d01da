"""Groups and members: customer groups, seat groups, memberships, seat orders, member accounts, credentials, imports."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base, _name_key_default


class CustomerGroup(Base):
    __tablename__ = "customer_group"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # The database keeps names unique regardless of case: two "VIP"/"vip" created at once cannot both land.
    name_key: Mapped[str] = mapped_column(String(480), unique=True, index=True, default=_name_key_default)


class CustomerGroupMember(Base):
    __tablename__ = "customer_group_member"
    group_id: Mapped[int] = mapped_column(ForeignKey("customer_group.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)


class SeatGroup(Base):
    """A group of members sharing bought seats (a course group, a team, a queue).

    The CHECK is the last word on seat arithmetic: taken seats never go negative and never exceed
    what was bought, whatever the application does.
    """

    __tablename__ = "seat_group"
    __table_args__ = (CheckConstraint("seats_taken >= 0 AND seats_taken <= seats_bought", name="seats_within_bought"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    name_key: Mapped[str] = mapped_column(String(480), unique=True, index=True, default=_name_key_default)
    kind: Mapped[str] = mapped_column(String(16), default="course")  # course | team | queue
    service_id: Mapped[int | None] = mapped_column(ForeignKey("service.id"))  # the course, if any
    seats_bought: Mapped[int] = mapped_column(Integer, default=0)
    seats_taken: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(340))
    created_at: Mapped[datetime]


class Membership(Base):
    """A person in a seat group; an activated member has used their seat (used seats are not refunded)."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("group_id", "person_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("seat_group.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    holds_seat: Mapped[bool] = mapped_column(Boolean, default=True)
    seat_used: Mapped[bool] = mapped_column(Boolean, default=False)
    enrolled_at: Mapped[datetime]
    enrolled_by: Mapped[str] = mapped_column(String(340))


class SeatOrder(Base):
    """One purchase of seats, with its invoice record (number, lines, total, buyer).

    An order above the business's limit is *pending* until an admin approves it: its seats are not
    bought yet and it has no invoice number (numbers run without gaps, so a rejected order takes none).
    """

    __tablename__ = "seat_order"
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="approved", server_default="approved")  # pending, rejected
    decided_by: Mapped[str | None] = mapped_column(String(340))
    decided_at: Mapped[datetime | None]
    group_id: Mapped[int] = mapped_column(ForeignKey("seat_group.id"), index=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    seats: Mapped[int] = mapped_column(Integer)
    lines: Mapped[list[Any]] = mapped_column(default=list)  # [{text, quantity, unit_price, amount}]
    total: Mapped[str] = mapped_column(String(32))  # decimal text
    created_at: Mapped[datetime]


class Member(Base):
    """A member account: status, profile and configuration (seed: an admin portal for users)."""

    __tablename__ = "member"
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | activated | failed
    failure_reason: Mapped[str | None] = mapped_column(Text)
    first_name: Mapped[str | None] = mapped_column(String(23))
    last_name: Mapped[str | None] = mapped_column(String(30))
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)  # E.164
    extension: Mapped[str | None] = mapped_column(String(8), unique=True)  # unique within the organisation
    mobile: Mapped[str | None] = mapped_column(String(20))
    contract_number: Mapped[str | None] = mapped_column(String(40))
    device_model: Mapped[str | None] = mapped_column(String(60))  # or "none"
    services: Mapped[list[Any]] = mapped_column(default=list)
    invited_at: Mapped[datetime | None]
    invitation_expires_at: Mapped[datetime | None]
    invitation_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    activated_at: Mapped[datetime | None]


class Credential(Base):
    """Access credentials of an activated member: only a hash is kept."""

    __tablename__ = "credential"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # password | access_code
    digest: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None]
    reset_requested_at: Mapped[datetime | None]  # the member tried the self-service reset


class ImportBatch(Base):
    """A validated import waiting for `confirm`: the dry run's rows and summary."""

    __tablename__ = "import_batch"
    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("seat_group.id", ondelete="CASCADE"))
    uploaded_by: Mapped[str] = mapped_column(String(340))
    filename: Mapped[str] = mapped_column(String(255))
    rows: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="dry_run")  # uploaded | dry_run | imported | discarded
    upload: Mapped[bytes | None] = mapped_column(LargeBinary)  # an emailed list, unread until its code comes back
    created_at: Mapped[datetime]
