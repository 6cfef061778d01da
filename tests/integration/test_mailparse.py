"""Reading mail (pure), and the email edge against a real store (SQLite and PostgreSQL): retries, duplicates, loops."""
from __future__ import annotations

import email.policy
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import mailparse
from bot.email_edge import EmailEdge, Incoming, MailPolicy, email_choice, reply_subject, strip_subject
from bot.imap import batches, fetched_records, parse_imap_url
from bot.mailparse import Limits, clean, is_synthetic, parse, strip_quotes
from handlers import identity, welcome
from handlers.messages import Choice, Reply
from handlers.router import Desk, Handlers
from storage.models import Code, MailIntake, Outbox

CORPUS = Path(__file__).parents[3] / "shared" / "data" / "email-corpus"


def raw_mail(body: str = "Hello", subject: str = "Hi", sender: str = "Kim <kim@Example.ORG>", headers=None,
             charset: str = "utf-8") -> bytes:
    lines = [f"From: {sender}", f"Subject: {subject}", "MIME-Version: 1.0",
             f"Content-Type: text/plain; charset={charset}", "Content-Transfer-Encoding: 8bit"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body.encode("utf-8")


# ---- charsets and HTML -----------------------------------------------------------------------


def test_an_iso_8859_1_mail_is_decoded_in_subject_body_and_name():
    raw = ("From: =?ISO-8859-1?Q?J=FCrgen?= <j@example.org>\r\nSubject: =?iso-8859-1?q?Gr=FC=DFe?=\r\n"
           "Content-Type: text/plain; charset=ISO-8859-1\r\n\r\nSch\xf6ne Gr\xfc\xdfe\r\n").encode("latin-1")
    parsed = parse(raw)
    assert (parsed.display_name, parsed.subject, parsed.body) == ("Jürgen", "Grüße", "Schöne Grüße")


@pytest.mark.parametrize("declared, data, expected", [
    ("x-klingon", "Grüße".encode(), "Grüße"),  # unknown charset: UTF-8 fits
    ("utf-8", "Grüße".encode("latin-1"), "Grüße"),  # wrong charset: falls back to Windows-1252
    ("us-ascii", "Grüße".encode(), "Grüße"),  # 8-bit text declared ASCII
    ("base64", b"plain words", "plain words"),  # a codec that is no text encoding
])
def test_unknown_and_wrong_charsets_fall_back_without_raising(declared, data, expected):
    raw = b"From: k@example.org\r\nContent-Type: text/plain; charset=" + declared.encode() + b"\r\n\r\n" + data
    assert parse(raw).body == expected


def test_an_html_only_mail_becomes_text_and_its_blockquotes_are_quotes():
    html = ("<html><head><style>p {color: red}</style></head><body><div>BOOKINGS</div><p>Thanks &amp; bye</p>"
            "<blockquote><p>CANCEL 12</p></blockquote></body></html>")
    msg = EmailMessage()
    msg["From"] = "k@example.org"
    msg.set_content(html, subtype="html")
    parsed = parse(msg.as_bytes())
    assert parsed.body == "BOOKINGS\n\nThanks & bye\n\n> CANCEL 12"
    assert parsed.command_text == "BOOKINGS\n\nThanks & bye"


# ---- quotes and signatures -------------------------------------------------------------------


@pytest.mark.parametrize("reply", [
    "CONFIRM 123456\n\n> reply with CONFIRM 999999\n> to run: CANCEL 3",
    "CONFIRM 123456\n\nOn Mon, 7 Dec 2026 at 08:00, Physio <desk@physio.example> wrote:\n> CANCEL 3",
    "CONFIRM 123456\n\nOn Mon, 7 Dec 2026 at 08:00, Physio am Park\n<desk@physio.example> wrote:\n> CANCEL 3",
    "CONFIRM 123456\n\nAm 07.12.2026 um 08:00 schrieb Physio am Park <desk@physio.example>:\n> CANCEL 3",
    "CONFIRM 123456\n\n-----Original Message-----\nFrom: Physio\nSent: Monday\nCANCEL 3",
    "CONFIRM 123456\n\n________________________________\nVon: Physio\nGesendet: Montag\nCANCEL 3",
    "CONFIRM 123456\n\nVon: Physio am Park <desk@physio.example>\nGesendet: Montag, 7. Dezember 2026\nCANCEL 3",
    "CONFIRM 123456\n-- \nKim Ott\nCANCEL 3",
    "CONFIRM 123456\n\nSent from my iPhone\n\nCANCEL 3",
])
def test_quotes_and_signatures_are_stripped_for_commands(reply):
    assert strip_quotes(reply) == "CONFIRM 123456"
    assert "CANCEL 3" in parse(raw_mail(reply)).body  # the whole text stays for tickets


def test_a_bottom_posted_answer_survives_quote_stripping():
    assert strip_quotes("On Mon, Kim wrote:\n> question?\n\nCONFIRM 123456") == "CONFIRM 123456"


# ---- loops -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, value", [
    ("Auto-Submitted", "auto-replied"), ("Auto-Submitted", "auto-generated"), ("Precedence", "bulk"),
    ("Precedence", "junk"), ("Precedence", "list"), ("X-Auto-Response-Suppress", "All"),
    ("List-Id", "<news.example.org>"), ("List-Unsubscribe", "<mailto:leave@example.org>"), ("Return-Path", "<>"),
])
def test_loop_markers_make_a_mail_automatic(name, value):
    assert parse(raw_mail(headers={name: value})).automatic


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@mx.example.org", "postmaster@example.org", "no-reply@shop.example", "noreply@shop.example",
    "do-not-reply@shop.example", "Mail Delivery <>",
])
def test_robot_senders_are_automatic(sender):
    assert parse(raw_mail(sender=sender)).automatic


