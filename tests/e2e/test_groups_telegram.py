"""Bulk import through the real PTB Application and the fake Bot API: a CSV document in, a summary, an error
file and a confirm button out."""
from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from handlers import groups, identity, welcome
from handlers.router import Desk, Handlers
from storage.models import Member, Membership, Outbox, SeatGroup
from tests.e2e.test_telegram import ask, buttons, click, start_bot, to_chat  # noqa: F401 - start_bot is a fixture
from tests.fakebotapi import fake_bot_api  # noqa: F401

MANAGER = 1501
LIST = ("Name;E-Mail\n"
        "Kim Meyer;kim@example.com\n"
        "Bo;=HYPERLINK(\"http://x\")\n"
        "Lu Li;lu@example.com\n").encode("cp1252")


def make_desk(store, config) -> Desk:
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), groups.handlers()))


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
