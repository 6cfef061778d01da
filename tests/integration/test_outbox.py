"""The outbox worker and the mail transports against a real SMTP server (SQLite and PostgreSQL)."""
import asyncio
import base64
import email
import email.policy
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.mail.smtp import EmlDirTransport, SmtpTransport, transport_for
from bot.outbox import RECORD_EVERY, OutboxWorker
from storage.db import Store
from storage.models import Outbox
from tests.helpers import make_row
from tests.smtp import SmtpServer, smtp_server  # noqa: F401

SENDER = "Praxis Müller <desk@example.com>"
ICS = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"


async def add_rows(store, rows: list[Outbox]) -> list[Outbox]:
    async with store.uow() as uow:
        uow.session.add_all(rows)
        await uow.commit()
    return rows


async def reload(store, row_id: int) -> Outbox:
    async with store.uow() as uow:
        return await uow.session.get(Outbox, row_id)


async def statuses(store) -> dict[str, int]:
    async with store.uow() as uow:
        found = (await uow.session.scalars(select(Outbox.status))).all()
    return {status: found.count(status) for status in set(found)}


@pytest.fixture
async def smtp(smtp_server):  # noqa: F811 - the fixture imported above
    transport = SmtpTransport(smtp_server.url, SENDER, timeout=5)
    yield transport
    await transport.close()


async def test_one_connection_carries_many_mails(store, clock, smtp_server, smtp):  # noqa: F811
    rows = await add_rows(store, [make_row(clock, to=f"c{i}@example.com") for i in range(12)])
    worker = OutboxWorker(store, {"email": smtp}, clock, batch=5)
    assert await worker.drain() == 12
    assert smtp_server.handler.connections == 1
    assert sorted(m["Message-ID"] for m in smtp_server.messages) == sorted(r.headers["Message-ID"] for r in rows)
    assert await statuses(store) == {"sent": 12}
    sent = await reload(store, rows[0].id)
    assert sent.sent_at == clock.now() and sent.claimed_until is None


async def test_umlauts_and_html_survive_the_trip(store, clock, smtp_server, smtp):  # noqa: F811
    await add_rows(store, [make_row(clock, subject="Terminbestätigung für Jürgen Größe",
                                    text="Grüße aus München – bis Dienstag!", html="<p>Grüße aus <b>München</b></p>")])
    assert await OutboxWorker(store, {"email": smtp}, clock).drain() == 1
    msg = smtp_server.messages[0]
    assert msg["Subject"] == "Terminbestätigung für Jürgen Größe"
    assert msg["From"].addresses[0].display_name == "Praxis Müller"
    assert msg.get_body(("plain",)).get_content().strip() == "Grüße aus München – bis Dienstag!"
    assert msg.get_body(("html",)).get_content().strip() == "<p>Grüße aus <b>München</b></p>"
    assert msg.get_content_type() == "multipart/alternative"
    smtp_server.handler.raw[0].decode("ascii")  # encoded for the wire: no raw 8-bit bytes


async def test_loop_protection_and_threading_headers_are_sent(store, clock, smtp_server, smtp):  # noqa: F811
    row = make_row(clock, headers={
        "Message-ID": "<r1@frontdesk.test>", "Auto-Submitted": "auto-replied", "In-Reply-To": "<q1@example.com>",
        "References": "<q0@example.com> <q1@example.com>"})
    await add_rows(store, [row])
    await OutboxWorker(store, {"email": smtp}, clock).drain()
    msg = smtp_server.messages[0]
    assert (msg["Message-ID"], msg["Auto-Submitted"], msg["X-Auto-Response-Suppress"]) == (
        "<r1@frontdesk.test>", "auto-replied", "All")
    assert msg["In-Reply-To"] == "<q1@example.com>"
    assert msg["References"] == "<q0@example.com> <q1@example.com>"
    assert smtp_server.handler.envelopes[0] == ("desk@example.com", ["kim@example.com"])


