"""Bulk import through the real PTB Application and the fake Bot API: a CSV document in, a summary, an error
file and a confirm button out."""
from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from handlers import identity, members, welcome
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import ImportBatch, Member, Membership, Outbox, SeatGroup
from tests.e2e.test_telegram import ask, buttons, click, start_bot, to_chat  # noqa: F401 - start_bot is a fixture
from tests.fakebotapi import fake_bot_api  # noqa: F401
from tests.helpers import set_business

MANAGER = 1501
LIST = ("Name;E-Mail\n"
        "Kim Meyer;kim@example.com\n"
        "Bo;=HYPERLINK(\"http://x\")\n"
        "Lu Li;lu@example.com\n").encode("cp1252")


@pytest.fixture(autouse=True)
async def invoice_data(store) -> None:
    """Every seat order is invoiced: the business has what an invoice needs."""
    await set_business(store)


def make_desk(store, config, **limits) -> Desk:
    parts = (welcome.handlers(), identity.handlers(), members.group_handlers(**limits))
    return Desk(store, config, Handlers.combine(*parts))


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# 50 000 rows with phone numbers: reading and checking them takes seconds.
SLOW_LIST = ("Name;E-Mail;Telefon\n" + "".join(
    f"Person {n};p{n}@example.com;+49 30 {1_000_000 + n}\n" for n in range(50_000))).encode()


def small_workbook() -> bytes:
    book = Workbook()
    for row in (["Name", "E-Mail"], ["Kim Meyer", "kim@example.com"]):
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rewritten(data: bytes, part: str, change) -> bytes:
    """The workbook with one XML part changed (a crafted file that claims sizes it does not have)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            target.writestr(item.filename, change(content.decode()).encode() if item.filename == part else content)
    return out.getvalue()


def with_shared_strings(data: bytes) -> bytes:
    """A workbook that keeps its texts as shared strings, as Excel does."""
    strings = '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="4000000" ' \
              'uniqueCount="4000000"><si><t>Name</t></si><si><t>E-Mail</t></si></sst>'
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, source.read(item.filename))
        target.writestr("xl/sharedStrings.xml", strings)
    return out.getvalue()


async def summary_after(fake, user_id: int, push, timeout: float = 60) -> str:
    """Push a message and return the text of the bot's next message to that chat."""
    sent = len(fake.calls_of("sendMessage", to_chat(user_id)))
    push()
    calls = await fake.wait_for("sendMessage", to_chat(user_id), count=sent + 1, timeout=timeout)
    return calls[sent].params["text"]


async def count(store, model) -> int:
    async with store.uow() as uow:
        return await uow.session.scalar(select(func.count()).select_from(model))


async def test_a_csv_document_is_checked_answered_with_an_error_file_and_imported_on_the_button(
        fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config))
    [bought] = await ask(fake_bot_api, MANAGER, '/group new "Team Nord" 3 group')
    assert 'the group "Team Nord" has 3 seats' in bought.params["text"]

    sent = len(fake_bot_api.calls_of("sendMessage", to_chat(MANAGER)))
    fake_bot_api.push_document(MANAGER, "teilnehmer.csv", LIST, caption='/import "Team Nord"')
    [summary] = (await fake_bot_api.wait_for("sendMessage", to_chat(MANAGER), count=sent + 1))[sent:]
    assert "2 new members" in summary.params["text"] and "1 invalid row" in summary.params["text"]
    assert [[b["text"] for b in row] for row in buttons(summary)] == [["Import 2"]]
    [document] = await fake_bot_api.wait_for("sendDocument", to_chat(MANAGER))
    upload = document.params["document"]
    assert upload.filename == "import-errors-Team-Nord.csv"
    table = list(csv.reader(io.StringIO(upload.data.decode("utf-8-sig")), delimiter=";"))
    assert table[1] == ["3", "'=HYPERLINK(\"http://x\")", "not an email address"]  # neutralised for Excel
    assert await count(store, Membership) == 0  # nothing imported before the button

    [done] = await click(fake_bot_api, MANAGER, summary, "Import 2")
    assert "Imported 2 members" in done.params["text"] and "3 bought, 2 taken, 1 free" in done.params["text"]
    assert await count(store, Membership) == 2 and await count(store, Member) == 2
    async with store.uow() as uow:
        assert (await uow.session.scalar(select(SeatGroup.seats_taken))) == 2
        invitations = (await uow.session.scalars(select(Outbox.recipient).where(
            Outbox.subject.like("%invitation%")).order_by(Outbox.recipient))).all()
    assert invitations == ["kim@example.com", "lu@example.com"]


async def test_an_invited_member_accepts_in_telegram_by_the_deep_link(fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config))
    await ask(fake_bot_api, MANAGER, '/group new "Team Nord" 3 group')
    await ask(fake_bot_api, MANAGER, '/enroll "Team Nord" Kim Meyer kim@example.com')
    async with store.uow() as uow:
        text = await uow.session.scalar(select(Outbox.text).where(Outbox.recipient == "kim@example.com"))
    payload = text.split('send "/start ', 1)[1].split('"', 1)[0]
    [greeting] = await ask(fake_bot_api, 1502, f"/start {payload}")
    assert "invitation is accepted" in greeting.params["text"] and "Team Nord" in greeting.params["text"]
    async with store.uow() as uow:
        assert (await uow.session.scalar(select(Member.status))) == "activated"


