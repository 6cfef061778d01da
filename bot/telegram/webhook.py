"""Webhook mode for one worker among several: the HTTP route stores updates in the inbox, the inbox worker
answers them, and each answer is queued in the outbox in the transaction that marks its update handled.

Nothing is acknowledged to Telegram before it is stored. What a crash can repeat is only a message being
sent at that moment: its outbox row is claimed by the dead worker, and another worker's outbox sends it once
the claim runs out (it may then arrive after later answers of that chat).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
from datetime import datetime

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.listening import Listener
from bot.outbox import OutboxWorker
from bot.telegram.calls import tolerate
from bot.telegram.delivery import TelegramTransport
from bot.telegram.inbox import MAX_CLAIMS, Claimed, UpdateInbox
from bot.telegram.lease import Lease
from bot.telegram.removals import shown_once
from bot.telegram.replies import recipient_chat, send_replies
from bot.telegram.updates import click_chat, inbound_from_click, inbound_from_message, while_typing
from handlers.messages import Inbound, Reply, make_files
from handlers.router import Stale
from storage.db import UnitOfWork
from storage.models import Outbox

log = logging.getLogger(__package__)  # the whole Telegram edge logs as "bot.telegram"

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024  # bytes; an update is a few kilobytes (files travel as ids)
POLL_SECONDS = 1.0  # how often an idle worker looks for updates other workers stored (or left behind)


class Webhook:
    """The HTTP route Telegram posts to: a genuine update is stored, then answered 200."""

    def __init__(self, inbox: UpdateInbox, secret: str, path: str, stored):
        self.inbox = inbox
        self.secret = secret.encode()
        self.path = "/" + path.lstrip("/")
        self.stored = stored  # called after each stored update: wakes this worker's inbox worker
        self._listener: Listener | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (an OSError says why it cannot)."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(self.path, self._take)
        self._listener = Listener(app, "Telegram webhook")
        await self._listener.listen(host, port)

    async def close(self) -> None:
        """Stop taking updates; Telegram (or the proxy in front) posts them to another worker meanwhile."""
        if self._listener is not None:
            await self._listener.close()

    async def _take(self, request: web.Request) -> web.Response:
        # Without the secret anyone who finds the URL could post updates as anyone.
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), self.secret):
            return web.Response(status=403)
        try:
            body = json.loads(await request.read())  # over MAX_BODY aiohttp answers 413
        except ValueError:
            return web.Response(status=400)
        if not isinstance(body, dict) or not isinstance(body.get("update_id"), int):
            return web.Response(status=400)
        await self.inbox.take(body)  # a database error answers 500: Telegram posts the update again
        self.stored()
        return web.Response()


class InboxWorker:
    """Answers stored updates, `concurrency` at a time, one sender's one at a time and in update_id order."""

    def __init__(self, app: Application, inbox: UpdateInbox, concurrency: int, max_attempts: int = 8):
        self.app = app
        self.desk = app.bot_data["desk"]
        self.inbox = inbox
        self.concurrency = max(1, concurrency)
        # Its own small outbox worker, to send the queued answers at once; the process's outbox worker
        # (every worker's) takes over the rows whose claim ran out.
        self.outbox = OutboxWorker(self.desk.store, {"telegram": TelegramTransport(app.bot)}, clock=self.desk.clock,
                                   max_attempts=max_attempts)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        """Finish the updates being answered, then stop."""
        self._stop.set()
        self._wake.set()
        await asyncio.gather(*self._tasks)

    async def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before looking: an update stored from now on wakes this task
            try:
                worked = await self.answer_next()
            except Exception:  # noqa: BLE001 - the database is away: the claim runs out, the update waits
                log.exception("answering a stored Telegram update failed")
                worked = False
            if not worked:
                try:
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
                except TimeoutError:
                    pass

    async def answer_next(self) -> bool:
        """Claim one stored update and answer it; False if none was free."""
        claimed = await self.inbox.claim()
        if claimed is None:
            return False
        try:
            await self._answer(claimed)
        except Stale as exc:
            log.warning("%s; its answer was dropped", exc)
        return True

    async def _answer(self, claimed: Claimed) -> None:
        """Answer a claimed update, its claim renewed from now until it is released (or this fails)."""
        lease = Lease(self.inbox, claimed)
        lease.start()
        try:
            await self._answer_held(claimed, lease)
        finally:
            await lease.stop()
            if lease.until is not None:  # the answer was settled: the sender's next update may be claimed
                await self.inbox.release(claimed.update_id, lease.until)

    async def _answer_held(self, claimed: Claimed, lease: Lease) -> None:
        try:
            if claimed.claims > MAX_CLAIMS:
                raise RuntimeError(f"{claimed.claims - 1} claims of it ran out unanswered (did it crash its workers?)")
            update = Update.de_json(claimed.body, self.app.bot)
            found = await self._inbound(update)
        except Exception:  # noqa: BLE001 - an update we cannot read would be claimed again and again
            log.exception("Telegram update %s of %s cannot be answered; dropped", claimed.update_id, claimed.sender)
            found = None
        if found is None:
            async with self.desk.store.uow() as uow:
                await self.inbox.settle(uow, claimed, sending=False)
                await uow.commit()
            return
        inbound, chat_id = found
        queued: list[Outbox | None] = []
        held: list[datetime | None] = []

        async def settle(uow: UnitOfWork, replies: list[Reply]) -> None:
            held[:] = [await self.inbox.settle(uow, claimed)]
            queued[:] = await self._queue(uow, chat_id, replies, held[0])

        replies = await self._handled(update, inbound, settle)
        lease.sending(held[0], queued)  # committed: from now on the sender's claim is the one renewed
        await self._send(update, chat_id, replies, queued, lease.guard)

    async def _inbound(self, update: Update) -> tuple[Inbound, int] | None:
        """The Inbound and its chat for a private message or a button press; None for anything else."""
        message, query = update.message, update.callback_query
        if message is not None and message.from_user is not None and message.chat.type == "private":
            return await inbound_from_message(message), message.chat_id
        if query is not None:
            await tolerate(query.answer(), "answerCallbackQuery")  # stops the client's spinner
            return inbound_from_click(query), click_chat(query)
        return None  # replies carry codes and bookings that a group must not read

    async def _handled(self, update: Update, inbound: Inbound, settle) -> list[Reply]:
        """The desk's answer, settled; "typing…" shows in the chat when it is slow in coming."""
        if update.message is None:
            return await self.desk.handle(inbound, settle)
        return await while_typing(update.message.chat, self.app.bot_data.get("typing_after", 1.0),
                                  self.desk.handle(inbound, settle))

    async def _queue(self, uow: UnitOfWork, chat_id: int, replies: list[Reply],
                     until: datetime | None) -> list[Outbox | None]:
        """An outbox row, claimed by this worker, for each reply the outbox can carry; None for the rest
        (files still to make, shown-once messages, other channels), which go out directly. The rows' claim
        ends with the sender's, and is renewed with it (bot/telegram/lease.py): after a crash the outbox sends
        them as the sender's next update is taken."""
        now = self.desk.clock.now()
        rows: list[Outbox | None] = []
        for reply in replies:
            target = recipient_chat(reply.recipient, chat_id)
            if reply.later or reply.ephemeral_seconds is not None or target is None:
                rows.append(None)
                continue
            rows.append(Outbox(channel="telegram", recipient=f"telegram:{target}", text=reply.text,
                               attachments=[a.stored() for a in reply.attachments],
                               choices=[{"label": c.label, "key": c.key} for c in reply.choices],
                               status="pending", attempts=0, next_attempt_at=now,
                               claimed_until=until, created_at=now))
        uow.session.add_all([row for row in rows if row is not None])
        await uow.flush()
        return rows

    async def _send(self, update: Update, chat_id: int, replies: list[Reply], queued: list[Outbox | None],
                    guard: asyncio.Lock) -> None:
        """Send the answers in order: queued rows through the outbox (their claim's renewals wait on
        `guard`), the others directly."""
        removals = self.app.bot_data["removals"]
        for reply, row in zip(replies, queued, strict=True):
            if row is not None:
                await self.outbox.deliver_claimed([row], guard)
            else:
                await send_replies(self.app.bot, chat_id, await make_files([reply]), removals)
        seconds = shown_once(replies)
        if seconds is not None and update.message is not None:  # the question goes with the answer
            await removals.schedule(self.app.bot, chat_id, [update.message.message_id], seconds)
