"""What a From: line can and cannot do, through a real IMAP server in and a real SMTP server out.

Runs on SQLite and PostgreSQL with the rig of test_email: the practice, its desk, intake and outbox.
"""
from __future__ import annotations

from sqlalchemy import select

from handlers.messages import Inbound
from storage.models import Address, Appointment, Person
from tests.e2e.test_email import KIM, mail, rig, text_of  # noqa: F401 - rig is a fixture
from tests.imap import imap_server  # noqa: F401 - a fixture
from tests.smtp import smtp_server  # noqa: F401 - a fixture

KIM_CHAT = "telegram:5001"


async def kim_holds_a_massage(rig) -> str:  # noqa: F811 - the fixture's name
    """Kim (Telegram, with a verified email) holds a massage from the chat; the booking code from her mailbox."""
    async with rig.store.uow() as uow:
        kim = Person(name="Kim Ott", created_at=rig.clock.now())
        uow.session.add(kim)
        await uow.session.flush()
        for address in (KIM_CHAT, f"email:{KIM}"):
            uow.session.add(Address(address=address, kind=address.split(":")[0], person_id=kim.id, verified=True,
                                    created_at=rig.clock.now()))
        await uow.commit()
    [held] = await say_in_chat(rig, "/book Massage 2026-12-08 10:00 Lukas Huber")
    assert "I am holding" in held.text
    await rig.worker.drain()
    return rig.mails_to(KIM)[-1]["Subject"].split()[0]


async def say_in_chat(rig, text: str):  # noqa: F811
    return await rig.desk.handle(Inbound(channel="telegram", sender=KIM_CHAT, received_at=rig.clock.now(),
                                         text=text, language_hint="en"))


async def hold_status(rig) -> str:  # noqa: F811
    async with rig.store.uow() as uow:
        return (await uow.session.scalar(select(Appointment))).status


async def test_forged_mails_with_wrong_codes_do_not_release_a_hold_made_in_telegram(rig):  # noqa: F811
    code = await kim_holds_a_massage(rig)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        await rig.send(mail(f"Re: {wrong}", body=wrong))  # From: Kim, written by anyone
    await rig.deliver()
    answers = [text_of(m) for m in rig.mails_to(KIM)[1:]]
    assert len(answers) == 5 and "4 tries left" in answers[0]
    assert "no longer takes tries from here" in answers[4] and "released" not in answers[4]
    assert await hold_status(rig) == "held"
    [booked] = await say_in_chat(rig, code)
    assert "Booked!" in booked.text and await hold_status(rig) == "confirmed"


async def test_an_admin_writing_her_address_in_capitals_is_still_the_verified_admin(rig):  # noqa: F811
    await rig.send(mail("AUDIT", sender="Anna <ANNA@Physio-am-Park.example>"))
    await rig.deliver()
    [answer] = rig.smtp.messages
    assert answer["To"] == "anna@physio-am-park.example" and "Audit log" in text_of(answer)
