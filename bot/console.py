"""The console edge: one line is one message, choices are numbered, `:as ADDRESS` switches speakers."""
from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from typing import TextIO

from bot.outbox import OutboxWorker
from bot.transport import Transport
from handlers.messages import Choice, Inbound, Reply
from handlers.router import Desk
from storage.models import Outbox
from templates import word

SWITCH = ":as "


class ConsoleTransport:
    """Shows chat messages meant for other people (staff, customers) on the console."""

    def __init__(self, out: TextIO, lang: str):
        self.out, self.lang = out, lang

    async def send(self, row: Outbox) -> None:
        self.out.write(word(self.lang, "console.delivered", recipient=row.recipient, text=row.text) + "\n")

    async def close(self) -> None:
        pass


class AnnouncingTransport:
    """Delivers mail through another transport and says so on the console."""

    def __init__(self, inner: Transport, out: TextIO, lang: str):
        self.inner, self.out, self.lang = inner, out, lang

    async def send(self, row: Outbox) -> None:
        await self.inner.send(row)
        self.out.write(word(self.lang, "console.mailed", recipient=row.recipient, subject=row.subject or "") + "\n")

    async def close(self) -> None:
        await self.inner.close()


class Console:
    def __init__(self, desk: Desk, worker: OutboxWorker, speaker: str, out: TextIO = sys.stdout, lang: str = "en"):
        self.desk, self.worker, self.speaker, self.out, self.lang = desk, worker, speaker, out, lang
        self.choices: list[Choice] = []

    async def run(self, source: TextIO = sys.stdin) -> None:
        """Read lines until end of input; each line is one message."""
        interactive = source.isatty()
        if interactive:
            self.out.write(word(self.lang, "console.banner", speaker=self.speaker) + "\n")
        while True:
            if interactive:
                self.out.write(f"{self.speaker}> ")
                self.out.flush()
            line = await asyncio.to_thread(source.readline)
            if not line:
                break
            await self.line(line.rstrip("\r\n"))
        await self.worker.drain()

    async def line(self, line: str) -> None:
        """Handle one typed line: a speaker switch, a choice number, or a message."""
        text = line.strip()
        if not text:
            return
        if text.startswith(SWITCH):
            self.speaker, self.choices = text[len(SWITCH):].strip(), []
            self.out.write(word(self.lang, "console.speaker", speaker=self.speaker) + "\n")
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
            self.show(reply)
        self.out.flush()
        await self.worker.drain()
        self.out.flush()

    def show(self, reply: Reply) -> None:
        self.out.write(reply.text + "\n")
        if reply.choices:
            self.choices = reply.choices
            for number, choice in enumerate(reply.choices, 1):
                self.out.write(f"  {number}) {choice.label}\n")
