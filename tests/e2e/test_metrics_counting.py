"""Each message counted once, as a scrape of FRONTDESK_METRICS_LISTEN read with prometheus_client's parser shows
(SQLite and PostgreSQL): a batch of mails taken again one by one after a refusal, mails failing in the intake
around their handler, and every step of the booking page (holds, codes, course places)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from bot.app import build_handlers
from bot.mail.intake import EmailEdge, Incoming
from bot.metrics import MetricsServer, start_metrics
from handlers import identity, tickets, welcome
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.router import Desk
from handlers.rules import codes
from handlers.setup import apply_setup, parse_setup
from storage.models import Code, MailIntake, Outbox
from tests.e2e.test_bookpage_course import RUECKENFIT
from tests.e2e.test_bookpage_http import TEN, open_desk
from tests.e2e.test_metrics import scrape, value
from tests.helpers import code_for, raw_mail
from tests.integration.test_courses import COURSE, EXAMPLE, NOW
from tests.integration.test_mail_batches import add_person, make_edge, question
from tests.pageclient import PageVisitor, serve_page
from tests.smtp import free_port


async def watched(desk: Desk) -> tuple[MetricsServer, str]:
    """The desk's metrics served on a free port, and their address."""
    port = free_port()
    return await start_metrics(f"127.0.0.1:{port}", desk, cache_seconds=0), f"http://127.0.0.1:{port}"


def routes(samples: dict) -> dict[str, float]:
    """The latency histogram's count by route."""
    return {dict(labels)["route"]: count for (name, labels), count in samples.items()
            if name == "frontdesk_handler_seconds_count"}


def handled(samples: dict, channel: str) -> dict[str, float]:
    """frontdesk_handled_total of one channel by outcome."""
    return {dict(labels)["outcome"]: count for (name, labels), count in samples.items()
            if name == "frontdesk_handled_total" and dict(labels)["channel"] == channel}


# ---- mail ------------------------------------------------------------------------------------------------


async def test_a_batch_taken_again_after_a_refusal_counts_each_mail_once(store, config, clock):
    await add_person(store, clock, "email:staff@example.com", "support")
    edge = make_edge(store, config, clock)
    server, url = await watched(edge.desk)
    try:
        assert await edge.take(question(1)) == "processed"
        async with store.uow() as uow:
            notice = await uow.session.scalar(select(Outbox.message_id).where(Outbox.recipient == "staff@example.com"))
            uow.session.add(Code(  # a code waiting for c9, who mails a wrong one
                address="email:c9@example.org", purpose=identity.EMAIL_COMMAND, target="help", created_at=clock.now(),
                expires_at=clock.now() + config.code_ttl, attempts=0,
                digest=codes.digest(config.secret_key, identity.EMAIL_COMMAND, "help", "654321")))
            await uow.commit()
        wrong = Incoming(raw_mail("123456", subject="", sender="C9 <c9@example.org>",
                                  headers={"Message-ID": "<w9@example.org>"}), uid=19)
        empty_answer = Incoming(raw_mail("", subject="Re: Question 1", sender="Staff <staff@example.com>",
                                         headers={"Message-ID": "<r1@example.com>", "In-Reply-To": notice}), uid=20)
        # The empty answer is refused, which undoes the batch; each mail is then taken on its own.
        assert await edge.take_all([question(2), wrong, empty_answer, question(3)]) == ["processed"] * 4
        samples = await scrape(url)
        assert handled(samples, "email") == {"answered": 4, "refused": 1}
        assert sum(routes(samples).values()) == 5 and routes(samples)["confirm"] == 1
        assert value(samples, "frontdesk_code_attempts_refused_total") == 1
        async with store.uow() as uow:
            assert await uow.session.scalar(select(Code.attempts)) == 1  # as counted: the batch's try rolled back

        # A batch that commits tells what it held back, once.
        assert await edge.take_all([question(4), question(5), question(5)]) == ["processed", "processed",
                                                                                 "duplicate"]
        samples = await scrape(url)
        assert handled(samples, "email") == {"answered": 6, "refused": 1}
        assert sum(routes(samples).values()) == 7
    finally:
        await server.close()


async def explode(ctx, args: str) -> list[Reply]:
    raise RuntimeError("boom")


async def refuse_to_read(desk, inbound):
    """A preparer that fails: the mail fails in the intake before its handler runs."""
    if "unreadable" in inbound.text:
        raise OSError("cannot read the upload")
    return inbound