def test_a_person_writing_is_not_automatic():
    assert not parse(raw_mail(headers={"Auto-Submitted": "no", "Precedence": "first-class",
                                        "Return-Path": "<kim@example.org>"})).automatic


def test_a_delivery_report_is_automatic():
    raw = (b"From: mx@example.org\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B--\r\n")
    assert parse(raw).automatic


# ---- identity of a mail ----------------------------------------------------------------------


def test_a_mail_without_message_id_gets_a_stable_synthetic_id():
    first, again, other = parse(raw_mail()), parse(raw_mail()), parse(raw_mail("Other"))
    assert first.message_id == again.message_id != other.message_id
    assert is_synthetic(first.message_id) and len(first.message_id) <= 255


def test_an_overlong_message_id_is_hashed_to_fit():
    parsed = parse(raw_mail(headers={"Message-ID": f"<{'x' * 300}@example.org>"}))
    assert is_synthetic(parsed.message_id) and len(parsed.message_id) <= 255


def test_threading_headers_are_read():
    parsed = parse(raw_mail(headers={"Message-ID": "<c@x>", "In-Reply-To": "<b@x>", "References": "<a@x>\r\n <b@x>"}))
    assert (parsed.message_id, parsed.in_reply_to, parsed.references) == ("<c@x>", "<b@x>", ("<a@x>", "<b@x>"))


@pytest.mark.parametrize("sender, expected", [
    ("Kim <Kim.Ott@Example.ORG>", "kim.ott@example.org"), ("kim@example.org (Kim)", "kim@example.org"),
    ("undisclosed-recipients:;", None), ("foo", None), ("", None),
])
def test_the_sender_address_is_in_lower_case_or_none(sender, expected):
    assert parse(raw_mail(sender=sender)).sender == expected


def test_nul_bytes_and_lone_surrogates_are_cleaned():
    assert clean("a\x00b\udcfc") == "ab?"
    parsed = parse(b"From: k@example.org\r\nSubject: x\x00y\r\n\r\nbody\x00text")
    assert "\x00" not in parsed.subject + parsed.body


# ---- attachments -----------------------------------------------------------------------------


def test_attachments_are_kept_up_to_the_limits_and_the_rest_refused():
    msg = EmailMessage()
    msg["From"] = "k@example.org"
    msg.set_content("see attached")
    for name, size in (("a.pdf", 40), ("b.pdf", 120), ("c.pdf", 50), ("d.pdf", 30)):
        msg.add_attachment(b"x" * size, maintype="application", subtype="pdf", filename=name)
    parsed = parse(msg.as_bytes(), Limits(attachment=100, total=100))
    assert [(a.name, len(a.data)) for a in parsed.attachments] == [("a.pdf", 40), ("c.pdf", 50)]
    assert [(r.name, r.size) for r in parsed.refused] == [("b.pdf", 120), ("d.pdf", 30)]
    assert parsed.body == "see attached"


