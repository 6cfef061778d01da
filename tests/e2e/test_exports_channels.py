"""Exports end to end: through the real PTB Application and the fake Bot API a file arrives as a document;
by email (IMAP in, SMTP out) it comes attached to the threaded answer, and a preset waits for its code.
Runs on SQLite and PostgreSQL. Files are read back with pandas; every mail with email.policy.strict."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from bot.app import build_handlers
from handlers.router import Desk
from handlers.setup import apply_setup, load_setup
from storage.models import Audit, ExportPreset
from tests.e2e.test_email import mail, rig, text_of  # noqa: F401 - rig is a fixture
from tests.e2e.test_telegram import start_bot  # noqa: F401 - a fixture
from tests.e2e.test_tickets_trust import sent_to
from tests.fakebotapi import fake_bot_api  # noqa: F401 - a fixture
from tests.helpers import ask, count, to_chat
from tests.imap import imap_server  # noqa: F401 - a fixture the rig needs
from tests.smtp import smtp_server  # noqa: F401 - a fixture the rig needs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "practice.toml"
ANNA, LUKAS, STRANGER = 1001, 1002, 4711  # owner and provider of the practice; someone new
ANNA_MAIL = "anna@physio-am-park.example"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def practice_desk(store, config) -> Desk:
    async with store.uow() as uow:
        await apply_setup(uow, load_setup(EXAMPLE), datetime.now(timezone.utc))
        await uow.commit()
    return Desk(store, config, build_handlers())


def csv_frame(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False)


# ---- Telegram -----------------------------------------------------------------------------------------


async def test_an_export_arrives_as_a_document_in_the_chat(fake_bot_api, start_bot, store, config):
    await start_bot(await practice_desk(store, config))
    [answer] = await ask(fake_bot_api, ANNA, "/export audit xlsx action,actor")
    assert re.match(r"\d+ rows? of audit as XLSX: audit-\d{4}-\d\d-\d\d\.xlsx\nFields: action, actor$",
                    answer.params["text"])
    [document] = await fake_bot_api.wait_for("sendDocument", to_chat(ANNA))
    upload = document.params["document"]
    assert upload.filename == answer.params["text"].split(": ")[1].split("\n")[0]
    assert upload.content_type == XLSX
    table = pd.read_excel(io.BytesIO(upload.data), engine="openpyxl")
    assert list(table.columns) == ["action", "actor"] and "export" not in set(table["action"])

    await ask(fake_bot_api, ANNA, f"/export audit telegram:{ANNA}")  # what Anna did: the first export
    [_, document] = await fake_bot_api.wait_for("sendDocument", to_chat(ANNA), count=2)
    assert document.params["document"].filename.endswith(".csv")
    logged = csv_frame(document.params["document"].data)
    assert list(logged["action"]) == ["export"] and list(logged["actor"]) == [f"telegram:{ANNA}"]


async def test_a_list_one_may_not_see_sends_no_document(fake_bot_api, start_bot, store, config):
    await start_bot(await practice_desk(store, config))
    [answer] = await ask(fake_bot_api, LUKAS, "/export customers")
    assert "may not export the list customers" in answer.params["text"]
    [answer] = await ask(fake_bot_api, STRANGER, "/export bookings date,service")  # one's own: none yet
    [document] = await fake_bot_api.wait_for("sendDocument", to_chat(STRANGER))
    assert csv_frame(document.params["document"].data).columns.tolist() == ["date", "service"]
    assert fake_bot_api.calls_of("sendDocument", to_chat(LUKAS)) == []


async def test_help_names_export_in_both_languages(fake_bot_api, start_bot, store, config):
    await start_bot(await practice_desk(store, config))
    [english] = await ask(fake_bot_api, STRANGER, "/help")
    assert "/export — a list as a file (CSV for Excel, or xlsx)" in english.params["text"]
    [german] = await ask(fake_bot_api, STRANGER + 1, "/help", lang="de")
    assert "/export — eine Liste als Datei (CSV für Excel, oder xlsx)" in german.params["text"]


# ---- email --------------------------------------------------------------------------------------------


async def test_an_export_by_mail_comes_back_attached_to_the_threaded_answer(rig):  # noqa: F811 - the fixture
    await rig.send(mail("EXPORT customers xlsx name,email", sender=f"Anna Berger <{ANNA_MAIL}>",
                        message_id="<ask1@physio-am-park.example>"))
    assert await rig.deliver() == 1  # safe: a read runs without a code round trip
    [answer] = sent_to(rig, ANNA_MAIL)  # strictly parsed: no defects anywhere
    assert answer["In-Reply-To"] == "<ask1@physio-am-park.example>"
    assert re.search(r"\d+ rows? of customers as XLSX", answer.get_body(("plain",)).get_content())
    [file] = list(answer.iter_attachments())
    assert file.get_content_type() == XLSX and file.get_filename().startswith("customers-")
    table = pd.read_excel(io.BytesIO(file.get_content()), engine="openpyxl")
    assert list(table.columns) == ["name", "email"]


async def test_a_csv_export_by_mail_keeps_its_bom_and_separator(rig):  # noqa: F811
    await rig.send(mail("EXPORT bookings", sender=ANNA_MAIL))
    await rig.deliver()
    [answer] = sent_to(rig, ANNA_MAIL)
    [file] = list(answer.iter_attachments())
    data = file.get_payload(decode=True)  # the bytes as sent, before any charset is applied
    assert file.get_content_type() == "text/csv" and data.startswith(b"\xef\xbb\xbf")
    assert data.splitlines()[0] == b"\xef\xbb\xbfid;date;start;end;service;staff;customer;location;status"


async def test_saving_a_preset_by_mail_waits_for_the_code(rig):  # noqa: F811
    await rig.send(mail("EXPORT preset monthly bookings xlsx date,service", sender=ANNA_MAIL))
    await rig.deliver()
    [code_mail] = sent_to(rig, ANNA_MAIL)
    assert await rig.count(ExportPreset) == 0 and not list(code_mail.iter_attachments())
    code = code_mail["Subject"].split()[0]
    await rig.send(mail(f"Re: {code_mail['Subject']}", body=code, sender=ANNA_MAIL,
                        headers={"In-Reply-To": code_mail["Message-ID"]}))
    await rig.deliver()
    assert await rig.count(ExportPreset) == 1
    await rig.send(mail("EXPORT monthly", sender=ANNA_MAIL))  # using it only reads
    await rig.deliver()
    answer = sent_to(rig, ANNA_MAIL)[-1]
    [file] = list(answer.iter_attachments())
    assert file.get_filename().startswith("bookings-") and file.get_filename().endswith(".xlsx")


async def test_a_mail_about_an_export_that_names_no_list_is_a_question(rig):  # noqa: F811
    await rig.send(mail("Export of my invoice", body="Export of my invoice failed, can you help?",
                        sender="kim@example.org"))
    await rig.deliver()
    [answer] = sent_to(rig, "kim@example.org")
    assert "ticket #T-1" in answer.get_body(("plain",)).get_content()
    assert await count(rig.store, Audit, Audit.action == "export") == 0
