"""The email edge: one mail → one unit of work (intake record + handlers + threaded replies), exactly once.

The intake record and the mail's effects commit together; the IMAP side flags the mail only after
that. A mail whose Message-ID is already recorded is a duplicate (a restart after a crash between
commit and flag, or a rescan after UIDVALIDITY changed) and has no effect.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from time import perf_counter
from typing import cast

from sqlalchemy import CursorResult, func, select, update

from bot.mail import parse as mailparse
from bot.mail.parse import MB, Limits, ParsedMail
from bot.mail.records import ANSWERED_LATELY, SENT, answered_lately_all, claim_all, intake_claim
from handlers.bounces import bounced
from handlers.commandlines import only_line, takes_file
from handlers.context import Clock, address_kind
from handlers.messages import Choice, Inbound, MailMeta, Reply
from handlers.observing import holding
from handlers.router import Desk, hold_sender
from handlers.rules.mailthread import TAG, chain_after, references, reply_subject, thread_refs, topic
from handlers.speaking import AUTO_REPLIED, mail_row, reply_language
from handlers.tickets.intake import forget_support_list, keep_support_list
from handlers.tickets.records import ACKS_PER_HOUR, answered_tickets, keep_known_messages
from storage.db import Store, UnitOfWork
from storage.dialect import insert_ignoring_conflicts
from storage.models import Address, Audit, Business, MailIntake, Outbox, Person
from templates import LANGUAGES, Rendered, render, word

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000
PARSE_IN_THREAD = 1024 * 1024  # parse big mails off the event loop
UNASKED = "mail_auto_answer"  # audit action: an automatic answer the person did not ask for
HELD = "mail_answers_held"  # audit action: the one notice an hour that further automatic answers wait


@dataclass(frozen=True)
class MailPolicy:
    """Limits of the email channel."""

    limits: Limits = Limits()
    # Automatic answers nobody asked for (acknowledgements, notes about refused attachments) to one address
    # an hour; a direct answer to a command or a code is never held back.
    unasked_per_hour: int = ACKS_PER_HOUR
    max_attempts: int = 5  # tries of a mail that fails before it waits for a person
    first_retry: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class Incoming:
    """A mail as the intake found it."""

    raw: bytes
    mailbox: str = "INBOX"
    uidvalidity: int | None = None
    uid: int | None = None
    truncated: bool = False  # too large to fetch whole: raw holds only the headers
    size: int | None = None


def describe(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:MAX_ERROR_CHARS]


@dataclass(frozen=True)
class Route:
    """What the desk reads of a mail, and whether it is a command (its answers were asked for)."""

    text: str | None  # None: the mail is only recorded
    command: bool = False
    looked_like: str = ""  # a line that starts with a command word, though the mail is no command


Prepared = tuple[Route, Inbound | None]  # a mail's route, and what the desk gets, read before the transaction


def email_choice(choice: Choice) -> dict:
    """A choice as a line to send back: the command with its word in capitals."""
    command_word, _, rest = choice.command.strip().lstrip("/").partition(" ")
    return {"label": choice.label, "line": f"{command_word.upper()} {rest}".strip()}


class EmailEdge:
    """Turns mail into Inbounds for the desk, in the intake's transaction, and queues the answers."""

    def __init__(self, desk: Desk, store: Store, clock: Clock, policy: MailPolicy = MailPolicy()):
        self.desk = desk
        self.store = store
        self.clock = clock
        self.policy = policy

    # ---- intake ---------------------------------------------------------------------------

    async def take(self, mail: Incoming) -> str:
        """Process a mail at most once: processed | ignored | failed (kept raw) | duplicate. A failure is
        counted as the desk's error, unless its handler's failure was counted already."""
        started = perf_counter()
        try:
            parsed = await self._parse(mail.raw)
        except Exception as exc:  # noqa: BLE001 - an unparsable mail is kept for a retry, never dropped
            log.warning("mail uid %s could not be parsed: %s", mail.uid, describe(exc))
            self.desk.failed("email", exc, started)
            return await self._store_failed(mail, mailparse.quick_id(mail.raw), exc)
        try:
            prepared = await self._prepare(parsed)
            async with self.store.uow() as uow:
                await hold_sender(uow, *senders([parsed]))  # before the claim, as in a batch
                intake_id = await self._claim(uow, mail, parsed)
                if intake_id is None:
                    return "duplicate"
                status = await self._process(uow, intake_id, parsed, mail, prepared)
                await uow.commit()
                return status
        except Exception as exc:  # noqa: BLE001 - the handlers' writes roll back; the mail is kept raw
            log.exception("mail %s from %s failed", parsed.message_id, parsed.sender)
            self.desk.failed("email", exc, started)
            return await self._store_failed(mail, parsed.message_id, exc)

    async def take_all(self, mails: list[Incoming]) -> list[str]:
        """`take` for several mails, in one transaction: per mail its effects and its intake record, and
        one commit for all. If one of them fails, the transaction rolls back and each mail is taken on
        its own, so the failing one is kept raw and the others go through as usual. What the desk tells
        its observer meanwhile is held back until the batch commits: a mail taken again counts once."""
        parsed: list[ParsedMail | None] = []
        for mail in mails:
            try:
                parsed.append(await self._parse(mail.raw))
            except Exception:  # noqa: BLE001 - taken on its own below, where it is kept raw
                parsed.append(None)
        complete = [p for p in parsed if p is not None]
        if len(complete) < len(mails) or len(mails) < 2:
            return [await self.take(mail) for mail in mails]
        try:
            prepared = [await self._prepare(one) for one in complete]
            with holding() as held:
                statuses = await self._take_batch(mails, complete, prepared)
            held.release(self.desk.observer)
            return statuses
        except Exception as exc:  # noqa: BLE001 - nothing of the batch was kept; now one by one
            log.info("a batch of %d mails failed (%s); taking them one by one", len(mails), describe(exc))
        return [await self.take(mail) for mail in mails]

    async def _take_batch(self, mails: list[Incoming], complete: list[ParsedMail],
                          prepared: list[Prepared]) -> list[str]:
        """The batch's one transaction, committed; anything raised leaves nothing of it."""
        async with self.store.uow() as uow:
            # All the batch's senders at once, in one fixed order: two crossing batches wait, never deadlock.
            await hold_sender(uow, *senders(complete))
            claimed = await self._claim_all(uow, mails, complete)
            lately = await answered_lately_all(uow, [one.sender for one in complete if one.sender],
                                               self.clock.now() - timedelta(hours=1), UNASKED)
            keep_support_list(uow)
            await keep_known_messages(uow, [one.message_id for one, intake_id in zip(complete, claimed)
                                            if intake_id is not None])
            statuses = []
            for mail, one, ready, intake_id in zip(mails, complete, prepared, claimed):
                if intake_id is None:
                    statuses.append("duplicate")
                    continue
                if ready[0].command:
                    forget_support_list(uow)  # a command may change who answers tickets
                # Only a sender's own mails add to their count: their first one here takes it as read above.
                counted = lately.pop(one.sender, None) if one.sender else None
                # A refusal fails the batch, and each mail is then taken on its own, with a savepoint.
                statuses.append(await self._process(uow, intake_id, one, mail, ready, counted,
                                                    spare=ready[0].command))
            await uow.commit()
            return statuses

    async def _parse(self, raw: bytes) -> ParsedMail:
        """Parse; a big mail in a thread, so the event loop keeps serving."""
        if len(raw) > PARSE_IN_THREAD:
            return await asyncio.to_thread(mailparse.parse, raw, self.policy.limits)
        return mailparse.parse(raw, self.policy.limits)

    async def _prepare(self, parsed: ParsedMail) -> Prepared:
        """Route the mail (a short read), and do its slow work (a list read once its code came back),
        before the intake's transaction begins."""
        async with self.store.uow() as uow:
            route = await self.route(uow, parsed)
        if route.text is None:
            return route, None
        return route, await self.desk.prepare(self.inbound(parsed, route))

    async def _claim(self, uow: UnitOfWork, mail: Incoming, parsed: ParsedMail) -> int | None:
        """Record the Message-ID; None if it was recorded before (then the mail only needs its flag)."""
        return await uow.session.scalar(intake_claim(uow.dialect), dict(
            message_id=parsed.message_id, mailbox=mail.mailbox, uidvalidity=mail.uidvalidity, uid=mail.uid,
            sender=f"email:{parsed.sender}" if parsed.sender else None, status="processed", attempts=1,
            received_at=self.clock.now(),
        ))

    async def _claim_all(self, uow: UnitOfWork, mails: list[Incoming], parsed: list[ParsedMail]) -> list[int | None]:
        """`_claim` for a batch in one INSERT: per mail its intake id, None for a Message-ID recorded before
        (or earlier in the batch: the first one is taken)."""
        now = self.clock.now()
        return await claim_all(uow, [dict(
            message_id=one.message_id, mailbox=mail.mailbox, uidvalidity=mail.uidvalidity, uid=mail.uid,
            sender=f"email:{one.sender}" if one.sender else None, status="processed", attempts=1, received_at=now,
        ) for mail, one in zip(mails, parsed)])

    async def _store_failed(self, mail: Incoming, message_id: str, exc: Exception) -> str:
        """Keep the raw mail with its error for a later try; an already recorded Message-ID stays as it is."""
        now = self.clock.now()
        async with self.store.uow() as uow:
            await uow.session.execute(insert_ignoring_conflicts(uow.dialect, MailIntake, ["message_id"]).values(
                message_id=message_id, mailbox=mail.mailbox, uidvalidity=mail.uidvalidity, uid=mail.uid,
                status="failed", error=describe(exc), raw=mail.raw, attempts=1, received_at=now,
                next_attempt_at=now + self.policy.first_retry,
            ))
            await uow.commit()
        return "failed"

    # ---- retries --------------------------------------------------------------------------

    async def retry_due(self) -> int:
        """Try again the failed mails whose time has come; return how many went through now."""
        async with self.store.uow() as uow:
            due = (await uow.session.scalars(
                select(MailIntake.id).where(MailIntake.status == "failed",
                                            MailIntake.next_attempt_at <= self.clock.now())
                .order_by(MailIntake.id).limit(50))).all()
        return sum([await self._retry(intake_id) in ("processed", "ignored") for intake_id in due])

    async def _retry(self, intake_id: int) -> str:
        """One more try of a stored mail, in one transaction with its effects; a failure is counted."""
        started = perf_counter()
        try:
            async with self.store.uow() as uow:
                row = await self._claim_retry(uow, intake_id)
                if row is None:
                    return "taken"  # another intake got it first
                if row.raw is None:
                    raise ValueError(f"mail intake {intake_id} says failed but holds no raw mail")
                parsed = await self._parse(row.raw)
                status = await self._process(uow, intake_id, parsed, None)
                await uow.commit()
                return status
        except Exception as exc:  # noqa: BLE001 - counted, and tried again later or given up visibly
            log.warning("retry of mail intake %s failed: %s", intake_id, describe(exc))
            self.desk.failed("email", exc, started)
            await self._count_failure(intake_id, exc)
            return "failed"

    async def _claim_retry(self, uow: UnitOfWork, intake_id: int) -> MailIntake | None:
        """Take a due failed mail in this transaction; the conditional UPDATE makes two intakes not both take it."""
        claimed = cast(CursorResult, await uow.session.execute(
            update(MailIntake).where(MailIntake.id == intake_id, MailIntake.status == "failed",
                                     MailIntake.next_attempt_at <= self.clock.now())
            .values(attempts=MailIntake.attempts + 1, next_attempt_at=None)
            .execution_options(synchronize_session=False)))
        if claimed.rowcount != 1:
            return None
        return await uow.session.get(MailIntake, intake_id, populate_existing=True)

    async def _count_failure(self, intake_id: int, exc: Exception) -> None:
        """Schedule the next try (1, 2, 4 … minutes), or give up after max_attempts: it stays failed, raw.

        The retry's own count rolled back with it, so it is counted here; only while the row still says
        failed, since another intake may have taken and processed the mail in the meantime."""
        async with self.store.uow() as uow:
            attempts = await uow.session.scalar(
                update(MailIntake).where(MailIntake.id == intake_id, MailIntake.status == "failed")
                .values(attempts=MailIntake.attempts + 1, error=describe(exc), next_attempt_at=None)
                .returning(MailIntake.attempts).execution_options(synchronize_session=False))
            give_up = attempts is not None and attempts >= self.policy.max_attempts
            if attempts is not None and not give_up:
                await self._schedule(uow, intake_id, attempts)
            await uow.commit()
        if give_up:
            log.error("mail intake %s given up after %d attempts; kept raw in mail_intake", intake_id, attempts)

    async def _schedule(self, uow: UnitOfWork, intake_id: int, attempts: int) -> None:
        """Set the next try after `attempts` failures (the row is ours: this transaction just updated it)."""
        wait = self.policy.first_retry * 2 ** (attempts - 1)
        await uow.session.execute(
            update(MailIntake).where(MailIntake.id == intake_id, MailIntake.status == "failed",
                                     MailIntake.attempts == attempts)
            .values(next_attempt_at=self.clock.now() + wait).execution_options(synchronize_session=False))

    # ---- one mail -------------------------------------------------------------------------

    async def _process(self, uow: UnitOfWork, intake_id: int, parsed: ParsedMail, mail: Incoming | None,
                       prepared: Prepared | None = None, counted: tuple[int, int] | None = None,
                       spare: bool = True) -> str:
        """Run the handlers for one mail and queue the answers; return the intake status. `counted`: the
        sender's automatic answers of the last hour (answered_lately), if the caller read them already.
        Not `spare`: a Refusal reaches the caller, who rolls everything back (Desk.handle_in)."""
        reason = await self._ignore_reason(uow, parsed) or await self._bounce(uow, parsed)
        if reason is not None or parsed.sender is None:  # a mail without a sender always has its reason
            return await self._finish(uow, intake_id, "ignored", reason)
        replies: list[Reply] = []
        route, inbound = prepared or (await self.route(uow, parsed), None)
        notes = bool(parsed.refused or (mail and mail.truncated))
        acks, quiet = None, False
        if not parsed.automatic and (notes or not route.command):
            acks, unasked = counted or await self.answered_lately(uow, parsed.sender)
            quiet = acks + unasked >= self.policy.unasked_per_hour
        if route.text is not None:
            inbound = inbound or self.inbound(parsed, route)
            if inbound.mail is None:
                raise ValueError(f"the inbound of mail {parsed.message_id} lost its mail metadata")
            # The tickets take the count from here: nothing before them in this transaction adds to it.
            replies = await self.desk.handle_in(uow, replace(inbound, mail=replace(
                inbound.mail, quiet=quiet, acks_lately=acks)), spare=spare)
        if (replies or notes or quiet) and not parsed.automatic:
            lang = await self.reply_language(uow, parsed)
            await self.queue_replies(uow, parsed, replies, lang)  # the desk's answers: asked for
            await self.queue_unasked(uow, parsed, self.refusals(parsed, mail, lang), lang, quiet)
        if mail is None:  # a retry: the row still says failed and holds the raw mail
            return await self._finish(uow, intake_id, "processed", None)
        return "processed"  # as claimed

    async def _finish(self, uow: UnitOfWork, intake_id: int, status: str, reason: str | None) -> str:
        await uow.session.execute(update(MailIntake).where(MailIntake.id == intake_id).values(
            status=status, error=reason, raw=None, next_attempt_at=None).execution_options(synchronize_session=False))
        return status

    async def _ignore_reason(self, uow: UnitOfWork, parsed: ParsedMail) -> str | None:
        """Why a mail gets no handling at all: our own mail came back, or nobody to answer."""
        if self.ours(parsed.message_id) and await uow.session.scalar(SENT, {"message_id": parsed.message_id}):
            return "our own mail came back"  # e.g. a forward or a vacation rule at the recipient's end
        if parsed.sender is None:
            return "no usable sender address"
        return None

    async def _bounce(self, uow: UnitOfWork, parsed: ParsedMail) -> str | None:
        """A delivery report about one of our mails: its sender's hook decides (handlers/bounces). Only a
        Message-ID we gave and still hold counts; the report's other words never say which mail it was."""
        report = parsed.report
        if report is None or report.original_id is None or not self.ours(report.original_id):
            return None
        row = await uow.session.scalar(select(Outbox).where(Outbox.message_id == report.original_id,
                                                            Outbox.channel == "email").limit(1))
        if row is None:
            return None
        await bounced(uow, self.desk.bounces, row, report.status, report.diagnostic, self.clock.now(), "intake")
        return f"delivery report: {report.status}"  # automatic: never answered

    def ours(self, message_id: str) -> bool:
        """Whether a Message-ID may be one we gave (ours all end in our mail domain)."""
        return message_id.lower().endswith(f"@{self.desk.config.mail_domain.lower()}>")

    async def route(self, uow: UnitOfWork, parsed: ParsedMail) -> Route:
        """Decide once whether a mail is a command: only when its own words are nothing but one well-formed
        command line or a code, or, with no words of its own, its subject is one. A reply on a ticket's
        thread is a ticket message unless its words are exactly a command; so is anything else."""
        fallback = "email" in self.desk.fallbacks
        if parsed.automatic:  # machines never run commands: an autoresponder may echo a code
            return Route("" if fallback else None)
        own = await self.without_our_words(uow, parsed, mailparse.own_words(parsed.command_text))
        subject = "" if await self.on_ticket_thread(uow, parsed) else topic(parsed.subject)
        if await self.desk.is_command(uow, own):
            return Route(only_line(own), command=True)
        if subject and await self.subject_commands(uow, subject, own, parsed):
            return Route(subject, command=True)
        looked = [line for line in (subject, mailparse.first_line(own)) if await self.desk.looks_like(uow, line)]
        return Route(parsed.command_text if fallback else None, looked_like=looked[0] if looked else "")

    async def without_our_words(self, uow: UnitOfWork, parsed: ParsedMail, own: str) -> str:
        """Drop, after the first line, lines copied from our mail this one answers: some clients quote
        without '>' marks, and a copied line is no word of the person's own."""
        first, _, rest = own.partition("\n")
        if not rest.strip() or not parsed.in_reply_to or not self.ours(parsed.in_reply_to):
            return own
        ours = await uow.session.scalar(select(Outbox.text).where(Outbox.message_id == parsed.in_reply_to).limit(1))
        copied = " ".join((ours or "").split())  # a copy may be cut short or wrapped anew
        kept = [line for line in rest.split("\n") if " ".join(line.split()) not in copied]
        return "\n".join([first, *kept]).strip()

    async def subject_commands(self, uow: UnitOfWork, subject: str, own: str, parsed: ParsedMail) -> bool:
        """A command subject runs when the mail says nothing else, or only covers the file the command reads."""
        line = await self.desk.command_line(uow, subject)
        if line is None:
            return False
        return not own or (bool(parsed.attachments) and takes_file(line.command.word))

    async def on_ticket_thread(self, uow: UnitOfWork, parsed: ParsedMail) -> bool:
        """Whether a mail carries a ticket's tag or answers one of a ticket's messages."""
        if TAG.search(parsed.subject):
            return True
        return bool(await answered_tickets(uow, thread_refs(parsed)))  # a bounded lookup, as the tickets do

    def inbound(self, parsed: ParsedMail, route: Route, quiet: bool = False) -> Inbound:
        meta = MailMeta(
            message_id=parsed.message_id, subject=parsed.subject, in_reply_to=parsed.in_reply_to,
            references=parsed.references, body=parsed.body, automatic=parsed.automatic, unread=parsed.unread,
            looked_like=route.looked_like, quiet=quiet,
        )
        return Inbound(
            channel="email", sender=f"email:{parsed.sender}", received_at=self.clock.now(), text=route.text or "",
            attachments=parsed.attachments, thread=parsed.in_reply_to, language_hint=parsed.language,
            display_name=parsed.display_name, mail=meta,
        )

    async def reply_language(self, uow: UnitOfWork, parsed: ParsedMail) -> str:
        """The sender's chosen language, else the mail's, else the business's."""
        chosen = await uow.session.scalar(
            select(Person.language).join(Address, Address.person_id == Person.id)
            .where(Address.address == f"email:{parsed.sender}"))
        if not chosen and parsed.language in LANGUAGES:
            chosen = parsed.language  # a stranger is answered in the language they wrote in
        business = None if chosen else await uow.session.get(Business, 1)
        return reply_language(chosen, business, self.desk.config.default_language)

    def refusals(self, parsed: ParsedMail, mail: Incoming | None, lang: str) -> list[Reply]:
        """Polite notes about what we could not take: a whole mail too large, or attachments over the limit."""
        total_mb = self.policy.limits.total // MB
        if mail is not None and mail.truncated:
            return [Reply(render("mail_too_large", lang, size_mb=megabytes(mail.size or 0), total_mb=total_mb).text)]
        if not parsed.refused:
            return []
        files = [(r.name, megabytes(r.size)) for r in parsed.refused]
        return [Reply(render("mail_attachment_refused", lang, files=files, total_mb=total_mb,
                             each_mb=self.policy.limits.attachment // MB).text)]

    # ---- answers --------------------------------------------------------------------------

    async def queue_replies(self, uow: UnitOfWork, parsed: ParsedMail, replies: list[Reply], lang: str) -> None:
        """Write the desk's answers into the outbox as threaded mails, unless a machine wrote.

        They answer what the person wrote (a command, a code, a question the desk asked), so no cap
        holds them back; a forged flood meets the code limits, and machines never get an answer."""
        if parsed.automatic:  # RFC 3834: never answer an automatic mail
            return
        for reply in replies:
            uow.session.add(self.outbox_row(parsed, reply, lang))

    async def queue_unasked(self, uow: UnitOfWork, parsed: ParsedMail, notes: list[Reply], lang: str,
                            quiet: bool) -> None:
        """Send notes the person did not ask for, counted; past the hour's cap, say once that they wait."""
        if quiet:
            await self.hold_back(uow, parsed, len(notes), lang)
            return
        for note in notes:
            uow.session.add(self.outbox_row(parsed, note, lang))
            self.audit(uow, parsed, UNASKED)

    async def hold_back(self, uow: UnitOfWork, parsed: ParsedMail, held: int, lang: str) -> None:
        """Keep automatic answers back, and tell the person so once an hour (a log line alone tells nobody)."""
        log.warning("unasked answers capped for %s: %d notes held back", parsed.sender, held)
        self.audit(uow, parsed, "reply_capped")
        if parsed.sender is None or await self.audited_since(uow, parsed.sender, HELD):
            return  # nobody to tell, or told already this hour
        self.audit(uow, parsed, HELD)
        uow.session.add(self.outbox_row(parsed, Reply(render("mail_answers_held", lang).text), lang))

    async def answered_lately(self, uow: UnitOfWork, sender: str) -> tuple[int, int]:
        """The automatic answers this address had in the last hour: (acknowledgements, our notes), in one read."""
        since = self.clock.now() - timedelta(hours=1)
        acks, notes = (await uow.session.execute(ANSWERED_LATELY, {
            "email": sender, "subject": f"email:{sender}", "action": UNASKED, "since": since})).one()
        return acks, notes

    async def audited_since(self, uow: UnitOfWork, sender: str, action: str) -> int:
        """How often `action` was recorded for this address in the last hour."""
        return (await uow.session.execute(select(func.count()).select_from(Audit).where(
            Audit.action == action, Audit.subject == f"email:{sender}",
            Audit.at > self.clock.now() - timedelta(hours=1)))).scalar_one()

    def audit(self, uow: UnitOfWork, parsed: ParsedMail, action: str) -> None:
        uow.session.add(Audit(at=self.clock.now(), actor="intake", channel="email", action=action,
                              subject=f"email:{parsed.sender}", detail={"message_id": parsed.message_id}))

    def outbox_row(self, parsed: ParsedMail, reply: Reply, lang: str) -> Outbox:
        """One answer as an outbox row: to the sender it is a threaded reply; to anyone else a plain message."""
        to = reply.recipient or f"email:{parsed.sender}"
        now = self.clock.now()
        rendered = render("mail_reply", lang, text=reply.text, choices=[email_choice(c) for c in reply.choices])
        if address_kind(to) != "email":
            return Outbox(channel=address_kind(to), recipient=to, subject=reply.subject, text=rendered.text,
                          html=None, headers={}, attachments=[a.stored() for a in reply.attachments],
                          status="pending", attempts=0, next_attempt_at=now, created_at=now)
        subject = reply.subject or reply_subject(parsed.subject, word(lang, "mail.no_subject"))
        headers = dict(AUTO_REPLIED)  # our answer to their mail, with In-Reply-To and References for the sender
        if to == f"email:{parsed.sender}" and not mailparse.is_synthetic(parsed.message_id):
            headers.update({"In-Reply-To": parsed.message_id, "References": references(chain_after(parsed))})
        return Outbox(**mail_row(now, self.desk.config.mail_domain, to.removeprefix("email:"),
                                 Rendered(subject, rendered.text, rendered.html), headers, reply.attachments))


def senders(parsed: list[ParsedMail]) -> list[str]:
    """The desk's addresses of the mails' senders, as their turns are held."""
    return [f"email:{p.sender}" for p in parsed if p.sender]


def megabytes(size: int) -> int:
    return -(-size // MB)  # rounded up: a 10.2 MB file is not "10 MB"
