"""The one way words leave: the language someone is written to in, where they read, and the outbox row."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from handlers.messages import Attachment, new_message_id
from storage.db import UnitOfWork
from storage.models import Address, Business
from templates import Rendered, language

# RFC 3834: no autoresponder answers mail marked automatic; a person's answer says so, and may be answered.
AUTO_GENERATED = {"Auto-Submitted": "auto-generated"}
AUTO_REPLIED = {"Auto-Submitted": "auto-replied"}
WRITTEN_BY_A_PERSON = {"Auto-Submitted": "no"}


def reply_language(chosen: str | None, business: Business | None, default: str) -> str:
    """The language to write someone in: their own choice, else the business's, else the configured default."""
    return language(chosen or (business.language if business else None) or default)


async def verified_email(uow: UnitOfWork, person_id: int) -> str | None:
    """The person's confirmed email address, if they have one."""
    address = await uow.session.scalar(
        select(Address.address).where(Address.person_id == person_id, Address.kind == "email", Address.verified)
        .order_by(Address.id.desc()).limit(1))
    return address.split(":", 1)[1] if address else None


async def chat_address(uow: UnitOfWork, person_id: int) -> str | None:
    """Where a person reads chat messages: Telegram first, then the console, then a confirmed email."""
    return (await chat_addresses(uow, [person_id])).get(person_id)


async def chat_addresses(uow: UnitOfWork, person_ids: list[int]) -> dict[int, str]:
    """`chat_address` for several people in one query; people with no confirmed address are left out."""
    if not person_ids:
        return {}
    rows = (await uow.session.execute(
        select(Address.person_id, Address.kind, Address.address)
        .where(Address.person_id.in_(person_ids), Address.verified))).all()
    return preferred_addresses(rows)


def preferred_addresses(rows: Iterable[Sequence[Any]]) -> dict[int, str]:
    """From (person id, kind, address) rows of confirmed addresses, where each person reads chat messages:
    Telegram first, then the console, then email."""
    by_person: dict[int, dict[str, str]] = {}
    for person_id, kind, address in rows:
        by_person.setdefault(person_id, {})[kind] = address
    found = {pid: kinds.get("telegram") or kinds.get("console") or kinds.get("email")
             for pid, kinds in by_person.items()}
    return {pid: address for pid, address in found.items() if address}


def mail_row(now: datetime, mail_domain: str, to: str, rendered: Rendered, headers: dict[str, str] | None = None,
             attachments: Iterable[Attachment] = ()) -> dict[str, Any]:
    """One outbox mail, due now, as a plain row: a fresh Message-ID and Auto-Submitted; `headers` add to ours."""
    message_id = new_message_id(mail_domain)
    return {"channel": "email", "recipient": to, "subject": rendered.subject, "text": rendered.text,
            "html": rendered.html, "message_id": message_id,
            "headers": {"Message-ID": message_id, **AUTO_GENERATED, **(headers or {})},
            "attachments": [a.stored() for a in attachments],
            "choices": [],  # as a chat message's row has: both go into the outbox in one statement
            "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
