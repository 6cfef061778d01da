"""What a capability module contributes to the desk: its commands, flows, code completions and hooks."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from handlers.bounces import BounceHook
from handlers.context import Clock, Context, DeskConfig
from handlers.jobs.table import Due
from handlers.messages import Inbound, Reply
from handlers.rules.roles import EVERYONE
from storage.db import Store, UnitOfWork

Handler = Callable[[Context, str], Awaitable[list[Reply]]]
FlowStep = Callable[[Context, str], Awaitable[list[Reply]]]
# What a right code (or the last wrong try) does with the code's row.
CodeHook = Callable[[Context, Any], Awaitable[list[Reply]]]
# Whether a well-shaped command line really is one, when that needs the database (`book` names a service).
LineCheck = Callable[[UnitOfWork, str], Awaitable[bool]]
# By email, a word that changes state waits for a code: this asks for it (the command line as typed).
RoundTrip = Callable[[Context, str], Awaitable[list[Reply]]]
# What runs a job at its time: None when it did its work, else why there was nothing left to do.
JobRun = Callable[[Context, Due], Awaitable[str | None]]
# The rows of an exportable list for the asker: field → value (str, int, bool, date, time, aware datetime,
# Decimal, a list of those, or None); `args` is what the list reads (dates, a group). A Refusal says no.
RowSource = Callable[[Context, str], Awaitable[list[dict[str, Any]]]]


class PreparingDesk(Protocol):
    """What a preparer uses of the desk: its store, clock and configuration, and its command words."""

    @property
    def store(self) -> Store: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def config(self) -> DeskConfig: ...
    @property
    def words(self) -> Mapping[str, Command]: ...


# Slow work on what a message brings (reading an upload), done before its unit of work opens.
Preparer = Callable[[PreparingDesk, Inbound], Awaitable[Inbound]]


@dataclass(frozen=True)
class Command:
    word: str
    run: Handler
    allowed: frozenset[str] = EVERYONE
    aliases: tuple[str, ...] = ()
    section: str = "everyone"  # where /help lists it
    safe: bool = False  # reads only; by email, anything else runs only after a code round trip
    # For a word that is not safe: which of its lines only read (by email they run without a code).
    reads: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class ExportList:
    """A list `export` writes as a CSV or XLSX file (handlers/exports): who may ask, its fields, its rows.

    `allowed` are the roles that may export the list at all; `rows` narrows to what the asker may see
    (a manager: their groups) and refuses arguments it cannot read. `fields` are every column, in file
    order; `default` are those written when the asker names none (empty: all)."""

    name: str  # the word after `export`
    rows: RowSource
    fields: tuple[str, ...]
    default: tuple[str, ...] = ()
    allowed: frozenset[str] = EVERYONE
    aliases: tuple[str, ...] = ()  # German words for the list ("kunden")

    @property
    def chosen(self) -> tuple[str, ...]:
        """The fields written when none are named."""
        return self.default or self.fields


@dataclass
class Handlers:
    """Everything a capability module contributes, gathered explicitly by the composition root."""

    commands: list[Command] = field(default_factory=list)
    flows: dict[str, FlowStep] = field(default_factory=dict)
    completions: dict[str, CodeHook] = field(default_factory=dict)  # code purpose → what a right code does
    exhaustions: dict[str, CodeHook] = field(default_factory=dict)  # code purpose → what the last wrong try undoes
    start_payloads: dict[str, Handler] = field(default_factory=dict)  # deep-link prefix → handler
    fallbacks: dict[str, Handler] = field(default_factory=dict)  # channel → what takes text that is no command
    line_checks: dict[str, LineCheck] = field(default_factory=dict)  # canonical word → does this line run it
    preparers: list[Preparer] = field(default_factory=list)
    round_trip: RoundTrip | None = None  # asks an email sender to prove their mailbox before a command runs
    jobs: dict[str, JobRun] = field(default_factory=dict)  # job kind → what runs it (handlers/jobs)
    exports: dict[str, ExportList] = field(default_factory=dict)  # list name → what `export NAME` writes
    bounces: dict[str, BounceHook] = field(default_factory=dict)  # mail purpose → what its bounce does

    @classmethod
    def combine(cls, *parts: Handlers) -> Handlers:
        combined = cls()
        for part in parts:
            combined.commands.extend(part.commands)
            combined.flows.update(part.flows)
            combined.completions.update(part.completions)
            combined.exhaustions.update(part.exhaustions)
            combined.start_payloads.update(part.start_payloads)
            combined.fallbacks.update(part.fallbacks)
            combined.line_checks.update(part.line_checks)
            combined.preparers.extend(part.preparers)
            combined.round_trip = part.round_trip or combined.round_trip
            combined.jobs.update(part.jobs)
            combined.bounces.update(part.bounces)
            clash = combined.exports.keys() & part.exports.keys()
            if clash:  # two capabilities answering `export NAME` would be a silent surprise
                raise ValueError(f"export lists registered twice: {sorted(clash)}")
            combined.exports.update(part.exports)
        return combined
