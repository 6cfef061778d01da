"""`export licences`: an admin exports every licence's schools, a buyer their own, anyone else an empty list;
fields are chosen, XLSX is a spreadsheet, and the German word works. SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io
import re

from openpyxl import load_workbook

from bot.app import build_handlers
from handlers.messages import Attachment
from handlers.router import Desk
from storage.models import Licence, Outbox
from tests.helpers import rows
from tests.integration.test_licences import (
    ADMIN,
    CARRIER,
    OTHER,
    XLSX,
    licence_desk,
    load_directory,
    message,
    workbook,
)


def table(file: Attachment) -> list[dict[str, str]]:
    assert file.mime == "text/csv" and file.data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(file.data.decode("utf-8-sig")), delimiter=";"))


async def exported(desk: Desk, clock, sender: str, line: str) -> Attachment:
    [reply] = await desk.handle(message(sender, line, clock))
    assert reply.attachments, reply.text
    return reply.attachments[0]


async def test_admins_export_all_licences_buyers_their_own(store, config, clock):
    seeded = await licence_desk(store, config, clock)
    await load_directory(seeded, clock)
    listed = workbook([("100", "GS Am Hafen", "Frau Adler", "adler@nord.example"),
                       ("101", "GS Lindenweg", "Herr Berg", "berg@nord.example"),
                       ("200", "Gymnasium Nord", "Frau Conrad", "conrad@nord.example"),
                       ("201", "Gymnasium West", "Herr Dorn", "dorn@nord.example")])
    await seeded.handle(message(CARRIER, "/licence Mathe", clock, Attachment("liste.xlsx", XLSX, listed)))
    [ordered] = await seeded.handle(message(CARRIER, "/licence Mathe confirm", clock))
    assert ordered.template == "licences_ordered", ordered.text
    [licence] = await rows(store, Licence)
    [activation] = await rows(store, Outbox, Outbox.recipient == "conrad@nord.example")
    code = re.match(r"(\d{6}) ", activation.subject).group(1)
    [ok] = await seeded.handle(message("email:conrad@nord.example", code, clock))
    assert ok.template == "licences_activated"
    desk = Desk(store, config, build_handlers(), clock)

    everything = table(await exported(desk, clock, ADMIN, "/export licences"))
    assert list(everything[0]) == ["licence", "product", "carrier", "status", "ends_on", "school_id", "school",
                                   "state"]
    assert [(r["licence"], r["school_id"], r["school"], r["state"], r["carrier"], r["ends_on"])
            for r in everything] == [
        (str(licence.id), "100", "GS Am Hafen", "pending", "Stadt Nord", "2027-12-01"),
        (str(licence.id), "101", "GS Lindenweg", "pending", "Stadt Nord", "2027-12-01"),
        (str(licence.id), "200", "Gymnasium Nord", "activated", "Stadt Nord", "2027-12-01"),
        (str(licence.id), "201", "Gymnasium West", "pending", "Stadt Nord", "2027-12-01")]

    own = table(await exported(desk, clock, CARRIER, "/export lizenzen school_id,contact,email,credit_cents"))
    assert own == [{"school_id": "100", "contact": "Frau Adler", "email": "adler@nord.example", "credit_cents": "0"},
                   {"school_id": "101", "contact": "Herr Berg", "email": "berg@nord.example", "credit_cents": "6937"},
                   {"school_id": "200", "contact": "Frau Conrad", "email": "conrad@nord.example",
                    "credit_cents": "0"},
                   {"school_id": "201", "contact": "Herr Dorn", "email": "dorn@nord.example", "credit_cents": "0"}]

    sheet = await exported(desk, clock, ADMIN, "/export licences xlsx school_id,state")
    assert sheet.name.endswith(".xlsx")
    cells = list(load_workbook(io.BytesIO(sheet.data), read_only=True).active.iter_rows(values_only=True))
    assert [tuple(str(c) for c in row) for row in cells] == [
        ("school_id", "state"), ("100", "pending"), ("101", "pending"), ("200", "activated"), ("201", "pending")]

    [others] = await desk.handle(message(OTHER, "/export licences", clock))
    assert others.text.startswith("0 rows of licences") and table(others.attachments[0]) == []
