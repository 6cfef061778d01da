"""What the desk tells an observer (bot/metrics.py counts it): each message handled, each wrong code refused.

The handlers stay free of any metrics library; the desk holds an Observer, silent unless the edge gives one.
Work that may still be rolled back and done again (a batch of mails) is watched `holding()`: what it tells is
kept back, and passed on only once the work commits, so a message done twice is counted once.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, Protocol

Outcome = Literal["answered", "refused", "error"]
OTHER = "other"  # the route of a message that runs no command or flow: unknown words stay one label


class Observer(Protocol):
    def handled(self, channel: str, route: str, outcome: Outcome, seconds: float) -> None:
        """One message answered, refused or failed, by its route: a command word, "flow:NAME" or OTHER."""

    def code_refused(self) -> None:
        """A code typed against a pending code was wrong."""


class Unobserved:
    """The observer when nobody watches."""

    def handled(self, channel: str, route: str, outcome: Outcome, seconds: float) -> None:
        pass

    def code_refused(self) -> None:
        pass


class Held:
    """What work told while it may still be undone: passed on by `release` once it committed, else forgotten."""

    def __init__(self) -> None:
        self.told: list[Callable[[Observer], None]] = []

    def handled(self, channel: str, route: str, outcome: Outcome, seconds: float) -> None:
        self.told.append(lambda observer: observer.handled(channel, route, outcome, seconds))

    def code_refused(self) -> None:
        self.told.append(lambda observer: observer.code_refused())

    def release(self, observer: Observer) -> None:
        told, self.told = self.told, []
        for tell in told:
            tell(observer)


# The hold of the work this task is doing now, if any (Desk.observer reads it).
HELD: ContextVar[Held | None] = ContextVar("held_observations", default=None)


@contextmanager
def holding() -> Iterator[Held]:
    """Keep back what the desk tells its observer in this block; `release` the Held after the commit."""
    held = Held()
    token = HELD.set(held)
    try:
        yield held
    finally:
        HELD.reset(token)