def test_every_corpus_message_parses():
    if not CORPUS.is_dir():
        pytest.skip(f"the email corpus is not at {CORPUS}")
    for path in sorted(CORPUS.glob("msg_*.txt")):
        parsed = parse(path.read_bytes())
        assert parsed.message_id.startswith("<"), path.name


# ---- subjects, choices, URLs, FETCH ----------------------------------------------------------


def test_subjects_lose_prefixes_and_tags_for_commands_and_keep_tags_in_replies():
    assert strip_subject("AW: Re: Fwd: [#T-12] cancel 4") == "cancel 4"
    assert reply_subject("AW: Re: [#T-12] Parking", "your message") == "Re: [#T-12] Parking"
    assert reply_subject("", "your message") == "Re: your message"


def test_choices_become_lines_with_the_word_in_capitals():
    assert email_choice(Choice("10:00", "book Massage at Linz on 2026-12-08 at 10:00")) == {
        "label": "10:00", "line": "BOOK Massage at Linz on 2026-12-08 at 10:00"}


def test_imap_urls_are_read_with_encoded_credentials_and_defaults():
    target = parse_imap_url("imap://desk%40example.com:p%C3%A4ss@mail.example.com/Support%20Mail?move_to=Done")
    assert (target.host, target.port, target.implicit_tls, target.username, target.password) == (
        "mail.example.com", 143, False, "desk@example.com", "päss")
    assert (target.mailbox, target.move_to) == ("Support Mail", "Done")
    secure = parse_imap_url("imaps://u:p@mail.example.com")
    assert (secure.port, secure.implicit_tls, secure.mailbox, secure.move_to) == (993, True, "INBOX", None)
    with pytest.raises(ValueError, match="FRONTDESK_IMAP_URL"):
        parse_imap_url("http://mail.example.com")


def test_fetch_responses_are_grouped_whatever_the_item_order():
    lines = [b"1 FETCH (UID 101 BODY[] {3}", bytearray(b"abc"), b")",
             b"2 FETCH (BODY[] {2}", bytearray(b"de"), b" UID 102)", b"3 FETCH (FLAGS (\\Seen))"]
    assert fetched_records(lines) == [
        (b"1 FETCH (UID 101 BODY[] {3} )", b"abc"), (b"2 FETCH (BODY[] {2}  UID 102)", b"de"),
        (b"3 FETCH (FLAGS (\\Seen))", None)]


def test_fetch_batches_are_bounded_in_count_and_bytes():
    uids = list(range(1, 121))
    assert [len(b) for b in batches(uids, {}, 100)] == [50, 50, 20]
    sizes = {1: 40, 2: 40, 3: 500, 4: 10}
    assert batches([1, 2, 3, 4], sizes, 100) == [[1, 2], [3], [4]]


# ---- the edge against a real store -----------------------------------------------------------


class Flaky:
    """An email fallback that fails a given number of times, then takes the mail."""

    def __init__(self, failures: int):
        self.failures = failures
        self.taken: list[str] = []

    async def __call__(self, ctx, text: str) -> list[Reply]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the ticket store hiccuped")
        self.taken.append(text)
        return [Reply("got it")]


def make_edge(store, config, clock, fallback=None) -> EmailEdge:
    parts = [welcome.handlers(), identity.handlers()]
    if fallback is not None:
        parts.append(Handlers(fallbacks={"email": fallback}))
    return EmailEdge(Desk(store, config, Handlers.combine(*parts), clock), MailPolicy(max_attempts=3))


async def intake(store) -> list[MailIntake]:
    async with store.uow() as uow:
        return list(await uow.session.scalars(select(MailIntake).order_by(MailIntake.id)))


async def outbox_count(store) -> int:
    async with store.uow() as uow:
        return await uow.session.scalar(select(func.count()).select_from(Outbox))