async def test_smtp_outage_keeps_rows_then_delivers_each_exactly_once(store, clock, smtp_server, smtp):  # noqa: F811
    rows = await add_rows(store, [make_row(clock, to=f"c{i}@example.com") for i in range(3)])
    worker = OutboxWorker(store, {"email": smtp}, clock)
    smtp_server.stop()
    assert await worker.drain() == 0
    for row in rows:
        failed = await reload(store, row.id)
        assert (failed.status, failed.attempts, failed.claimed_until) == ("pending", 1, None)
        assert "connect" in failed.last_error
        assert failed.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert await worker.drain() == 0  # not due yet: no second attempt
    assert (await reload(store, rows[0].id)).attempts == 1
    smtp_server.start()
    clock.advance(minutes=1)
    assert await worker.drain() == 3
    assert await worker.drain() == 0
    assert sorted(m["To"] for m in smtp_server.messages) == ["c0@example.com", "c1@example.com", "c2@example.com"]
    assert await statuses(store) == {"sent": 3}


async def test_a_dropped_connection_is_reopened_transparently(store, clock, smtp_server, smtp):  # noqa: F811
    worker = OutboxWorker(store, {"email": smtp}, clock)
    await add_rows(store, [make_row(clock)])
    assert await worker.drain() == 1
    smtp_server.stop()  # cuts the connection the transport keeps open
    smtp_server.start()
    second = (await add_rows(store, [make_row(clock)]))[0]
    assert await worker.drain() == 1
    assert (await reload(store, second.id)).attempts == 1
    assert smtp_server.handler.connections == 2


async def test_a_550_reply_gives_up_after_one_try(store, clock, smtp_server, smtp, caplog):  # noqa: F811
    smtp_server.handler.refuse["nobody@example.com"] = "550 5.1.1 No such user"
    bad, good = await add_rows(store, [make_row(clock, to="nobody@example.com"), make_row(clock)])
    worker = OutboxWorker(store, {"email": smtp}, clock)
    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        assert await worker.drain() == 1
    failed = await reload(store, bad.id)
    assert (failed.status, failed.attempts) == ("given_up", 1)
    assert "550" in failed.last_error
    assert [row.id for row in await worker.given_up()] == [bad.id]
    assert (await reload(store, good.id)).status == "sent"  # the same connection went on after RSET
    assert smtp_server.handler.connections == 1
    assert any("given up" in record.message for record in caplog.records)


async def test_temporary_refusals_give_up_after_max_attempts(store, clock, smtp_server, smtp):  # noqa: F811
    smtp_server.handler.refuse["full@example.com"] = "452 4.2.2 Mailbox full"
    row = (await add_rows(store, [make_row(clock, to="full@example.com")]))[0]
    worker = OutboxWorker(store, {"email": smtp}, clock, max_attempts=3)
    waits = []
    for _ in range(3):
        await worker.drain()
        waiting = await reload(store, row.id)
        waits.append(waiting.next_attempt_at - clock.now())
        clock.advance(hours=1)
    assert (waiting.status, waiting.attempts) == ("given_up", 3)
    assert "452" in waiting.last_error
    assert waits[:2] == [timedelta(seconds=30), timedelta(seconds=60)]
    assert await worker.drain() == 0 and (await reload(store, row.id)).attempts == 3


async def test_eml_files_are_complete_and_parseable(store, clock, tmp_path):
    attachment = {"name": "termin.ics", "type": "text/calendar; method=REQUEST",
                  "data": base64.b64encode(ICS.encode()).decode()}
    row = (await add_rows(store, [make_row(clock, subject="Bestätigung", text="Grüße", html="<p>Grüße</p>",
                                           attachments=[attachment])]))[0]
    outbox = tmp_path / "new" / "outbox"
    assert await OutboxWorker(store, {"email": EmlDirTransport(outbox, SENDER)}, clock).drain() == 1
    files = sorted(outbox.iterdir())
    assert [f.name for f in files] == [f"20261201-090000-{row.id:06d}.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Message-ID"] == row.headers["Message-ID"]
    assert (msg["Auto-Submitted"], msg["X-Auto-Response-Suppress"]) == ("auto-generated", "All")
    assert (msg["Subject"], msg["To"]) == ("Bestätigung", "kim@example.com")
    assert msg.get_body(("plain",)).get_content().strip() == "Grüße"
    # iMIP (RFC 6047): the calendar is an alternative of the text, with a copy attached as a file
    invitation = msg.get_body(("calendar",))
    assert (invitation.get_content_type(), invitation.get_param("method"), invitation.get_param("charset")) == (
        "text/calendar", "REQUEST", "utf-8")
    assert invitation.get_content().replace("\r\n", "\n") == ICS.replace("\r\n", "\n")
    ics = next(msg.iter_attachments())
    assert (ics.get_filename(), ics.get_content_type()) == ("termin.ics", "application/ics")
    assert ics.get_content().decode().replace("\r\n", "\n") == ICS.replace("\r\n", "\n")


