"""What the desk tells an observer (bot/metrics.py counts it): each message handled, each wrong code refused.

The handlers stay free of any metrics library; the desk holds an Observer, silent unless the edge gives one.
"""
from __future__ import annotations

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