async def test_a_failing_mail_is_kept_raw_and_retried_until_it_works(store, config, clock):
    flaky = Flaky(failures=2)
    edge = make_edge(store, config, clock, flaky)
    raw = raw_mail("Where do I park?", headers={"Message-ID": "<p1@example.org>"})
    assert await edge.take(Incoming(raw, uid=7)) == "failed"
    [row] = await intake(store)
    assert (row.status, row.raw, row.attempts, row.uid) == ("failed", raw, 1, 7)
    assert "RuntimeError: the ticket store hiccuped" in row.error
    assert row.next_attempt_at == clock.now() + timedelta(minutes=1)
    assert await edge.retry_due() == 0  # not yet due
    clock.advance(minutes=1)
    assert await edge.retry_due() == 0  # fails again: now waits 2 minutes
    [row] = await intake(store)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, clock.now() + timedelta(minutes=2))
    clock.advance(minutes=2)
    assert await edge.retry_due() == 1
    [row] = await intake(store)
    assert (row.status, row.raw, row.error, row.attempts) == ("processed", None, None, 3)
    assert flaky.taken == ["Where do I park?"] and await outbox_count(store) == 1


async def test_a_mail_that_keeps_failing_is_given_up_but_kept(store, config, clock):
    edge = make_edge(store, config, clock, Flaky(failures=10))
    await edge.take(Incoming(raw_mail("Hello?")))
    for _ in range(4):
        clock.advance(hours=1)
        await edge.retry_due()
    [row] = await intake(store)
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert row.raw and row.error


async def test_a_late_failure_count_leaves_a_mail_another_intake_processed_alone(store, config, clock):
    """A retry that failed counts its failure only while the row still says failed."""
    edge = make_edge(store, config, clock, Flaky(failures=1))
    await edge.take(Incoming(raw_mail("Hello?")))
    clock.advance(minutes=1)
    assert await edge.retry_due() == 1  # another intake's retry went through meanwhile
    [done] = await intake(store)
    await edge._count_failure(done.id, RuntimeError("late"))
    [row] = await intake(store)
    assert (row.status, row.attempts, row.error, row.next_attempt_at) == ("processed", done.attempts, None, None)


async def test_the_same_message_id_twice_has_one_effect(store, config, clock):
    flaky = Flaky(failures=0)
    edge = make_edge(store, config, clock, flaky)
    raw = raw_mail("Hello", headers={"Message-ID": "<same@example.org>"})
    assert [await edge.take(Incoming(raw)) for _ in range(2)] == ["processed", "duplicate"]
    assert len(flaky.taken) == 1 and await outbox_count(store) == 1


class FailsOn:
    """An email fallback that fails for one text and takes every other mail."""

    def __init__(self, bad: str):
        self.bad = bad
        self.taken: list[str] = []

    async def __call__(self, ctx, text: str) -> list[Reply]:
        if self.bad in text:
            raise RuntimeError("this one cannot be handled")
        self.taken.append(text)
        return [Reply("got it")]


async def test_a_batch_of_mails_commits_together(store, config, clock):
    taker = FailsOn("never")
    edge = make_edge(store, config, clock, taker)
    mails = [Incoming(raw_mail(f"Question {n}", headers={"Message-ID": f"<b{n}@example.org>"}), uid=n)
             for n in range(1, 4)]
    again = Incoming(raw_mail("Question 1", headers={"Message-ID": "<b1@example.org>"}), uid=4)
    assert await edge.take_all([*mails, again]) == ["processed", "processed", "processed", "duplicate"]
    assert taker.taken == ["Question 1", "Question 2", "Question 3"]
    assert [(row.uid, row.status) for row in await intake(store)] == [(1, "processed"), (2, "processed"),
                                                                     (3, "processed")]
    assert await outbox_count(store) == 3


async def test_one_failing_mail_in_a_batch_is_kept_raw_and_the_others_go_through(store, config, clock):
    taker = FailsOn("Question 2")
    edge = make_edge(store, config, clock, taker)
    raws = {n: raw_mail(f"Question {n}", headers={"Message-ID": f"<f{n}@example.org>"}) for n in range(1, 4)}
    statuses = await edge.take_all([Incoming(raw, uid=n) for n, raw in raws.items()])
    assert statuses == ["processed", "failed", "processed"]
    # The batch's transaction was undone, then each mail was taken once more on its own.
    assert taker.taken == ["Question 1", "Question 1", "Question 3"]
    rows = {row.uid: row for row in await intake(store)}
    assert [rows[n].status for n in (1, 2, 3)] == ["processed", "failed", "processed"]
    assert rows[2].raw == raws[2] and "this one cannot be handled" in rows[2].error
    assert await outbox_count(store) == 2  # one answer each for 1 and 3, none twice


