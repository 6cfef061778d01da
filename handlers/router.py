"""Inbound → the handler for the command word, or the open conversation → Replies."""
from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import TypeVar

from sqlalchemy import insert, select

from handlers.commandlines import only_line, well_shaped
from handlers.context import Clock, Context, DeskConfig, Refusal, SystemClock, load_context, new_key, table
from handlers.messages import Choice, Inbound, Reply, make_files
from handlers.observing import HELD, OTHER, Observer, Outcome, Unobserved
from handlers.registry import Command, Handlers
from handlers.rules.roles import effective_roles
from handlers.rules.words import first_word
from storage.db import Store, UnitOfWork
from storage.dialect import serialize
from storage.models import Address, Person, Role
from storage.models import Choice as ChoiceRow
from templates import has_word, render

# Core, built once: the ORM's bulk insert path costs more than the rows, and the walk remembers buttons every step.
REMEMBER_CHOICES = insert(table(ChoiceRow))

log = logging.getLogger(__name__)

BARE_CODE = re.compile(r"^\d{6}$")
T = TypeVar("T")
Settle = Callable[[UnitOfWork, list[Reply]], Awaitable[None]]
BASE_ROLES = frozenset(effective_roles(set()))  # what anyone has
# The error dispatch has told the observer about, so that Desk.handle does not count it a second time.
OBSERVED_ERROR: ContextVar[BaseException | None] = ContextVar("observed_error", default=None)


async def given(replies: list[Reply]) -> list[Reply]:
    """An answer already made, as an awaitable like the ones handlers give."""
    return replies


def needs_round_trip(ctx: Context, command: Command, args: str = "") -> bool:
    """Email is easy to spoof: by email, a word that changes state waits for a code sent to the sender."""
    reads = command.safe or (command.reads is not None and command.reads(args))
    return ctx.inbound.channel == "email" and not reads and command.word != "confirm"


async def sender_verified(ctx: Context) -> bool:
    return bool(await ctx.session.scalar(select(Address.verified).where(Address.address == ctx.sender)))


@dataclass(frozen=True)
class CommandLine:
    """A line that runs a command: the command, the word as typed and its arguments."""

    command: Command
    word: str
    args: str

    @property
    def typed(self) -> str:
        """The line as a mail would carry it: the typed word in capitals, then its arguments."""
        return f"{self.word.upper()} {self.args}".strip()


def split_command(text: str) -> tuple[str, str]:
    """'/Book@desk_bot Massage …' → ('book', 'Massage …'); email's 'BOOK …' parses alike."""
    word, rest = first_word(text)
    return word.lstrip("/").split("@", 1)[0].lower(), rest.strip()


def caused_by(exc: BaseException | None, cause: BaseException | None) -> bool:
    """Whether `cause` is `exc` or among what `exc` was raised from or while handling."""
    seen: set[int] = set()
    while exc is not None and cause is not None and id(exc) not in seen:
        if exc is cause:
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


async def hold_sender(uow: UnitOfWork, *senders: str) -> None:
    """Let one transaction at a time work for each sender, until it ends.

    PostgreSQL: a transaction-scoped advisory lock per address (taking it again in the same transaction
    is free). SQLite: every transaction begins with BEGIN IMMEDIATE, so writers take turns anyway.
    """
    await serialize(uow.session, *(f"sender:{sender}" for sender in senders))


async def command_hint(ctx: Context, looked_like: str) -> dict:
    """What an acknowledgement tells about a mail that looked like a command: the line that would have
    run it (`meant`), or, when its arguments did not fit, how the command is typed (`usage`)."""
    found = await ctx.desk.looks_like(ctx.uow, looked_like) if looked_like else None
    if found is None:
        return {"meant": None, "usage": None}
    command, line = found
    key = f"help.{command.word}"
    return {"meant": line.typed if line else None, "usage": ctx.word(key) if has_word(ctx.lang, key) else None}


class Stale(Exception):
    """What an answer was for is no longer the caller's to settle (its lease ran out): nothing is kept."""


