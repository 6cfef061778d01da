"""The booking page's handlers against a real store (SQLite and PostgreSQL): open-hold caps decided by the
database under concurrency, the code mail's limit per client, and what a typed address may not do to its owner."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from bot.app import build_handlers
from handlers.homepage.booking import Held, Refused, Visitor, page_hold
from handlers.homepage.guard import Wanted
from handlers.router import Desk
from handlers.setup import apply_setup, load_setup
from storage.models import Address, Appointment, Business, HoldSeat, Person
from tests.helpers import PRACTICE, Chat, code_for, count, mails_to, practice_setup, rows

MONDAY = datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc)  # 08:00 in Vienna


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    clock.current = MONDAY
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    return Desk(store, config, build_handlers(), clock)


def tuesday(time: str, staff: str = "Lukas Huber") -> Wanted:
    return Wanted(service="Massage", location="Linz", staff=staff, day="2026-12-08", time=time)


async def test_three_holds_at_once_for_one_address_leave_two(desk, store):
    tries = [page_hold(desk, Visitor("en", f"203.0.113.{n}"), tuesday(time), "Kim", "kim@example.com")
             for n, time in enumerate(("08:00", "10:00", "13:00"))]
    done = await asyncio.gather(*tries)
    assert sorted(type(d).__name__ for d in done) == ["Held", "Held", "Refused"]
    [refused] = [d for d in done if isinstance(d, Refused)]
    assert refused.template == "booking_page_open_holds"
    assert await count(store, Appointment) == 2 and await count(store, HoldSeat) == 4
    assert len(await mails_to(store, "kim@example.com")) == 2


async def test_three_holds_at_once_from_one_client_leave_two(desk, store):
    tries = [page_hold(desk, Visitor("en", "198.51.100.20"), tuesday(time), "Kim", f"k{n}@example.com")
             for n, time in enumerate(("08:00", "10:00", "13:00"))]
    done = await asyncio.gather(*tries)
    assert sum(isinstance(d, Held) for d in done) == 2
    async with store.uow() as uow:
        holders = await uow.session.scalar(select(func.count(func.distinct(HoldSeat.holder))))
    assert holders == 3  # two emails and the one client; no address is stored in clear
    assert not [seat for seat in await rows(store, HoldSeat) if "@" in seat.holder or "198." in seat.holder]


async def test_a_client_gets_the_chats_hourly_number_of_code_mails(desk, store, clock):
    visitor = Visitor("en", "198.51.100.30")
    for n in range(5):
        assert isinstance(await page_hold(desk, visitor, tuesday(f"{8 + n}:00" if n < 4 else "13:00"), "K",
                                          f"k{n}@example.com"), Held)
        clock.advance(seconds=601)  # each hold runs out, so seats are no limit here
    sixth = await page_hold(desk, visitor, tuesday("14:00"), "K", "k5@example.com")
    assert isinstance(sixth, Refused) and sixth.template == "code_rate_limited"
    assert sixth.text.startswith("Too many codes were requested in the last hour.")
    assert await count(store, Appointment, Appointment.customer_id.is_not(None)) == 5
    clock.advance(minutes=15)  # an hour after the first code
    assert isinstance(await page_hold(desk, visitor, tuesday("14:00"), "K", "k5@example.com"), Held)


async def test_the_page_code_also_works_as_a_reply_to_its_mail(desk, store, clock):
    assert isinstance(await page_hold(desk, Visitor("de", "203.0.113.5"), tuesday("10:00"), "Kim Lee",
                                      "kim@example.com"), Held)
    [mail] = await mails_to(store, "kim@example.com")
    assert mail.subject.endswith("ist Ihr Buchungscode bei Physio am Park")  # in the page's language
    reply = Chat(desk, clock, "email:kim@example.com")
    [booked] = await reply.send(await code_for(store, "kim@example.com"))
    assert booked.template == "booking_confirmed"
    [held] = await rows(store, Appointment)
    assert held.status == "confirmed"
    assert (await rows(store, Address, Address.address == "email:kim@example.com"))[0].verified
    # the confirmation follows the language the reply came in, as every answer to a mail does
    assert (await mails_to(store, "kim@example.com"))[-1].subject.startswith("Booked: Massage")


async def test_typing_someones_address_neither_releases_their_hold_nor_voids_their_code(desk, store, clock):
    kim = Chat(desk, clock, "telegram:5")
    await kim.send("/name Kim Lee")
    await kim.send("/email kim@example.com")
    await kim.send(await code_for(store, "kim@example.com"))
    [held] = await kim.send("/book Massage 2026-12-08 10:00 Lukas Huber")
    assert held.template == "booking_held"
    chat_code = await code_for(store, "kim@example.com")
    stranger = await page_hold(desk, Visitor("en", "203.0.113.66"), tuesday("13:00"), "Mallory", "kim@example.com")
    assert isinstance(stranger, Held)
    [chat_hold] = await rows(store, Appointment, Appointment.channel == "telegram")
    assert chat_hold.status == "held"  # the page did not release the chat's hold
    [booked] = await kim.send(chat_code)  # and Kim's code from the chat still works
    assert booked.template == "booking_confirmed"
    [person] = await rows(store, Person, Person.id == chat_hold.customer_id)
    assert person.name == "Kim Lee"  # a name typed into the page never replaces one


async def test_the_widget_look_is_applied_once_and_a_stylesheet_is_not_echoed(store, clock, tmp_path):
    (tmp_path / "site.css").write_text(".card { border-radius: 0; }\n", encoding="utf-8")
    text = practice_setup_text().replace('holidays = "AT-4"', 'holidays = "AT-4"\nwidget_accent = "#10ac84"\n'
                                                                'widget_css = "site.css"', 1)
    (tmp_path / "practice.toml").write_text(text, encoding="utf-8")
    async with store.uow() as uow:
        first = await apply_setup(uow, load_setup(tmp_path / "practice.toml"), clock.now())
        await uow.commit()
    async with store.uow() as uow:
        again = await apply_setup(uow, load_setup(tmp_path / "practice.toml"), clock.now())
        await uow.commit()
    assert again == [] and not [line for line in first if "border-radius" in line]
    (tmp_path / "site.css").write_text(".card { border-radius: 2px; }\n", encoding="utf-8")
    async with store.uow() as uow:
        changed = await apply_setup(uow, load_setup(tmp_path / "practice.toml"), clock.now())
        await uow.commit()
    assert changed == ["~ business: widget_css → 30 bytes"]
    [business] = await rows(store, Business)
    assert (business.widget_accent, business.widget_css) == ("#10ac84", ".card { border-radius: 2px; }\n")


def practice_setup_text() -> str:
    return PRACTICE.read_text(encoding="utf-8")
