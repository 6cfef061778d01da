"""`forget` and the files of delivered mails, against a real store (SQLite and PostgreSQL).

A file we made records whom it names (an invoice's PDF and XML: the buyer; a week picture: its staff and
the customers it shows), and erasing one of them drops it from every delivered mail without reading it,
a PDF or PNG too. A file without that record (a row from before it) still goes through the text search."""
from __future__ import annotations

import base64

from sqlalchemy import select

from handlers.invoices import Line, issue_invoice
from handlers.privacy.rules import pseudonym
from handlers.speaking import mail_row
from storage.models import Address, Outbox
from templates import Rendered
from tests.conftest import SECRET, inbound
from tests.helpers import Chat, mails_to, rows, set_business
from tests.integration.test_booking import book_and_confirm, chat, customer, desk  # noqa: F401
from tests.integration.test_privacy import ADMIN, KIM, KIM_EMAIL, NEEDLES, OWNER, deliver, rich_kim

ANNA_EMAIL = "anna@physio-am-park.example"  # the owner, an admin: `invoice NUMBER` mails her a copy
LUKAS_EMAIL = "lukas@physio-am-park.example"  # staff; his calendar shows Kim's massage on Tuesday
TOM, TOM_EMAIL, TOM_NAME = "telegram:5552000", "tom.other@example.org", "Tom Otherperson"
BOSS = "boss@example.org"


async def forget(desk, pid: int) -> None:
    """Erase a person as an admin does: the question, then Erase."""
    ada = Chat(desk, desk.clock, ADMIN)
    [question] = await ada.send(f"/forget {pid}")
    assert (await ada.tap(question, "Erase"))[0].template == "privacy_forgotten"


async def tom(desk, store) -> int:
    """Another customer, Tom, with a massage with Lukas the week after Kim's; his person id."""
    someone = await customer(desk, store, TOM, TOM_EMAIL)
    await someone.send(f"/name {TOM_NAME}")
    await book_and_confirm(desk, store, someone, TOM_EMAIL, "/book Massage 2026-12-15 10:00 Lukas Huber")
    async with store.uow() as uow:
        return await uow.session.scalar(select(Address.person_id).where(Address.address == TOM))


async def invoice_for(store, now, pid: int, buyer_name: str) -> str:
    """An invoice to `pid` under a billing name that is not their own; its number."""
    async with store.uow() as uow:
        invoice = await issue_invoice(uow, buyer_person_id=pid, buyer_name=buyer_name,
                                      buyer_address="Parkweg 3\n4020 Linz", lines=[Line("Massage", 1, 6_000)],
                                      source="test", now=now)
        await uow.commit()
        return invoice.number


def decoded(file: dict) -> str:
    return base64.b64decode(file["data"]).decode("utf-8", "replace")


async def test_forget_drops_the_invoice_files_that_name_the_person_and_keeps_another_buyers(desk, store):
    pid, _ = await rich_kim(desk, store)
    tom_id = await tom(desk, store)
    await set_business(store)
    now = desk.clock.now()
    kims = await invoice_for(store, now, pid, "Waldblick Handels GmbH")  # no name of hers anywhere in it
    toms = await invoice_for(store, now, tom_id, "Hafenlicht KG")
    await chat(desk, KIM).send(f"/invoice {kims}")  # mailed to her own address
    anna = chat(desk, OWNER)
    for number in (kims, toms):
        [reply] = await anna.send(f"/invoice {number}")  # a copy to the owner's address
        assert f"A copy went to {ANNA_EMAIL}" in reply.text
    await deliver(desk)
    sent_to_her = await mails_to(store, KIM_EMAIL)
    assert any(f["name"] == f"{kims}.pdf" for m in sent_to_her for f in m.attachments)
    [kim_copy, tom_copy] = [m for m in await mails_to(store, ANNA_EMAIL) if m.attachments]
    assert [f["name"] for f in kim_copy.attachments] == [f"{kims}.pdf", f"{kims}.xml"]
    assert [f["names"] for f in kim_copy.attachments + tom_copy.attachments] == [[pid]] * 2 + [[tom_id]] * 2
    assert not any(needle.casefold() in decoded(f).casefold() for f in kim_copy.attachments for needle in NEEDLES)
    toms_files = tom_copy.attachments

    await forget(desk, pid)
    [kim_copy, tom_copy] = [m for m in await mails_to(store, ANNA_EMAIL) if m.subject == kim_copy.subject
                            or m.subject == tom_copy.subject]
    assert kim_copy.status == "sent" and kim_copy.attachments == []  # both files named her: both gone
    assert tom_copy.attachments == toms_files  # Tom's stay as they were
    # her own invoice mail was emptied with every mail to her (only the cancellation notices still wait)
    assert [m.attachments for m in await mails_to(store, pseudonym(SECRET, pid))] == [[]] * len(sent_to_her)


