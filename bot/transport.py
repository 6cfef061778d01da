"""What the outbox worker needs from a channel: send one row, or say why not."""
from __future__ import annotations

from typing import Protocol

from handlers.messages import Choice
from storage.models import Outbox


class TemporaryFailure(Exception):
    """Try again later: the server is down, busy or asks us to wait."""


class PermanentFailure(Exception):
    """Give up now: the recipient or the message is refused, and retrying cannot help."""


class Transport(Protocol):
    async def send(self, row: Outbox) -> None:
        """Deliver one outbox row or raise TemporaryFailure / PermanentFailure."""

    async def close(self) -> None:
        """Release connections."""


def row_choices(row: Outbox) -> list[Choice]:
    """A chat row's buttons; each key was remembered for the recipient when the row was queued."""
    return [Choice(item["label"], "", item["key"]) for item in row.choices or []]