async def test_text_attachments_say_their_charset(store, clock, smtp_server, smtp):  # noqa: F811
    files = [("Mitglieder.csv", "text/csv", "\ufeffName;Ort\r\nJürgen Weiß;Graz\r\n".encode()),
             ("notiz.txt", "text/plain", "Grüße".encode()),
             ("old.txt", "text/plain", "Gr\xfc\xdfe".encode("latin-1"))]  # not UTF-8: no charset is claimed
    attachments = [{"name": name, "type": mime, "data": base64.b64encode(data).decode()} for name, mime, data in files]
    await add_rows(store, [make_row(clock, attachments=attachments)])
    assert await OutboxWorker(store, {"email": smtp}, clock).drain() == 1
    msg = email.message_from_bytes(smtp_server.handler.raw[0], policy=email.policy.strict)
    found = {part.get_filename(): (part.get_content_type(), part.get_param("charset"), part.get_content())
             for part in msg.iter_attachments()}
    assert found["Mitglieder.csv"] == ("text/csv", "utf-8", "\ufeffName;Ort\r\nJürgen Weiß;Graz\r\n")
    assert found["notiz.txt"] == ("text/plain", "utf-8", "Grüße")
    assert found["old.txt"][:2] == ("text/plain", None)


async def test_two_workers_deliver_each_row_exactly_once(store_and_url, clock, smtp_server):  # noqa: F811
    store, url = store_and_url
    rows = await add_rows(store, [make_row(clock, to=f"c{i}@example.com") for i in range(40)])
    other_store = Store.from_url(url)  # a second process, in effect
    transports = [SmtpTransport(smtp_server.url, SENDER, timeout=5) for _ in range(2)]
    workers = [OutboxWorker(s, {"email": t}, clock, batch=4) for s, t in zip((store, other_store), transports)]
    try:
        counts = await asyncio.gather(*(worker.drain() for worker in workers))
    finally:
        await asyncio.gather(*(t.close() for t in transports))
        await other_store.dispose()
    assert sum(counts) == 40
    assert sorted(m["Message-ID"] for m in smtp_server.messages) == sorted(r.headers["Message-ID"] for r in rows)
    assert await statuses(store) == {"sent": 40}


async def test_racing_claims_never_overlap(store_and_url, clock, tmp_path):
    store, url = store_and_url
    other_store = Store.from_url(url)
    files = {"email": EmlDirTransport(tmp_path, SENDER)}
    workers = [OutboxWorker(s, files, clock, batch=20) for s in (store, other_store)]
    claimed = []
    try:
        for _ in range(5):  # several rounds, since two claims overlap in time only by chance
            await add_rows(store, [make_row(clock, to=f"c{i}@example.com") for i in range(10)])
            for rows in await asyncio.gather(*(worker._claim() for worker in workers)):
                claimed += [row.id for row in rows]
    finally:
        await other_store.dispose()
    assert len(claimed) == len(set(claimed)) == 50


async def test_a_claim_takes_at_most_a_batch(store, clock, tmp_path):
    await add_rows(store, [make_row(clock, to=f"c{i}@example.com") for i in range(12)])
    worker = OutboxWorker(store, {"email": EmlDirTransport(tmp_path, SENDER)}, clock, batch=7)
    assert [len(await worker._claim()) for _ in range(3)] == [7, 5, 0]