async def week_mail(desk, store, sender: str, to: str, text: str) -> None:
    """A week picture answered by mail, as the mail intake queues it (see test_week_mail for the whole path)."""
    [reply] = await desk.handle(inbound(sender, text, clock=desk.clock))
    [picture] = [f for f in reply.attachments if f.mime == "image/png"]
    async with store.uow() as uow:
        uow.session.add(Outbox(**mail_row(desk.clock.now(), "frontdesk.test", to,
                                          Rendered(text, reply.text, None), None, [picture])))
        await uow.commit()


async def test_forget_drops_a_week_picture_showing_the_persons_appointment_and_keeps_another(desk, store):
    pid, _ = await rich_kim(desk, store)  # her massage with Lukas on Tuesday, 8 December
    tom_id = await tom(desk, store)  # his with Lukas on Tuesday, 15 December
    lukas = f"email:{LUKAS_EMAIL}"
    await week_mail(desk, store, lukas, LUKAS_EMAIL, "week 2026-12-08")
    await week_mail(desk, store, lukas, LUKAS_EMAIL, "week 2026-12-15")
    await deliver(desk)
    kims_week, toms_week = await rows(store, Outbox, Outbox.recipient == LUKAS_EMAIL, Outbox.subject.like("week %"))
    lukas_id = (await rows(store, Address, Address.address == lukas))[0].person_id
    assert kims_week.attachments[0]["names"] == sorted([lukas_id, pid])
    assert toms_week.attachments[0]["names"] == sorted([lukas_id, tom_id])
    assert decoded(kims_week.attachments[0]).startswith("\ufffdPNG")  # a picture: no text to search
    picture = toms_week.attachments

    await forget(desk, pid)
    [kims_week] = await rows(store, Outbox, Outbox.id == kims_week.id)
    [toms_week] = await rows(store, Outbox, Outbox.id == toms_week.id)
    assert kims_week.status == "sent" and kims_week.attachments == []
    assert toms_week.attachments == picture


async def test_files_without_a_record_of_whom_they_name_still_go_through_the_text_search(desk, store):
    pid, _ = await rich_kim(desk, store)
    await week_mail(desk, store, f"email:{LUKAS_EMAIL}", BOSS, "week 2026-12-08")
    [picture] = (await mails_to(store, BOSS))[0].attachments
    old_picture = {k: v for k, v in picture.items() if k != "names"}  # as rows from before the record are

    def text(name: str, content: str) -> dict:
        return {"name": name, "type": "text/plain", "data": base64.b64encode(content.encode()).decode()}

    naming_her = text("list.txt", f"10:00 Massage, {NEEDLES[0]}")
    naming_tom = text("other.txt", f"11:00 Massage, {TOM_NAME}")
    async with store.uow() as uow:
        row = (await uow.session.scalars(select(Outbox).where(Outbox.recipient == BOSS))).one()
        row.attachments = [old_picture, naming_her, naming_tom]
        await uow.commit()
    await deliver(desk)

    await forget(desk, pid)
    [row] = await mails_to(store, BOSS)
    # the text naming her is found and dropped; Tom's stays; an old picture cannot be read and stays
    assert row.status == "sent" and row.attachments == [old_picture, naming_tom]
