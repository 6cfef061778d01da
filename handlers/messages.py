"""The channel-free message model: what edges hand in and what they get back."""
from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def new_message_id(domain: str) -> str:
    """Mint a Message-ID for a mail of ours: 192 random bits from `secrets`, nothing about time or process.

    An answer to one of our mails names its id, so nobody may guess one; a forged From: must not either.
    """
    return f"<{secrets.token_urlsafe(24)}@{domain}>"


@dataclass(frozen=True)
class Attachment:
    name: str
    mime: str
    data: bytes
    # Whom the file's content names, by person id, when the code that made it knows (an invoice's buyer,
    # the staff and customers a week picture shows); None: not known (a file from outside, most text files).
    # Erasing a person drops a delivered file that names them by this record, without reading the file.
    names: tuple[int, ...] | None = None

    def stored(self) -> dict[str, Any]:
        """As an outbox row keeps it: name, type, the bytes as base64, and whom it names if that is known."""
        item: dict[str, Any] = {"name": self.name, "type": self.mime, "data": base64.b64encode(self.data).decode()}
        if self.names is not None:
            item["names"] = sorted(set(self.names))
        return item

    @classmethod
    def from_stored(cls, item: dict) -> Attachment:
        """An attachment as an outbox row keeps it (see `stored`); a row from before `names` reads as not known."""
        return cls(item["name"], item.get("type") or "application/octet-stream", base64.b64decode(item["data"]),
                   recorded_names(item))


def recorded_names(item: dict) -> tuple[int, ...] | None:
    """The person ids a stored file records that it names; None when it records none (or not as a list of ids)."""
    names = item.get("names")
    if not isinstance(names, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in names):
        return None
    return tuple(names)


@dataclass(frozen=True)
class Choice:
    """A button. `command` is what picking it runs; `key` is the short id the router assigns."""

    label: str
    command: str
    key: str = ""


@dataclass(frozen=True)
class MailMeta:
    """What an email adds to a message: threading, the full body, and whether a machine sent it."""

    message_id: str
    subject: str = ""
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    body: str = ""  # the whole text, quotes and signature included (kept on tickets)
    automatic: bool = False  # auto-submitted, bulk, list or bounce: never answered automatically
    unread: tuple[str, ...] = ()  # what of the mail could not be read (see bot/mail/parse/nesting.py)
    looked_like: str = ""  # a line starting with a command word in a mail that is no command (for a hint)
    quiet: bool = False  # the sender had their automatic answers for this hour: acknowledge nothing
    acks_lately: int | None = None  # acknowledgements to the sender in the last hour, if the edge counted them


@dataclass(frozen=True)
class Inbound:
    channel: str  # telegram | email | console
    sender: str  # telegram:<id> | email:<addr> | console:<name>
    received_at: datetime
    text: str = ""
    choice: str | None = None  # the key of a picked Choice
    attachments: tuple[Attachment, ...] = ()
    thread: str | None = None
    language_hint: str | None = None
    display_name: str | None = None
    mail: MailMeta | None = None
    # What the desk worked out before the unit of work began (a member list read in a child process).
    prepared: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Reply:
    text: str
    choices: list[Choice] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    recipient: str | None = None  # None: the sender
    subject: str | None = None
    ephemeral_seconds: int | None = None  # shown once: chat edges remove it (and what asked for it) after this
    template: str | None = None  # the template the text was rendered from: which answer this is
    # Files still to make from what the handler read (an export): slow work, done in a thread once the
    # unit of work is over (make_files); the edges only ever see `attachments`.
    later: list[Callable[[], Attachment]] = field(default_factory=list)


async def make_files(replies: list[Reply]) -> list[Reply]:
    """Make the files the replies still owe, each in a thread, and attach them."""
    for reply in replies:
        while reply.later:
            reply.attachments.append(await asyncio.to_thread(reply.later.pop(0)))
    return replies
