"""The bot's side of bench/load.py: the fake Bot API hands each chat's answer to the customer waiting for it,
and the SMTP handler hands each code mail to the event loop.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tests.fakebotapi import FakeBotApi
from tests.smtp import Recorder


@dataclass(frozen=True)
class Answer:
    """A message the bot sent into a chat, as the customer sees it."""

    text: str
    buttons: list[tuple[str, str]]  # (label, callback data)
    message_id: int
    at: float  # perf_counter when the fake recorded it


class AnsweringBotApi(FakeBotApi):
    """The fake Bot API, handing each chat's next sendMessage to the customer waiting for it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.waiting: dict[int, asyncio.Future[Answer]] = {}
        self.unasked = 0  # messages nobody waited for (a second answer to one step would show here)

    def expect(self, chat_id: int) -> asyncio.Future[Answer]:
        """The chat's next answer; ask before the update goes out, so a quick answer is not missed."""
        future = asyncio.get_running_loop().create_future()
        self.waiting[chat_id] = future
        return future

    async def _send_message(self, params: dict) -> dict:
        result = await super()._send_message(params)
        rows = (params.get("reply_markup") or {}).get("inline_keyboard", [])
        answer = Answer(params["text"], [(b["text"], b["callback_data"]) for row in rows for b in row],
                        result["message_id"], time.perf_counter())
        future = self.waiting.pop(params["chat_id"], None)
        if future is None or future.done():
            self.unasked += 1
        else:
            future.set_result(answer)
        return result


class Mailbox(Recorder):
    """The SMTP server's handler (it runs in aiosmtpd's thread): hands code mails to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__()
        self.loop = loop
        self.codes: dict[str, asyncio.Future[tuple[str, float]]] = {}

    def code_for(self, address: str) -> asyncio.Future[tuple[str, float]]:
        """The (code, arrival time) of the next code mail to `address`; call in the loop's thread."""
        return self.codes.setdefault(address, self.loop.create_future())

    def _arrived(self, address: str, code: str, at: float) -> None:
        future = self.code_for(address)
        if not future.done():
            future.set_result((code, at))

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        mail = self.messages[-1]
        code = str(mail["Subject"]).split()[0]
        if code.isdigit():  # every code mail's subject begins with the code; confirmations do not
            self.loop.call_soon_threadsafe(self._arrived, str(mail["To"]), code, time.perf_counter())
        return answer
