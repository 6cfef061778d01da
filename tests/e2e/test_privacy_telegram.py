"""`mydata` end to end: the real Telegram Application over a fake Bot API, the outbox worker and a real SMTP
server; the mail that arrives parses strictly and carries the JSON file, and nothing of it went into the chat."""
from __future__ import annotations

import email
import email.policy
import json

from bot.mail.smtp import SmtpTransport
from bot.outbox import OutboxWorker
from handlers import privacy
from tests.e2e.test_telegram import make_desk, start_bot  # noqa: F401 - start_bot is a fixture
from tests.fakebotapi import fake_bot_api  # noqa: F401
from tests.helpers import ask
from tests.smtp import smtp_server  # noqa: F401

USER, ADDRESS = 601, "kim.ott@example.org"


async def test_mydata_in_telegram_arrives_by_mail_as_a_json_file(fake_bot_api, start_bot, smtp_server, store,
                                                                  config):
    await start_bot(make_desk(store, config, privacy.handlers()))
    worker = OutboxWorker(store, {"email": SmtpTransport(smtp_server.url, "Physio <desk@example.com>")})
    [told] = await ask(fake_bot_api, USER, "/mydata")
    assert '"email ADDRESS"' in told.params["text"]
    await ask(fake_bot_api, USER, f"/email {ADDRESS}")
    assert await worker.drain() == 1
    code = smtp_server.messages[-1]["Subject"].split()[0]
    assert "is confirmed" in (await ask(fake_bot_api, USER, code))[0].params["text"]

    [sent] = await ask(fake_bot_api, USER, "/mydata")
    assert ADDRESS in sent.params["text"] and "{" not in sent.params["text"]
    assert not fake_bot_api.calls_of("sendDocument")  # the data never goes into the chat
    assert await worker.drain() == 1
    [envelope] = smtp_server.handler.envelopes[-1:]
    assert envelope[1] == [ADDRESS]
    mail = email.message_from_bytes(smtp_server.handler.raw[-1], policy=email.policy.strict)
    assert mail["To"] == ADDRESS and mail["Subject"] == "Your data" and mail["Auto-Submitted"] == "auto-generated"
    assert "everything we store about you" in mail.get_body(("plain",)).get_content()
    [file] = [part for part in mail.iter_attachments() if part.get_content_type() == "application/json"]
    assert file.get_filename().startswith("my-data-") and file.get_filename().endswith(".json")
    data = json.loads(file.get_content())
    assert data["person"]["name"] == "User601 Test"  # the name Telegram shows for the fake user
    assert {a["address"] for a in data["addresses"]} == {f"telegram:{USER}", f"email:{ADDRESS}"}
    assert {"verify_email"} <= {c["purpose"] for c in data["codes"]} and code not in json.dumps(data)
    await worker.close()
