"""What a capability module contributes to the desk: its commands, flows, code completions and hooks."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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
        return combined