async def test_a_mail_failing_around_its_handler_is_one_error_and_one_failing_in_it_too(store, config, clock):
    await add_person(store, clock, "email:staff@example.com", "support")
    desk = Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), tickets.handlers(), Handlers(
        commands=[Command("boom", explode, safe=True)], preparers=[refuse_to_read])), clock)
    edge = EmailEdge(desk, store, clock)
    server, url = await watched(desk)

    def mail(n: int, body: str) -> Incoming:
        return Incoming(raw_mail(body, subject="", sender=f"Kim {n} <k{n}@example.org>",
                                 headers={"Message-ID": f"<m{n}@example.org>"}), uid=n)

    try:
        assert await edge.take(mail(1, "This one is unreadable")) == "failed"
        samples = await scrape(url)
        assert handled(samples, "email") == {"error": 1} and routes(samples) == {"other": 1}
        # In a batch: the unreadable one fails it before its transaction, the exploding one in its handler.
        statuses = await edge.take_all([mail(2, "Do you open on Saturday?"), mail(3, "Also unreadable"),
                                        mail(4, "BOOM")])
        assert statuses == ["processed", "failed", "failed"]
        samples = await scrape(url)
        assert handled(samples, "email") == {"answered": 1, "error": 3}
        assert routes(samples) == {"other": 3, "boom": 1}
        async with store.uow() as uow:
            kept = (await uow.session.scalars(select(MailIntake.uid).where(MailIntake.status == "failed")
                                              .order_by(MailIntake.uid))).all()
        assert kept == [1, 3, 4]  # counted, and kept for a retry
    finally:
        await server.close()


# ---- the booking page ------------------------------------------------------------------------------------


async def test_each_booking_page_step_is_counted_once_by_its_name_and_outcome(store, config, clock):
    desk = await open_desk(store, config, clock)
    server, url = await watched(desk)
    page = await serve_page(desk)
    kim = PageVisitor(f"http://127.0.0.1:{page.port}", clock)
    try:
        assert (await kim.get("/book")).status == 200  # walk
        sent = await kim.hold("Kim Lee", "kim@example.com", **TEN)  # walk (the form), hold
        assert sent.status == 303 and sent.location
        assert (await kim.get(sent.location)).status == 200  # code
        right = await code_for(store, "kim@example.com")
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        assert (await kim.enter(sent.location, wrong)).status == 422  # confirm, refused
        assert (await kim.enter(sent.location, "12ab")).status == 422  # confirm, refused: malformed
        assert (await kim.enter(sent.location, right)).status == 303  # confirm
        assert (await kim.get("/book/code", hold="not-ours")).status == 404  # code, refused
        eleven = {**TEN, "time": "11:00"}
        robot = await kim.hold("Bot", "bot@example.com", website="http://spam.example", **eleven)  # walk, hold
        assert robot.status == 400
        assert (await kim.get("/book.css")).status == 200  # a file: no step
        samples = await scrape(url)
        assert handled(samples, "web") == {"answered": 6, "refused": 4}
        assert routes(samples) == {"page:walk": 3, "page:hold": 2, "page:code": 2, "page:confirm": 3}
        assert value(samples, "frontdesk_code_attempts_refused_total") == 1
        assert handled(samples, "email") == {} and handled(samples, "telegram") == {}
    finally:
        await page.close()
        await server.close()


async def test_course_places_on_the_booking_page_are_counted_as_their_steps(store, config, clock):
    clock.current = NOW
    async with store.uow() as uow:
        await apply_setup(uow, parse_setup(EXAMPLE.read_text() + COURSE, "practice.toml"), clock.now())
        await uow.commit()
    desk = Desk(store, config, build_handlers(), clock)
    server, url = await watched(desk)
    page = await serve_page(desk)
    kim = PageVisitor(f"http://127.0.0.1:{page.port}", clock)
    try:
        assert (await kim.get("/book", course="no such course")).status == 200  # course: a refusal, said kindly
        joined = await kim.hold("Kim Lee", "kim@example.com", course=RUECKENFIT)  # course (the form), join
        assert joined.status == 303 and joined.location
        token = parse_qs(urlsplit(joined.location).query)["place"][0]
        assert (await kim.get(joined.location)).status == 200  # code
        code = await code_for(store, "kim@example.com")
        assert (await kim.post("/book/code", {"place": token, "code": code})).status == 303  # confirm
        unfilled = await kim.hold("", "not an address", course=RUECKENFIT)  # course, join: the form again
        assert unfilled.status == 422
        samples = await scrape(url)
        assert routes(samples) == {"page:course": 3, "page:join": 2, "page:code": 1, "page:confirm": 1}
        assert handled(samples, "web") == {"answered": 6, "refused": 1}
    finally:
        await page.close()
        await server.close()
