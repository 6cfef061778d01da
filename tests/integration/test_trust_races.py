"""Decisions taken at the same moment (SQLite and PostgreSQL): the database serialises them.

A closure and an online hold for the same time end one way or the other, never with an appointment
inside a closure; two changes of one customer's name leave exactly one waiting for an admin.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from handlers.appointments import live_condition
from storage.models import Address, Appointment, Closure, Person, ProfileChange
from tests.integration.test_appointment_races import at_once
from tests.integration.test_booking import LUKAS, TUESDAY, chat, customer, desk  # noqa: F401 - a fixture

ROUNDS = 4  # several pairs, so that at least some really interleave on PostgreSQL


async def live_inside_closures(store, now: datetime) -> list[int]:
    """Live appointments that lie inside a closure of their staff member (or of everyone)."""
    async with store.uow() as uow:
        return list((await uow.session.scalars(
            select(Appointment.id).join(Closure, (Closure.start_at < Appointment.end_at)
                                        & (Closure.end_at > Appointment.start_at)
                                        & (Closure.staff_id.is_(None) | (Closure.staff_id == Appointment.staff_id)))
            .where(live_condition(now)))).all())


async def test_a_pause_and_an_online_hold_at_the_same_moment_never_leave_a_booking_inside(desk, store):  # noqa: F811
    customers = [await customer(desk, store, f"telegram:{50 + n}", f"c{n}@example.com") for n in range(ROUNDS)]
    for n, person in enumerate(customers):
        hour = f"{8 + n:02d}:00"
        booked, paused = await at_once(desk, (person.sender, f"/book Massage {TUESDAY} {hour} Lukas Huber"),
                                       (LUKAS, f"/pause {TUESDAY} {hour}-{9 + n:02d}:00"))
        assert "went wrong" not in booked + paused, (booked, paused)
        if "I am holding" in booked:  # the hold came first: the pause lists it and asks
            assert "fall inside" in paused, paused
        else:  # the pause came first: the hold is refused
            assert "Closed for online booking" in paused and "holding" not in booked, (booked, paused)
        assert await live_inside_closures(store, desk.clock.now()) == []


async def test_confirming_a_closure_while_a_hold_arrives_cancels_it_or_refuses_the_hold(desk, store):  # noqa: F811
    first = await customer(desk, store, "telegram:60", "first@example.com")
    assert "I am holding" in (await first.send(f"/book Massage {TUESDAY} 13:00 Lukas Huber"))[0].text
    lukas = chat(desk, LUKAS)
    for n in range(ROUNDS):
        [question] = await lukas.send(f"/pause {TUESDAY} 13:00-18:00")
        nonce = next(c.command for c in question.choices if c.label == "Confirm").split()[1]
        late = await customer(desk, store, f"telegram:{70 + n}", f"late{n}@example.com")
        confirmed, booked = await at_once(desk, (LUKAS, f"/calendar-confirm {nonce}"),
                                          (late.sender, f"/book Massage {TUESDAY} {14 + n:02d}:00 Lukas Huber"))
        assert "went wrong" not in confirmed + booked, (confirmed, booked)
        assert await live_inside_closures(store, desk.clock.now()) == []
        if "I am holding" in booked:  # the hold came first: the closure shows it before cancelling anything
            assert "New bookings arrived" in confirmed, confirmed
        else:  # the closure came first: the hold is refused, the rest of the day is closed
            assert "cancelled" in confirmed and "holding" not in booked, (confirmed, booked)
            return


async def test_two_name_changes_at_once_leave_one_waiting(desk, store):  # noqa: F811
    kim = chat(desk, "telegram:5")
    await kim.send("/name Kim")
    async with store.uow() as uow:
        person = await uow.session.scalar(select(Address.person_id).where(Address.address == "telegram:5"))
        uow.session.add(Address(address="console:kim", kind="console", person_id=person, verified=True,
                                created_at=desk.clock.now()))
        await uow.commit()
    for n in range(ROUNDS):
        answers = await at_once(desk, ("telegram:5", f"/name Kimberly {n}"), ("console:kim", f"/name Kim K. {n}"))
        assert all("passed your name" in answer for answer in answers), answers
        async with store.uow() as uow:
            waiting = await uow.session.scalar(select(func.count()).select_from(ProfileChange).where(
                ProfileChange.person_id == person, ProfileChange.status == "pending"))
        assert waiting == 1
    async with store.uow() as uow:
        assert (await uow.session.get(Person, person)).name == "Kim"  # the record waits for an admin
