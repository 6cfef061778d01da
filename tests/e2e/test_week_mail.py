"""`WEEK` by mail, end to end: IMAP in, the desk, the outbox, SMTP out.

The answer carries the week's text as its body and the PNG as an attachment, and reads cleanly with
Python's email package in strict mode. Runs on SQLite and PostgreSQL.
"""
from __future__ import annotations

import base64
import email
import email.policy
import io

from PIL import Image
from sqlalchemy import select

from storage.models import Outbox
from tests.e2e.test_email import kims_appointment, mail, rig, text_of  # noqa: F401 - rig is a fixture
from tests.imap import imap_server  # noqa: F401
from tests.smtp import smtp_server  # noqa: F401

ANNA = "anna@physio-am-park.example"  # the owner; the setup file verified her address


def strictly(raw: bytes) -> email.message.EmailMessage:
    """Parse as email.policy.strict does (it raises on a defect), and find no defect in any part either."""
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    assert all(not part.defects for part in message.walk())
    return message


async def test_week_by_mail_answers_with_the_text_and_a_png_attachment(rig):  # noqa: F811
    await kims_appointment(rig)  # a massage with Lukas on Tuesday at 10:00
    await rig.send(mail("WEEK 2026-12-08", sender=f"Anna Berger <{ANNA}>", lang="en"))
    assert await rig.deliver() == 1  # `week` only reads: it runs without a code round trip
    [raw] = [r for r, m in zip(rig.smtp.handler.raw, rig.smtp.messages) if m["To"] == ANNA]
    answer = strictly(raw)
    assert answer["Subject"] == "Re: WEEK 2026-12-08" and answer["Auto-Submitted"] == "auto-replied"
    body = text_of(answer)
    assert "Tuesday, December 8, 2026" in body and "Massage · Kim Ott · Lukas Huber" in body
    [picture] = [part for part in answer.iter_attachments() if part.get_content_type() == "image/png"]
    assert picture.get_filename().endswith("-2026-12-07.png") and picture["Content-Transfer-Encoding"] == "base64"
    image = Image.open(io.BytesIO(picture.get_content()))
    assert image.format == "PNG" and image.size == (2444, 1122)  # Anna's and Lukas's lanes, 08:00-19:00
    assert (46, 134, 222) in {colour for _, colour in image.convert("RGB").getcolors(1 << 16)}  # the massage
    async with rig.store.uow() as uow:
        [row] = (await uow.session.scalars(select(Outbox).where(Outbox.recipient == ANNA))).all()
    [stored] = row.attachments  # drawn in a thread while the mail was taken in, kept with the answer
    assert row.status == "sent" and base64.b64decode(stored["data"]) == picture.get_content()


async def test_a_day_that_does_not_exist_by_mail_gets_the_reason_and_no_picture(rig):  # noqa: F811
    await rig.send(mail("WOCHE 2026-02-30", sender=f"Anna Berger <{ANNA}>", lang="de"))
    await rig.deliver()
    [raw] = [r for r, m in zip(rig.smtp.handler.raw, rig.smtp.messages) if m["To"] == ANNA]
    answer = strictly(raw)
    assert "2026-02-30" in text_of(answer) and "28" in text_of(answer)
    assert list(answer.iter_attachments()) == []