async def test_a_mail_that_does_not_parse_leaves_the_rest_of_its_batch_alone(store, config, clock, monkeypatch):
    taker = FailsOn("never")
    edge = make_edge(store, config, clock, taker)
    broken = raw_mail("Cannot be read", headers={"Message-ID": "<broken@example.org>"})
    real_parse = mailparse.parse

    def parse(raw, limits=mailparse.Limits()):
        if raw == broken:
            raise ValueError("unreadable")
        return real_parse(raw, limits)

    monkeypatch.setattr(mailparse, "parse", parse)
    good = raw_mail("Readable", headers={"Message-ID": "<good@example.org>"})
    assert await edge.take_all([Incoming(broken, uid=1), Incoming(good, uid=2)]) == ["failed", "processed"]
    rows = {row.uid: row for row in await intake(store)}
    assert (rows[1].status, rows[1].raw, rows[2].status) == ("failed", broken, "processed")
    assert taker.taken == ["Readable"]


async def test_a_machine_never_runs_a_command_even_with_a_valid_code(store, config, clock):
    edge = make_edge(store, config, clock)
    await edge.take(Incoming(raw_mail("", subject="EMAIL new@example.org", headers={"Message-ID": "<c1@example.org>"})))
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Code)) == 1
    # An autoresponder answers the code mail, quoting the code in its first line.
    echo = raw_mail("CONFIRM 123456", subject="Re: CONFIRM 123456", headers={"Auto-Submitted": "auto-replied"})
    assert await edge.take(Incoming(echo)) == "processed"
    async with store.uow() as uow:
        code = await uow.session.scalar(select(Code))
    assert (code.attempts, code.used_at) == (0, None)  # not even a wrong try was counted
    assert await outbox_count(store) == 1  # only the first round-trip mail


async def test_without_an_email_fallback_other_mail_is_only_recorded(store, config, clock):
    edge = make_edge(store, config, clock)
    assert await edge.take(Incoming(raw_mail("Where do I park?"))) == "processed"
    assert await outbox_count(store) == 0


async def test_mail_from_nobody_is_recorded_as_ignored(store, config, clock):
    edge = make_edge(store, config, clock, Flaky(failures=0))
    assert await edge.take(Incoming(raw_mail(sender="undisclosed-recipients:;"))) == "ignored"
    [row] = await intake(store)
    assert (row.status, row.error) == ("ignored", "no usable sender address")


async def test_a_command_with_a_refused_attachment_gets_both_answers(store, config, clock):
    edge = EmailEdge(Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers()), clock),
                     MailPolicy(limits=Limits(attachment=10, total=10)))
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["Subject"], msg["Content-Language"] = "k@example.org", "LANGUAGE", "en"
    msg.set_content("")  # the command alone: a covering text would make it a support mail
    msg.add_attachment(b"x" * 11, maintype="image", subtype="png", filename="scan.png")
    assert await edge.take(Incoming(msg.as_bytes())) == "processed"
    async with store.uow() as uow:
        texts = [row.text for row in await uow.session.scalars(select(Outbox).order_by(Outbox.id))]
    assert "reply with LANGUAGE de" in texts[0]
    assert "scan.png (1 MB)" in texts[1] and "too large" in texts[1]


async def test_overlong_names_and_subjects_fit_the_store(store, config, clock):
    from bot.app import build_handlers

    edge = EmailEdge(Desk(store, config, build_handlers(), clock))
    raw = raw_mail("A question", subject="Frage " * 400, sender=f"{'Müller ' * 60}<m@example.org>",
                   headers={"Message-ID": "<long@example.org>", "In-Reply-To": f"<{'r' * 400}@example.org>"})
    assert await edge.take(Incoming(raw)) == "processed"
    async with store.uow() as uow:
        subjects = (await uow.session.scalars(select(Outbox.subject))).all()
    assert subjects and all(len(subject) <= 998 for subject in subjects)
