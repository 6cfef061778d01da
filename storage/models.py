"""Declarative models. Times are stored as UTC and always come back timezone-aware."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    LargeBinary,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator):
    """Store naive UTC, return aware UTC, so SQLite and PostgreSQL compare alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC time")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def name_key(name: str) -> str:
    """A group name as compared: NFKC, case folded, single spaces ("VIP", "vip" and "ＶＩＰ" are one name)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _name_key_default(context) -> str:
    return name_key(context.get_current_parameters()["name"])


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


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


class Person(Base):
    __tablename__ = "person"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime]
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


class Code(Base):
    """A one-time code. Only its HMAC is stored; it is single use with an expiry and capped attempts."""

    __tablename__ = "code"
    __table_args__ = (Index("ix_code_address_created", "address", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(340))  # who asked for it
    purpose: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(340))  # what it proves, e.g. the email address
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong tries from the address that asked for it
    # Wrong tries from the person's other addresses: a From: line proves nothing, so these close the code
    # to other addresses at the limit but never use it up for the address that asked (a Telegram hold lives on).
    other_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    used_at: Mapped[datetime | None]


class Conversation(Base):
    """The open flow of one sender: any process can continue it, a restart loses nothing."""

    __tablename__ = "conversation"
    address: Mapped[str] = mapped_column(String(340), primary_key=True)
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime]


class Choice(Base):
    """A button offered to a sender: its short key travels as callback data, the command stays here."""

    __tablename__ = "choice"
    key: Mapped[str] = mapped_column(String(16), primary_key=True)
    address: Mapped[str] = mapped_column(String(340), index=True)
    command: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class Outbox(Base):
    """A message waiting for delivery, written in the same transaction as the change behind it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_recipient_created", "recipient", "created_at"),  # automatic replies per address and hour
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | telegram | console
    recipient: Mapped[str] = mapped_column(String(340))
    subject: Mapped[str | None] = mapped_column(String(998))
    text: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attachments: Mapped[list[Any]] = mapped_column(default=list)  # [{name, type, data(base64)}]
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)  # emails: ours, to know it when it comes back
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | sent | given_up
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class Audit(Base):
    """Who did what, when, through which channel: "who booked?" always has an answer."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(340))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(340))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Appointment(Base):
    """A held, requested, confirmed, cancelled, expired or rejected appointment; rows are never deleted."""

    __tablename__ = "appointment"
    __table_args__ = (
        Index("ix_appointment_staff_start", "staff_id", "start_at"),
        # busy-time lookups ask for end_at > day start: this keeps years of past rows out of the scan
        Index("ix_appointment_staff_end", "staff_id", "end_at"),
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


class CustomerNote(Base):
    __tablename__ = "customer_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(340))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


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


class Ticket(Base):
    """A support conversation by email, tagged [#T-<id>] in subjects."""

    __tablename__ = "ticket"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), index=True)  # acknowledgements per address and hour
    subject: Mapped[str] = mapped_column(String(998))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | pending | closed
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class TicketMessage(Base):
    """One message on a ticket: in (from the customer), out (our reply) or note (internal)."""

    __tablename__ = "ticket_message"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    author: Mapped[str] = mapped_column(String(340))
    text: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    attachments: Mapped[list[Any]] = mapped_column(default=list)  # [{name, type, size}]
    created_at: Mapped[datetime]


class MailIntake(Base):
    """Every mail taken in, once per Message-ID; a failed one keeps its raw bytes for a retry."""

    __tablename__ = "mail_intake"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    mailbox: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    sender: Mapped[str | None] = mapped_column(String(340))
    status: Mapped[str] = mapped_column(String(16))  # processed | ignored | failed
    error: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]


class MailboxState(Base):
    """How far intake got in a mailbox: IMAP UIDs are only meaningful with their UIDVALIDITY."""

    __tablename__ = "mailbox_state"
    mailbox: Mapped[str] = mapped_column(String(255), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)


class Removal(Base):
    """A chat message that must go away at a time (credentials are shown once); kept here, so that a
    crash before the time forgets none: whatever is due is removed when the bot runs again."""

    __tablename__ = "removal"
    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    remove_at: Mapped[datetime] = mapped_column(index=True)


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