async def test_a_channel_without_transport_stays_pending_and_is_reported_once(store, clock, tmp_path, caplog):
    chat = (await add_rows(store, [make_row(clock, channel="telegram", to="telegram:7")]))[0]
    worker = OutboxWorker(store, {"email": EmlDirTransport(tmp_path, SENDER)}, clock)
    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        assert await worker.drain() == 0
        assert await worker.drain() == 0
    waiting = await reload(store, chat.id)
    assert (waiting.status, waiting.attempts, waiting.claimed_until) == ("pending", 0, None)
    assert len([r for r in caplog.records if "telegram" in r.message]) == 1


async def test_an_expired_claim_lets_another_worker_take_the_row(store, clock, tmp_path):
    row = (await add_rows(store, [make_row(clock)]))[0]
    crashed = OutboxWorker(store, {"email": EmlDirTransport(tmp_path, SENDER)}, clock)
    assert len(await crashed._claim()) == 1  # claimed, then the process died
    rescuer = OutboxWorker(store, {"email": EmlDirTransport(tmp_path, SENDER)}, clock)
    assert await rescuer.drain() == 0
    clock.advance(minutes=3)
    assert await rescuer.drain() == 1
    assert (await reload(store, row.id)).status == "sent"


class Exploding:
    """A transport that fails in a way no transport should: a plain bug."""

    async def send(self, row):
        raise RuntimeError("boom")

    async def close(self):
        pass


async def test_a_crashing_transport_counts_as_a_temporary_failure(store, clock):
    row = (await add_rows(store, [make_row(clock, channel="console", to="console:ann")]))[0]
    assert await OutboxWorker(store, {"console": Exploding()}, clock).drain() == 0
    failed = await reload(store, row.id)
    assert (failed.status, failed.attempts, failed.last_error) == ("pending", 1, "RuntimeError: boom")


class Watching:
    """SMTP that first looks what the database holds, as another process would, and may act then."""

    def __init__(self, store, smtp, before=None):
        self.store, self.smtp, self.before = store, smtp, before
        self.recorded: list[int] = []  # rows marked sent when each mail was handed over

    async def send(self, row):
        self.recorded.append((await statuses(self.store)).get("sent", 0))
        if self.before is not None:
            await self.before(len(self.recorded), row)
        await self.smtp.send(row)

    async def close(self):
        await self.smtp.close()


async def test_sent_rows_are_recorded_in_groups_before_the_next_claim(store, clock, smtp_server, smtp):  # noqa: F811
    await add_rows(store, [make_row(clock, to=f"c{i}@example.com") for i in range(2 * RECORD_EVERY + 4)])
    watching = Watching(store, smtp)
    worker = OutboxWorker(store, {"email": watching}, clock, batch=RECORD_EVERY + 3)
    at_claims: list[tuple[int, int]] = []  # (mails handed over, rows marked sent) when a claim begins
    claim = worker._claim

    async def watched_claim():
        at_claims.append((len(watching.recorded), (await statuses(store)).get("sent", 0)))
        return await claim()

    worker._claim = watched_claim
    assert await worker.drain() == 2 * RECORD_EVERY + 4
    # A crash while a mail goes out repeats it and the sent rows not recorded yet: never more than a group.
    assert max(n + 1 - done for n, done in enumerate(watching.recorded)) == RECORD_EVERY
    assert watching.recorded[:RECORD_EVERY + 1] == [0] * RECORD_EVERY + [RECORD_EVERY]
    assert all(handed == done for handed, done in at_claims)  # every claim begins with all sent rows recorded
    assert len(at_claims) >= 3  # at least two batches, and the empty round that ends the drain
    assert await statuses(store) == {"sent": 2 * RECORD_EVERY + 4}


async def test_a_row_whose_claim_was_taken_over_is_not_marked_with_its_group(store, clock, smtp_server,
                                                                             smtp, caplog):  # noqa: F811
    rows = await add_rows(store, [make_row(clock, to=f"c{i}@example.com") for i in range(4)])
    taken_over = clock.now() + timedelta(minutes=10)

    async def take_over_the_second(number, row):
        if number == 3:  # the second row was sent; its claim ran out and another worker claimed it anew
            async with store.uow() as uow:
                (await uow.session.get(Outbox, rows[1].id)).claimed_until = taken_over
                await uow.commit()

    worker = OutboxWorker(store, {"email": Watching(store, smtp, take_over_the_second)}, clock)
    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        assert await worker.drain() == 3
    other = await reload(store, rows[1].id)
    assert (other.status, other.attempts, other.claimed_until) == ("pending", 0, taken_over)
    assert [(await reload(store, r.id)).status for r in rows] == ["sent", "pending", "sent", "sent"]
    assert len([r for r in caplog.records if f"row {rows[1].id}: claim was lost" in r.message]) == 1