async def test_a_workbook_declaring_millions_of_strings_or_a_huge_sheet_is_refused_naming_the_limit(
        fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config))
    await ask(fake_bot_api, MANAGER, '/group new "Team Nord" 3 group')
    strings = with_shared_strings(small_workbook())
    text = await summary_after(fake_bot_api, MANAGER, lambda: fake_bot_api.push_document(
        MANAGER, "liste.xlsx", strings, XLSX_TYPE, caption='/import "Team Nord"'))
    assert "declares 4,000,000 different texts; a member list may have at most 500,000" in text
    wide = rewritten(small_workbook(), "xl/worksheets/sheet1.xml",
                     lambda xml: re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:CV26000"', xml))
    text = await summary_after(fake_bot_api, MANAGER, lambda: fake_bot_api.push_document(
        MANAGER, "liste.xlsx", wide, XLSX_TYPE, caption='/import "Team Nord"'))
    assert "spans 26,000 rows × 100 columns; at most 1,000,000 cells can be read" in text
    assert await count(store, Membership) == 0


async def test_another_chat_is_answered_while_a_long_list_is_read(fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config))
    await ask(fake_bot_api, MANAGER, '/group new "Team Nord" 3 group')
    sent = len(fake_bot_api.calls_of("sendMessage", to_chat(MANAGER)))
    fake_bot_api.push_document(MANAGER, "liste.csv", SLOW_LIST, caption='/import "Team Nord"')
    await asyncio.sleep(1)  # the list is being read now
    [helped] = await ask(fake_bot_api, 1777, "/help")
    assert "/help" in helped.params["text"]
    assert len(fake_bot_api.calls_of("sendMessage", to_chat(MANAGER))) == sent  # the import is not answered yet
    [summary] = (await fake_bot_api.wait_for("sendMessage", to_chat(MANAGER), count=sent + 1, timeout=60))[sent:]
    assert "50000 new members" in summary.params["text"]


async def test_a_list_that_takes_too_long_is_stopped_and_the_manager_told(fake_bot_api, start_bot, store, config):
    await start_bot(make_desk(store, config, parse_seconds=2))
    await ask(fake_bot_api, MANAGER, '/group new "Team Nord" 3 group')
    text = await summary_after(fake_bot_api, MANAGER, lambda: fake_bot_api.push_document(
        MANAGER, "liste.csv", SLOW_LIST, caption='/import "Team Nord"'))
    assert "Reading the file took longer than 2 seconds, so I stopped" in text
    [helped] = await ask(fake_bot_api, MANAGER, "/help")  # the desk goes on
    assert "/import" in helped.params["text"]
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(ImportBatch)) == 0


OWNER = 1001


async def trust_desk(store, config) -> Desk:
    from datetime import datetime, timezone

    from handlers.bootstrap import ensure_owners

    async with store.uow() as uow:
        await ensure_owners(uow, [f"telegram:{OWNER}"], datetime.now(timezone.utc))
        await uow.commit()
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), members.group_handlers(),
                                                members.account_handlers()))


async def test_a_big_order_waits_for_the_admins_button_and_quoted_names_work_everywhere(
        fake_bot_api, start_bot, store, config):
    await start_bot(await trust_desk(store, config))
    [pending] = await ask(fake_bot_api, MANAGER, "/group new „Rückenfit Süd“ 30 group")
    assert "wait for our approval" in pending.params["text"]
    assert "1 needed, 0 free" in (await ask(fake_bot_api, MANAGER, "/enroll «Rückenfit Süd» Kim k@example.com"))[0] \
        .params["text"]
    [listing] = await ask(fake_bot_api, OWNER, "/orders")
    [approved] = await click(fake_bot_api, OWNER, listing, "Approve #1")
    assert "Order #1 is approved" in approved.params["text"]
    async with store.uow() as uow:  # the buyer's chat hears of it through the outbox
        notice = await uow.session.scalar(select(Outbox.text).where(Outbox.recipient == f"telegram:{MANAGER}"))
    assert '"Rückenfit Süd" now has 30 seats' in notice
    [enrolled] = await ask(fake_bot_api, MANAGER, "/enroll «Rückenfit Süd» Kim k@example.com")
    assert "30 bought, 1 taken" in enrolled.params["text"]
    [removed] = await ask(fake_bot_api, MANAGER, "/remove 'Rückenfit Süd' k@example.com")
    assert "seat stays taken" in removed.params["text"] and "30 bought, 1 taken" in removed.params["text"]
    [listed] = await ask(fake_bot_api, MANAGER, '/members "Rückenfit Süd"')
    assert "1 taken (1 by removed members)" in listed.params["text"]
    [refunded] = await ask(fake_bot_api, OWNER, "/refund “Rückenfit Süd” 1 enrolled by mistake")
    assert "30 bought, 0 taken" in refunded.params["text"]


async def test_a_manager_cannot_read_or_rewrite_someone_elses_record(fake_bot_api, start_bot, store, config):
    await start_bot(await trust_desk(store, config))
    await ask(fake_bot_api, OWNER, "/member add Vera Opfer victim@example.com contract=K-1")
    async with store.uow() as uow:
        before = await uow.session.scalar(select(Member))
    await ask(fake_bot_api, MANAGER, '/group new "Team Nord" 3 group')
    [enrolled] = await ask(fake_bot_api, MANAGER, '/enroll "Team Nord" Call +1-900-SCAM victim@example.com')
    assert "stays as it is" in enrolled.params["text"]
    for text in ("/member victim@example.com", f"/member set {before.person_id} first=Call", "/member list"):
        [reply] = await ask(fake_bot_api, MANAGER, text)
        assert "not available to you" in reply.params["text"] and "Vera" not in reply.params["text"], text
    async with store.uow() as uow:
        after = await uow.session.scalar(select(Member))
    assert (after.first_name, after.contract_number, after.invitation_token) == (
        "Vera", "K-1", before.invitation_token)
