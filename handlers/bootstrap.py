"""Owners named in FRONTDESK_OWNERS get their addresses and the owner role at start."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, select

from handlers.context import address_kind
from handlers.rules.addresses import canonical_address
from storage.db import UnitOfWork
from storage.dialect import insert_ignoring_conflicts
from storage.models import Address, Audit, Person, Role

KNOWN_KINDS = ("telegram", "email", "console")


class BootstrapError(ValueError):
    """An owner address that cannot be used."""


def check_owner_address(address: str) -> str:
    kind, _, value = address.partition(":")
    if kind not in KNOWN_KINDS or not value:
        raise BootstrapError(
            f"FRONTDESK_OWNERS: {address!r} is not an address like telegram:123 or email:boss@example.com")
    return canonical_address(address)


async def ensure_owners(uow: UnitOfWork, addresses: list[str], now: datetime) -> list[str]:
    """Give each address the owner role, creating the person if needed; returns what changed."""
    changes = []
    for address in map(check_owner_address, addresses):
        person_id = await uow.session.scalar(select(Address.person_id).where(Address.address == address))
        if person_id is None:
            person = Person(name=None, created_at=now)
            uow.session.add(person)
            await uow.session.flush()
            uow.session.add(Address(address=address, kind=address_kind(address), person_id=person.id,
                                    verified=True, created_at=now))
            person_id = person.id
        added: CursorResult = await uow.session.execute(  # type: ignore[assignment]  # an INSERT's result is a cursor
            insert_ignoring_conflicts(uow.dialect, Role, ["person_id", "role", "scope"]).values(
                person_id=person_id, role="owner", scope="")
        )
        if added.rowcount:
            uow.session.add(Audit(at=now, actor="environment", person_id=person_id, channel="setup",
                                  action="owner_granted", subject=address, detail={}))
            changes.append(f"+ owner {address}")
    return changes