async def test_failures_inside_a_group_keep_their_own_outcomes(store, clock, smtp_server, smtp):  # noqa: F811
    rows = await add_rows(store, [make_row(clock, to=f"c{i}@example.com") for i in range(5)])
    smtp_server.handler.refuse = {"c1@example.com": "550 5.1.1 no such user",
                                  "c3@example.com": "451 4.3.0 try again later"}
    watching = Watching(store, smtp)
    assert await OutboxWorker(store, {"email": watching}, clock).drain() == 3
    found = [await reload(store, r.id) for r in rows]
    assert [(r.status, r.attempts) for r in found] == [("sent", 1), ("given_up", 1), ("sent", 1), ("pending", 1),
                                                       ("sent", 1)]
    assert found[3].next_attempt_at > clock.now() and found[3].claimed_until is None
    assert all(r.sent_at == clock.now() for r in found if r.status == "sent")
    assert watching.recorded == [0] * 5  # the failures did not record the group's sent rows early


async def test_run_delivers_until_stopped(store, clock, smtp_server, smtp):  # noqa: F811
    stop = asyncio.Event()
    task = asyncio.create_task(OutboxWorker(store, {"email": smtp}, clock).run(stop, interval=0.01))
    await add_rows(store, [make_row(clock)])
    for _ in range(500):
        if smtp_server.messages:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(smtp_server.messages) == 1


async def test_run_survives_a_broken_round(clock, tmp_path, caplog):
    broken = Store.from_url(f"sqlite+aiosqlite:///{tmp_path}/unmigrated.db")  # no outbox table
    stop = asyncio.Event()
    worker = OutboxWorker(broken, {}, clock)
    with caplog.at_level(logging.ERROR, logger="bot.periodic"):
        task = asyncio.create_task(worker.run(stop, interval=0.01))
        await asyncio.sleep(0.1)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    await broken.dispose()
    assert len([r for r in caplog.records if "outbox round failed" in r.message]) >= 2


async def test_smtp_login_uses_the_decoded_url_credentials(store, clock):
    server = SmtpServer(credentials=("desk@example.com", "pä:ss/wort"))
    server.start()
    transport = SmtpTransport(f"smtp://desk%40example.com:p%C3%A4%3Ass%2Fwort@127.0.0.1:{server.port}", SENDER)
    try:
        await add_rows(store, [make_row(clock)])
        assert await OutboxWorker(store, {"email": transport}, clock).drain() == 1
    finally:
        await transport.close()
        server.stop()
    assert len(server.messages) == 1


async def test_wrong_smtp_password_keeps_mail_for_later(store, clock):
    server = SmtpServer(credentials=("desk", "right"))
    server.start()
    transport = SmtpTransport(f"smtp://desk:wrong@127.0.0.1:{server.port}", SENDER)
    try:
        row = (await add_rows(store, [make_row(clock)]))[0]
        assert await OutboxWorker(store, {"email": transport}, clock).drain() == 0
    finally:
        await transport.close()
        server.stop()
    failed = await reload(store, row.id)
    assert (failed.status, failed.attempts) == ("pending", 1)


def test_transport_follows_the_settings(tmp_path):
    smtp = transport_for(SimpleNamespace(smtp_url="smtp://h:2525", mail_from=SENDER, outbox_dir=tmp_path))
    assert isinstance(smtp, SmtpTransport) and smtp.sender == "desk@example.com"
    files = transport_for(SimpleNamespace(smtp_url="", mail_from="", outbox_dir=tmp_path))
    assert isinstance(files, EmlDirTransport) and files.mail_from == "frontdesk@localhost"


