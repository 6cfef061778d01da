"""The console edge: one line is one message, choices are numbered, `:as ADDRESS` switches speakers.

The console shows what is meant for its speaker and nothing else. Files sent to the speaker are saved
in a folder and their paths shown. It delivers no outbox rows of its own accord: `frontdesk chat` runs
beside `frontdesk run`, whose transports own the outbox. Only the demo, the one process of its local
world, hands it a worker (see `speaker_worker`): mail goes into the outbox folder, chat messages wait
until their addressee speaks.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import sys
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from sqlalchemy import or_

from bot.mail.smtp import EmlDirTransport
from bot.outbox import OutboxWorker
from bot.transport import row_choices
from handlers.messages import Attachment, Choice, Inbound, Reply
from handlers.router import Desk
from storage.db import Store
from storage.models import Outbox
from templates import word

log = logging.getLogger(__name__)
SWITCH = ":as "
MAX_NAME = 120


class AnnouncingTransport:
    """Writes mail into the outbox folder and says on the console where (never what: a code is no one else's)."""

    def __init__(self, inner: EmlDirTransport, out: TextIO, lang: str):
        self.inner, self.out, self.lang = inner, out, lang

    async def send(self, row: Outbox) -> None:
        await self.inner.send(row)
        self.out.write(word(self.lang, "console.mailed", recipient=row.recipient, path=self.inner.path_for(row)) + "\n")

    async def close(self) -> None:
        await self.inner.close()


class SpeakerTransport:
    """Shows an outbox chat message to the console's speaker, whom the worker's scope limits it to."""

    def __init__(self, console: Console):
        self.console = console

    async def send(self, row: Outbox) -> None:
        files = [Attachment(a.get("name") or "file", a.get("type") or "application/octet-stream",
                            decode(a.get("data") or "")) for a in row.attachments or []]
        await self.console.show(Reply(row.text, choices=row_choices(row), attachments=files))

    async def close(self) -> None:
        pass


def decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return b""


class Console:
    def __init__(self, desk: Desk, worker: OutboxWorker | None, speaker: str, out: TextIO = sys.stdout,
                 lang: str = "en", files: Path = Path("frontdesk-files"),
                 jobs: Callable[[], Awaitable[int]] | None = None):
        """`worker` delivers what the outbox holds (the demo's, scoped with `speaker_worker`); None leaves
        the outbox to the process running the channels. `jobs` runs what is due (the demo's reminders and
        agendas) before each delivery; None leaves them to that process too."""
        self.desk, self.worker, self.speaker, self.out, self.lang = desk, worker, speaker, out, lang
        self.jobs = jobs
        self.files = Path(files)
        self.choices: list[Choice] = []

    async def run(self, source: TextIO = sys.stdin) -> None:
        """Read lines until end of input; each line is one message."""
        interactive = source.isatty()
        if interactive:
            self.out.write(word(self.lang, "console.banner", speaker=self.speaker) + "\n")
        await self.deliver()
        while True:
            if interactive:
                self.out.write(f"{self.speaker}> ")
                self.out.flush()
            line = await asyncio.to_thread(source.readline)
            if not line:
                break
            await self.line(line.rstrip("\r\n"))
        await self.deliver()

    async def line(self, line: str) -> None:
        """Handle one typed line: a speaker switch, a choice number, or a message."""
        text = line.strip()
        if not text:
            return
        if text.startswith(SWITCH):
            self.speaker, self.choices = text[len(SWITCH):].strip(), []
            self.out.write(word(self.lang, "console.speaker", speaker=self.speaker) + "\n")
            await self.deliver()  # what waited for the new speaker
            return
        await self.send(self.inbound(text))

    def inbound(self, text: str) -> Inbound:
        """A number picks one of the last choices; anything else is text."""
        now = datetime.now(timezone.utc)
        if text.isdigit() and 1 <= int(text) <= len(self.choices):
            return Inbound("console", self.speaker, now, choice=self.choices[int(text) - 1].key)
        return Inbound("console", self.speaker, now, text=text)

    async def send(self, inbound: Inbound) -> None:
        replies = await self.desk.handle(inbound)
        for reply in replies:
            if reply.recipient is None or reply.recipient == self.speaker:
                await self.show(reply)
            else:  # as Telegram does: a reply names someone the console does not speak for
                log.warning("a reply for %s is not shown to %s; dropped", reply.recipient, self.speaker)
        self.out.flush()
        await self.deliver()

    async def deliver(self) -> None:
        if self.jobs is not None:
            await self.jobs()
        if self.worker is not None:
            await self.worker.drain()
            self.out.flush()

    async def show(self, reply: Reply) -> None:
        self.out.write(reply.text + "\n")
        for attachment in reply.attachments:
            try:
                path = await asyncio.to_thread(save_file, self.files, attachment)
            except OSError as exc:
                self.out.write(word(self.lang, "console.file_failed", name=attachment.name,
                                    error=exc.strerror or exc) + "\n")
            else:
                self.out.write(word(self.lang, "console.file", name=attachment.name, path=path) + "\n")
        if reply.choices:
            self.choices = reply.choices
            for number, choice in enumerate(reply.choices, 1):
                self.out.write(f"  {number}) {choice.label}\n")

    def scope(self):
        """The demo worker's rows: every mail (into the folder), chat messages only for the speaker."""
        return or_(Outbox.channel == "email", Outbox.recipient == self.speaker)


def speaker_worker(store: Store, console: Console, mail: AnnouncingTransport, max_attempts: int) -> OutboxWorker:
    """The demo's outbox worker: mail into the folder, chat messages shown when their addressee speaks."""
    chat = SpeakerTransport(console)
    return OutboxWorker(store, {"email": mail, "telegram": chat, "console": chat}, max_attempts=max_attempts,
                        scope=console.scope)


def safe_name(name: str) -> str:
    """A file name that stays inside the folder: no directories, no leading dot, no control characters."""
    name = name.replace("\\", "/").rpartition("/")[2]
    name = "".join(c if (c.isalnum() or c in "._- ") and unicodedata.category(c)[0] != "C" else "_" for c in name)
    name = name.strip(" .")[-MAX_NAME:].lstrip(" .")
    return name or "file"


def save_file(folder: Path, attachment: Attachment) -> Path:
    """Write a file sent to the speaker into `folder`, readable by this user only, never over another one."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stem, dot, suffix = safe_name(attachment.name).rpartition(".")
    if not dot or not stem:
        stem, dot, suffix = safe_name(attachment.name), "", ""
    for number in range(1, 1000):
        path = folder / (f"{stem}{dot}{suffix}" if number == 1 else f"{stem}-{number}{dot}{suffix}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as file:
            file.write(attachment.data)
        return path
    raise FileExistsError(f"too many files named like {attachment.name!r} in {folder}")
