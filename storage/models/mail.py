"""Mail and tickets: support tickets with their messages, the mail intake and how far each mailbox got."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


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
