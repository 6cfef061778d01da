"""Reading mail (pure), and the email edge against a real store (SQLite and PostgreSQL): retries, duplicates, loops."""
from __future__ import annotations

import email.policy
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import func, select

from bot.mail import parse as mailparse
from bot.mail.intake import EmailEdge, Incoming, MailPolicy
from bot.mail.parse import Limits
from handlers import identity, welcome
from handlers.messages import Reply
from handlers.registry import Handlers
from handlers.router import Desk
from handlers.rules.mailthread import MAX_REFERENCES
from storage.models import Code, MailIntake, Outbox
from tests.helpers import raw_mail

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
    return EmailEdge(Desk(store, config, Handlers.combine(*parts), clock), store, clock, MailPolicy(max_attempts=3))


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
    edge = EmailEdge(Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers()), clock), store,
                     clock, MailPolicy(limits=Limits(attachment=10, total=10)))
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

    edge = EmailEdge(Desk(store, config, build_handlers(), clock), store, clock)
    raw = raw_mail("A question", subject="Frage " * 400, sender=f"{'Müller ' * 60}<m@example.org>",
                   headers={"Message-ID": "<long@example.org>", "In-Reply-To": f"<{'r' * 400}@example.org>"})
    assert await edge.take(Incoming(raw)) == "processed"
    async with store.uow() as uow:
        subjects = (await uow.session.scalars(select(Outbox.subject))).all()
    assert subjects and all(len(subject) <= 998 for subject in subjects)


async def test_an_answer_in_a_long_thread_references_its_root_and_the_latest(store, config, clock):
    """The edge threads its answers as the tickets do: the thread's first id stays, then the latest ones."""
    edge = make_edge(store, config, clock)
    refs = " ".join(f"<{n}@example.org>" for n in range(30))
    raw = raw_mail("", subject="LANGUAGE en", headers={"Message-ID": "<30@example.org>", "References": refs})
    assert await edge.take(Incoming(raw)) == "processed"
    async with store.uow() as uow:
        [row] = (await uow.session.scalars(select(Outbox))).all()
    kept = row.headers["References"].split()
    assert len(kept) == MAX_REFERENCES and kept[0] == "<0@example.org>" and kept[-1] == "<30@example.org>"
    assert kept[1:] == [f"<{n}@example.org>" for n in range(12, 31)]
