"""What a forged From: line cannot do, and codes that one mailbox cannot dodge (SQLite and PostgreSQL).

A mail's sender is a claim: wrong codes, imports and language words by mail must not undo what the
person set up in Telegram or waits for. Addresses have one spelling, so letter case buys no extra codes.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from handlers import admin, identity, members, welcome
from handlers.bootstrap import ensure_owners
from handlers.messages import Attachment
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import Address, Appointment, Code, ImportBatch, Membership, Person, SeatGroup, Service
from tests.conftest import inbound
from tests.helpers import set_business
from tests.integration.test_booking import TUESDAY, chat, code_for, customer, desk  # noqa: F401 - a fixture

KIM_MAIL = "email:kim@example.com"
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def wrong(code: str, by: int = 1) -> str:
    return f"{(int(code) + by) % 1_000_000:06d}"


async def text(desk: Desk, sender: str, typed: str) -> str:
    return " ".join(r.text for r in await desk.handle(inbound(sender, typed, clock=desk.clock)))


async def held(store) -> Appointment:
    async with store.uow() as uow:
        return await uow.session.scalar(select(Appointment))


# ---- C9: wrong codes by mail ------------------------------------------------------------------


async def test_five_forged_mails_with_wrong_codes_leave_a_telegram_hold_alive(desk, store):  # noqa: F811
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    code = await code_for(store, "kim@example.com")
    answers = [await text(desk, KIM_MAIL, wrong(code)) for _ in range(5)]  # anyone can write From: kim@…
    assert "4 tries left" in answers[0]
    assert "no longer takes tries from here" in answers[4] and "released" not in answers[4]
    assert (await held(store)).status == "held"
    # Closed to mail now: even the right code by mail is no longer taken, and costs the hold nothing.
    assert "no code waiting" in await text(desk, KIM_MAIL, code)
    assert (await held(store)).status == "held"
    [booked] = await kim.send(code)  # in the chat where she booked, the code still works
    assert "Booked!" in booked.text
    assert (await held(store)).status == "confirmed"


async def test_a_booking_code_returned_by_mail_still_confirms_after_a_few_wrong_mails(desk, store):  # noqa: F811
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    code = await code_for(store, "kim@example.com")
    for _ in range(4):
        await text(desk, KIM_MAIL, wrong(code))
    assert "Booked!" in await text(desk, KIM_MAIL, code)


async def test_wrong_tries_in_telegram_still_use_up_the_telegram_booking_code(desk, store):  # noqa: F811
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    code = await code_for(store, "kim@example.com")
    for _ in range(2):
        await text(desk, KIM_MAIL, wrong(code))  # from elsewhere: counted apart
    answers = [(await kim.send(wrong(code)))[0].text for _ in range(5)]
    assert "4 tries left" in answers[0] and "released" in answers[4]
    assert (await held(store)).status == "expired"


async def test_wrong_mails_use_up_only_that_addresses_own_round_trip_code(desk, store):  # noqa: F811
    kim = await customer(desk, store, "telegram:5", "kim@example.com")
    await kim.send(f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    booking_code = await code_for(store, "kim@example.com")
    [round_trip] = await desk.handle(inbound(KIM_MAIL, "name Kim Ott", clock=desk.clock))
    mail_code = round_trip.subject.split()[0]
    other = next(wrong(mail_code, n) for n in range(1, 9) if wrong(mail_code, n) != booking_code)
    answers = [await text(desk, KIM_MAIL, other) for _ in range(5)]
    assert "last try" in answers[4]  # the mail's own round-trip code is used up by mail
    assert "no code waiting" in await text(desk, KIM_MAIL, mail_code)
    assert (await held(store)).status == "held"
    assert "Booked!" in (await kim.send(booking_code))[0].text


# ---- C10: odd digits and letter case --------------------------------------------------------


@pytest.mark.parametrize("digits", [FULL_WIDTH, ARABIC_INDIC], ids=["full-width", "arabic-indic"])
async def test_a_code_typed_in_other_digits_is_the_same_code_and_costs_no_try(desk, store, digits):  # noqa: F811
    kim = chat(desk, "telegram:5")
    await kim.send("/email kim@example.com")
    code = await code_for(store, "kim@example.com")
    assert "not right" in (await kim.send(f"/confirm {wrong(code).translate(digits)}"))[0].text
    async with store.uow() as uow:
        assert await uow.session.scalar(select(Code.attempts)) == 1  # one wrong try, counted once
    assert "is confirmed" in (await kim.send(code.translate(digits)))[0].text


async def test_letter_case_does_not_buy_more_codes_for_one_mailbox(desk, store):  # noqa: F811
    spellings = ["target@example.com", "Target@example.com", "TARGET@example.com", "tArGeT@Example.com",
                 "TaRgEt@EXAMPLE.COM", "TARGET@example.COM"]
    answers = [await text(desk, f"telegram:{700 + n}", f"/email {typed}") for n, typed in enumerate(spellings)]
    assert all("I have sent" in answer for answer in answers[:5])
    assert "Too many codes" in answers[5]
    async with store.uow() as uow:
        targets = set((await uow.session.scalars(select(Code.target))).all())
    assert targets == {"target@example.com"}


async def test_an_address_is_stored_in_one_spelling_whatever_case_was_typed(desk, store):  # noqa: F811
    kim = chat(desk, "telegram:5")
    await kim.send("/email Kim@Example.com")
    assert "is confirmed" in (await kim.send(await code_for(store, "kim@example.com")))[0].text
    async with store.uow() as uow:
        [address] = (await uow.session.scalars(select(Address.address).where(
            Address.address.ilike("email:kim@%")))).all()
    assert address == KIM_MAIL


# ---- C9: language and import by mail --------------------------------------------------------


async def test_a_language_word_by_mail_answers_in_it_but_changes_no_setting(desk, store):  # noqa: F811
    await customer(desk, store, "telegram:5", "kim@example.com")
    answer = await text(desk, KIM_MAIL, "language de")
    assert "Deutsch" in answer and "nur für diese Antwort" in answer
    async with store.uow() as uow:
        kim = await uow.session.scalar(select(Person).join(Address).where(Address.address == "telegram:5"))
    assert kim.language is None
    assert "Which language would you like?" in await text(desk, "telegram:5", "/language")  # still English


OWNER, LEA, LEA_MAIL = "telegram:1001", "telegram:2001", "email:lea@example.com"


@pytest.fixture
async def group_desk(store, config, clock) -> Desk:
    """An owner, a course, and Lea (Telegram, with a verified email) who bought the group "Team"."""
    async with store.uow() as uow:
        await ensure_owners(uow, [OWNER], clock.now())
        uow.session.add(Service(name="First Aid", minutes=480, price="49.90", kind="course"))
        await uow.commit()
    await set_business(store)
    made = Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                members.group_handlers()), clock)
    await made.handle(inbound(LEA, "/start", clock=clock))
    async with store.uow() as uow:
        person = await uow.session.scalar(select(Address.person_id).where(Address.address == LEA))
        uow.session.add(Address(address=LEA_MAIL, kind="email", person_id=person, verified=True,
                                created_at=clock.now()))
        await uow.commit()
    await made.handle(inbound(LEA, '/group new "Team" 5 group', clock=clock))
    return made


async def mailed_import(desk: Desk, rows: str):
    message = inbound(LEA_MAIL, "import Team", clock=desk.clock)
    attachment = Attachment("members.csv", "text/csv", f"Name;E-Mail\n{rows}".encode())
    [reply] = await desk.handle(replace(message, attachments=(attachment,)))
    return reply


async def test_a_forged_import_mail_does_not_discard_the_dry_run_waiting_for_its_code(group_desk, store):
    kept = await mailed_import(group_desk, "Kim Meyer;kim.meyer@example.com\nLu Li;lu@example.com\n")
    [checked] = await group_desk.handle(inbound(LEA_MAIL, kept.subject.split()[0], clock=group_desk.clock))
    code = checked.subject.split()[0]  # Lea's dry run, waiting for this code
    forged = await mailed_import(group_desk, "Mallory;mallory@example.com\n")  # someone else, Lea's From:
    assert "I read the list only when you reply" in forged.text
    async with store.uow() as uow:
        statuses = (await uow.session.scalars(select(ImportBatch.status).order_by(ImportBatch.id))).all()
    assert statuses == ["discarded", "dry_run", "uploaded"]  # the read upload, its check, the forged one
    assert "Imported 2 members" in await text(group_desk, LEA_MAIL, code)  # Lea's own check, as she saw it
    async with store.uow() as uow:
        group = await uow.session.scalar(select(SeatGroup))
        members = (await uow.session.scalars(select(Address.address).join(
            Membership, Membership.person_id == Address.person_id))).all()
    assert group.seats_taken == 2 and "email:mallory@example.com" not in members


async def test_a_dry_run_in_the_chat_still_replaces_the_earlier_one(group_desk, store):
    for rows in ("Kim;kim@example.com\n", "Lu;lu@example.com\n"):
        message = inbound(LEA, "/import Team", clock=group_desk.clock)
        attachment = Attachment("members.csv", "text/csv", f"Name;E-Mail\n{rows}".encode())
        await group_desk.handle(replace(message, attachments=(attachment,)))
    async with store.uow() as uow:
        statuses = (await uow.session.scalars(select(ImportBatch.status).order_by(ImportBatch.id))).all()
    assert statuses == ["discarded", "dry_run"]
