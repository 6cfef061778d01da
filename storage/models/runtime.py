"""The desk's running state: one-time codes, open conversations, offered choices, the outbox, the audit, removals,
and the jobs that run at a time."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models.base import Base


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
    choices: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")  # chat buttons: [{label, key}]
    # emails: ours, to know it when it comes back
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)
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


class Removal(Base):
    """A chat message that must go away at a time (credentials are shown once); kept here, so that a
    crash before the time forgets none: whatever is due is removed when the bot runs again."""

    __tablename__ = "removal"
    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int] = mapped_column(BigInteger)
    remove_at: Mapped[datetime] = mapped_column(index=True)


class Job(Base):
    """Work due at a time (a reminder, an invitation running out): claimed by one worker, whose effect and
    completion commit together, so it runs exactly once across restarts, crashes and several workers."""

    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("kind", "key", name="uq_job_kind_key"),  # one job per reason: never two reminders
        Index("ix_job_due", "done_at", "failed_at", "due_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(200))  # what makes it this job, e.g. "12:24h:2026-12-07T09:00"
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]  # claimed by a worker until then
    last_error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(400))  # "done", or why it had nothing left to do
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # gave up after the last try: admins see it with `jobs`


class TelegramUpdate(Base):
    """A Telegram update a webhook took: stored before Telegram hears 200, handled by whichever worker claims
    it, one sender's updates in update_id order. Its body is emptied once handled; the row stays a while, so
    that Telegram's redelivery of it is recognised."""

    __tablename__ = "telegram_update"
    __table_args__ = (
        Index("ix_telegram_update_pending", "handled_at", "update_id"),
        Index("ix_telegram_update_sender", "sender", "update_id"),
    )
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sender: Mapped[str] = mapped_column(String(340))  # telegram:<user id>, or chat:<id> without a user
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claims: Mapped[int] = mapped_column(Integer, default=0)  # how often a worker took it: a crash each time shows
    handled_at: Mapped[datetime | None]
