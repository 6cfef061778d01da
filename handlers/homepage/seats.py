"""How many holds the booking page lets one email address and one client address keep open at once.

A hold takes a seat per address; the primary key (holder, seat) of hold_seat refuses a third. A seat whose
hold ended (confirmed, expired by time, released) is freed just before seats are taken, in the same
transaction, so the database alone decides who gets the last seat, across tasks and processes.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError

from storage.db import UnitOfWork
from storage.models import Appointment, HoldSeat

OPEN_HOLDS = 2  # per email address and per client address


class NoSeat(Exception):
    """Every seat of this holder belongs to a hold that is still open."""


def ended(now: datetime):
    """Appointments that hold no seat any more: no longer held, or held past their time."""
    return or_(Appointment.status != "held", and_(Appointment.status == "held", Appointment.hold_expires_at <= now))


async def free_ended(uow: UnitOfWork, holder: str, now: datetime) -> None:
    """Free this holder's seats whose hold has ended."""
    done = select(Appointment.id).where(Appointment.id == HoldSeat.appointment_id, ended(now))
    await uow.session.execute(delete(HoldSeat).where(HoldSeat.holder == holder, done.exists())
                              .execution_options(synchronize_session=False))


async def take_seat(uow: UnitOfWork, holder: str, appointment_id: int, now: datetime) -> int:
    """Take a free seat for the hold, or raise NoSeat; a savepoint keeps the caller's transaction usable."""
    await free_ended(uow, holder, now)
    for seat in range(1, OPEN_HOLDS + 1):
        try:
            async with uow.session.begin_nested():
                await uow.session.execute(insert(HoldSeat).values(holder=holder, seat=seat,
                                                                  appointment_id=appointment_id))
        except IntegrityError:
            continue
        return seat
    raise NoSeat()