class Desk:
    """The router: one unit of work per inbound message."""

    def __init__(self, store: Store, config: DeskConfig, handlers: Handlers, clock: Clock | None = None):
        self.store = store
        self.config = config
        self.clock = clock or SystemClock()
        self.watcher: Observer = Unobserved()  # the edge's observer; see `observer`
        self.flows = handlers.flows
        self.completions = handlers.completions
        self.exhaustions = handlers.exhaustions
        self.start_payloads = handlers.start_payloads
        self.fallbacks = handlers.fallbacks
        self.commands = handlers.commands
        self.preparers = handlers.preparers
        self.line_checks = handlers.line_checks
        self.round_trip = handlers.round_trip
        self.jobs = handlers.jobs
        self.exports = handlers.exports
        self.bounces = handlers.bounces
        self.words: dict[str, Command] = {}
        for command in handlers.commands:
            for name in (command.word, *command.aliases):
                self.words[name] = command

    @property
    def observer(self) -> Observer:
        """Who is told what the desk handled: the edge's observer, or the hold of work that may be redone."""
        held = HELD.get()
        return held if held is not None else self.watcher

    @observer.setter
    def observer(self, observer: Observer) -> None:
        self.watcher = observer

    def failed(self, channel: str, exc: BaseException, started: float) -> None:
        """Count a message that failed around its handler (the lock, the context, the commit, an edge's own
        step); a failure of the handler itself, or one that followed from it, was counted by dispatch."""
        if not caused_by(exc, OBSERVED_ERROR.get()):
            self.observer.handled(channel, OTHER, "error", perf_counter() - started)

    async def command_line(self, uow: UnitOfWork, text: str) -> CommandLine | None:
        """The command a text is, if it is nothing but one well-formed command line (or a bare code)."""
        line = only_line(text)
        if line is None:
            return None
        if BARE_CODE.match(line) and "confirm" in self.words:
            return CommandLine(self.words["confirm"], "confirm", line)
        word, args = split_command(line)
        command = self.words.get(word)
        if command is None or not well_shaped(command.word, args):
            return None
        check = self.line_checks.get(command.word)
        if check is not None and not await check(uow, args):
            return None
        return CommandLine(command, word, args)

    async def is_command(self, uow: UnitOfWork, text: str) -> bool:
        """Whether a text (by email: a mail's own words) runs a command rather than asking a person."""
        return await self.command_line(uow, text) is not None

    async def looks_like(self, uow: UnitOfWork, text: str) -> tuple[Command, CommandLine | None] | None:
        """A line that starts with a command word anyone may use, and the command line it is if well-formed."""
        line = only_line(text)
        command = self.words.get(split_command(line)[0]) if line else None
        if line is None or command is None or not command.allowed & BASE_ROLES:
            return None
        return command, await self.command_line(uow, line)

    async def handle(self, inbound: Inbound, settle: Settle | None = None) -> list[Reply]:
        """Answer one inbound message in its own unit of work; nothing is kept unless the answer was made.

        A refusal rolls the whole unit of work back and is answered from a fresh one: cheaper than a
        savepoint around every message, which costs two statements and a compile each time.
        `settle`, if given, records in the answer's own transaction that the message was answered and how
        (an edge's receipt, its replies queued), so a crash loses or repeats neither. The error reply is
        settled alike; `settle` raising Stale keeps nothing. Files are then left for the caller to make.
        """
        started = perf_counter()
        OBSERVED_ERROR.set(None)
        try:
            inbound = await self.prepare(inbound)
            try:
                replies = await self._answer_alone(inbound, self.answer_in, settle)
            except Refusal as refusal:
                replies = await self._answer_alone(inbound, partial(self.refuse_in, refusal=refusal), settle)
            # after the transaction: a long list holds no lock meanwhile
            return replies if settle is not None else await make_files(replies)
        except Stale:
            raise
        except Exception as exc:
            log.exception("handling %r from %s failed", inbound.text[:40], inbound.sender)
            self.failed(inbound.channel, exc, started)
        lang = (inbound.language_hint or self.config.default_language)[:2]
        replies = [Reply(render("error", lang).text, template="error")]
        if settle is not None:
            async with self.store.uow() as uow:
                await settle(uow, replies)
                await uow.commit()
        return replies

    async def _answer_alone(self, inbound: Inbound, answer: Callable[[UnitOfWork, Inbound], Awaitable[list[Reply]]],
                            settle: Settle | None) -> list[Reply]:
        """`answer` in a unit of work of its own, settled there if asked, and committed."""
        async with self.store.uow() as uow:
            replies = await answer(uow, inbound)
            if settle is not None:
                await settle(uow, replies)
            await uow.commit()
        return replies

    async def prepare(self, inbound: Inbound) -> Inbound:
        """Do the slow work a message needs (reading an uploaded list) before its transaction begins."""
        for preparer in self.preparers:
            inbound = await preparer(self, inbound)
        return inbound

    async def answer_in(self, uow: UnitOfWork, inbound: Inbound) -> list[Reply]:
        """Answer inside the caller's unit of work (the caller commits and makes the files); a Refusal
        reaches the caller with the handler's writes still in the unit of work: roll it back, then
        answer with refuse_in.

        One sender's messages take turns, also across processes: the sender's lock comes first, before
        the speaker is read or made, so each message sees everything the one before it committed.
        """
        return await self._answered(uow, inbound, self.dispatch)

    async def refuse_in(self, uow: UnitOfWork, inbound: Inbound, refusal: Refusal) -> list[Reply]:
        """The answer to a refused message, in a fresh unit of work (the refused one rolled back, and the
        sender may have lost their turn with it): the sender's turn first, as for any message."""
        return await self._answered(uow, inbound, lambda ctx: given([ctx.say(refusal.template, **refusal.values)]))

    async def _answered(self, uow: UnitOfWork, inbound: Inbound,
                        answer: Callable[[Context], Awaitable[list[Reply]]]) -> list[Reply]:
        """The sender's turn, the speaker, the answer, and its buttons remembered."""
        await hold_sender(uow, inbound.sender)
        ctx = await self._context(uow, inbound)
        replies = await answer(ctx)
        await self._remember_choices(ctx, replies)
        return replies

    async def handle_in(self, uow: UnitOfWork, inbound: Inbound, files_later: bool = False,
                        spare: bool = True) -> list[Reply]:
        """Answer inside a unit of work that holds the caller's own writes (the mail intake's record), which
        a refusal must not take with it: a savepoint undoes only the handler's writes. The caller commits.
        The sender's turn comes first here too (see answer_in).

        Not `spare`: the caller rolls the whole unit of work back if a Refusal reaches it, and answers
        the message anew in one that spares its writes. A message that is rarely refused (a mail that is
        no command) then saves the savepoint's two statements.

        Files the replies announce are made here, in a thread, unless `files_later` (the caller makes them
        with make_files once the transaction is over).
        """
        if not spare:
            replies = await self.answer_in(uow, inbound)
            return replies if files_later else await make_files(replies)
        await hold_sender(uow, inbound.sender)
        ctx = await self._context(uow, inbound)  # outside the savepoint: a rollback there keeps the speaker
        try:
            async with uow.session.begin_nested():
                replies = await self.dispatch(ctx)
        except Refusal as refusal:
            # The rollback expired what the ORM changed; the speaker's row may have been changed by a plain
            # UPDATE too (Context.update_person), which the ORM does not know about.
            uow.session.expire(ctx.person)
            ctx = await self._context(uow, inbound)  # reloads what rolling back the savepoint expired
            replies = [ctx.say(refusal.template, **refusal.values)]
        await self._remember_choices(ctx, replies)
        return replies if files_later else await make_files(replies)

    async def act(self, inbound: Inbound, step: Callable[[Context], Awaitable[T]]) -> T:
        """Run one channel-free step for an edge that is no conversation (the booking page) as the sender of
        `inbound`, in its own unit of work: the sender's turn first, as for a message; committed when the step
        returns, rolled back when it raises (a Refusal reaches the caller)."""
        async with self.store.uow() as uow:
            await hold_sender(uow, inbound.sender)
            result = await step(await self._context(uow, inbound))
            await uow.commit()
        return result

    async def _context(self, uow: UnitOfWork, inbound: Inbound) -> Context:
        ctx = await load_context(uow, inbound, self.config, self.clock.now(), self)
        if inbound.channel == "email" and ctx.roles != BASE_ROLES and not await sender_verified(ctx):
            ctx.roles = set(BASE_ROLES)  # anyone can type a From: line; roles need a proven address
        return ctx

    async def dispatch(self, ctx: Context) -> list[Reply]:
        """Answer with what the message routes to, and tell the observer which command or flow that was,
        how it ended and how long it took."""
        started, route = perf_counter(), OTHER
        try:
            route, answer = await self._route(ctx)
            replies = await answer
        except Refusal:
            self._observed(ctx, route, "refused", started)
            raise
        except Exception as exc:
            OBSERVED_ERROR.set(exc)
            self._observed(ctx, route, "error", started)
            raise
        self._observed(ctx, route, "answered", started)
        return replies

    def _observed(self, ctx: Context, route: str, outcome: Outcome, started: float) -> None:
        self.observer.handled(ctx.inbound.channel, route, outcome, perf_counter() - started)

    async def _route(self, ctx: Context) -> tuple[str, Awaitable[list[Reply]]]:
        """The route's name (a command word, "flow:" and a flow name, or OTHER) and its answer, still to await."""
        picked: str | None = ctx.inbound.text
        if ctx.inbound.choice is not None:
            picked = ctx.picked  # read with the speaker, in the same statement
            if picked is None:
                return OTHER, given([ctx.say("choice_expired")])
        text = (picked or "").strip()
        if ctx.inbound.mail is not None and ctx.inbound.mail.automatic:
            # A machine's mail never runs a command: an autoresponder may echo a code back.
            fallback = self.fallbacks.get(ctx.inbound.channel)
            return OTHER, fallback(ctx, text) if fallback is not None else given([])
        if BARE_CODE.match(text) and "confirm" in self.words:
            return "confirm", self.run(ctx, self.words["confirm"], text)
        if ctx.conversation is not None and self._answers_open_question(ctx, text):
            return f"flow:{ctx.conversation.flow}", self.flows[ctx.conversation.flow](ctx, text)
        word, args = split_command(text)
        if word in self.words and (ctx.inbound.channel != "email" or await self.is_command(ctx.uow, text)):
            # By email only a well-formed command line is one; "Cancel my appointment please" asks a person.
            command = self.words[word]
            if ctx.inbound.channel in self.fallbacks and not (command.allowed & ctx.roles):
                # "Close my account" from a customer is a request for help, not a refused support word.
                return OTHER, self.fallbacks[ctx.inbound.channel](ctx, text)
            return command.word, self.run(ctx, command, args, typed=word)
        if ctx.conversation is not None and ctx.conversation.flow in self.flows and text:
            return f"flow:{ctx.conversation.flow}", self.flows[ctx.conversation.flow](ctx, text)
        fallback = self.fallbacks.get(ctx.inbound.channel)
        if fallback is not None:
            return OTHER, fallback(ctx, text)
        return OTHER, given([ctx.say("unknown_empty")] if not text else [ctx.say("unknown", word=word)])

    def _answers_open_question(self, ctx: Context, text: str) -> bool:
        """While a conversation waits, typed chat text answers it; only "/word" or a button runs a command.

        Otherwise a personal message that starts with "Pause …" or "Cancel …" would run that command.
        """
        return (ctx.conversation is not None and ctx.conversation.flow in self.flows and bool(text)
                and ctx.inbound.choice is None and ctx.inbound.channel != "email" and not text.startswith("/"))

    async def run(self, ctx: Context, command: Command, args: str, proven: bool = False,
                  typed: str | None = None) -> list[Reply]:
        """Run a command if the speaker's roles allow it (and, by email, once proven); log a refusal.

        `typed` is the word as the person wrote it ("stornieren"): the code mail repeats their own words."""
        if not (command.allowed & ctx.roles):
            await ctx.audit("denied", command.word, args=args[:200])
            return [ctx.say("not_allowed", word=command.word)]
        if not proven and needs_round_trip(ctx, command, args):
            if self.round_trip is None:  # no way to prove a mailbox here: nothing that changes state runs
                return [ctx.say("not_allowed", word=command.word)]
            return await self.round_trip(ctx, f"{typed or command.word} {args}".strip())
        return await command.run(ctx, args)

    async def run_proven(self, ctx: Context, text: str) -> list[Reply]:
        """Run a command whose email round trip succeeded (roles are checked again)."""
        word, args = split_command(text)
        if word not in self.words:
            return [ctx.say("unknown", word=word)]
        return await self.run(ctx, self.words[word], args, proven=True)

    async def chat_roles(self) -> list[tuple[str, set[str], str | None]]:
        """(telegram address, roles, language) of everyone whose roles go beyond a customer's, for their menus."""
        async with self.store.uow() as uow:
            rows = (await uow.session.execute(
                select(Address.address, Role.role, Person.language)
                .join(Role, Role.person_id == Address.person_id).join(Person, Person.id == Address.person_id)
                .where(Address.kind == "telegram", Address.verified))).all()
        found: dict[str, tuple[set[str], str | None]] = {}
        for address, role, lang in rows:
            found.setdefault(address, (set(), lang))[0].add(role)
        return [(address, effective_roles(roles), lang) for address, (roles, lang) in found.items()]

    def allowed_commands(self, roles: set[str]) -> list[Command]:
        return [c for c in self.commands if c.allowed & roles]

    async def _remember_choices(self, ctx: Context, replies: Iterable[Reply]) -> None:
        """Give every button a short key and remember what it runs (callback_data is ≤ 64 bytes)."""
        rows = []
        for reply in replies:
            keyed = []
            for choice in reply.choices:
                key = new_key()
                keyed.append(Choice(choice.label, choice.command, key))
                rows.append({"key": key, "address": ctx.sender, "command": choice.command, "created_at": ctx.now})
            reply.choices = keyed
        if rows:
            await ctx.session.execute(REMEMBER_CHOICES, rows)
