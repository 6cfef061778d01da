"""IMAP intake (aioimaplib): new mail → EmailEdge, one transaction per mail, and only then \\Seen (or a move).

IMAP sequence numbers shift when mail is expunged, so everything here goes by UID, and UIDs only
mean something together with the mailbox's UIDVALIDITY (kept in mailbox_state).
"""
from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

import aioimaplib

from bot.mail.intake import EmailEdge, Incoming, describe
from bot.settings import hide_password, split_url
from storage.models import MailboxState

log = logging.getLogger(__name__)

MB = 1024 * 1024
FIRST_RECONNECT = 1.0
LONGEST_RECONNECT = 300.0
FETCH_BATCH = 50  # mails per FETCH: fewer round trips, bounded memory
COMMIT_BATCH = 25  # mails per transaction: one commit for many, and SQLite's write lock held only ~0.1 s
FETCH_BYTES = 16 * MB  # …and at most this much per FETCH (a single larger mail goes alone)
SIZE_CHUNK = 500  # UIDs per size query
MAX_FETCH = 50 * MB  # a larger mail is read by its headers only and answered with a refusal
FETCH_LINE = re.compile(rb"^\d+ FETCH \(")
UID = re.compile(rb"\bUID (\d+)")
SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


class ImapError(Exception):
    """The server refused something we cannot go on without (login, select)."""


class ConnectionLost(ImapError):
    """The server closed the connection."""


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    implicit_tls: bool
    username: str
    password: str
    mailbox: str
    move_to: str | None  # done mail is moved here instead of only flagged \Seen


def parse_imap_url(url: str) -> ImapTarget:
    """Read imap://user:pass@host:port/MAILBOX[?move_to=FOLDER] or imaps://…; parts may be percent-encoded."""
    parts = split_url(url)
    if parts is None or parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        # The URL usually holds the password: the message shows it without.
        raise ValueError("FRONTDESK_IMAP_URL must look like imap://user:pass@host:port/INBOX, "
                         f"not {hide_password(url)!r}")
    implicit_tls = parts.scheme == "imaps"
    move_to = parse_qs(parts.query).get("move_to", [None])[0]
    return ImapTarget(
        host=parts.hostname, port=parts.port or (993 if implicit_tls else 143), implicit_tls=implicit_tls,
        username=unquote(parts.username), password=unquote(parts.password or ""),
        mailbox=unquote(parts.path.lstrip("/")) or "INBOX", move_to=move_to,
    )


def astring(value: str) -> str:
    """An IMAP string argument: quoted, since names and passwords may hold spaces or specials."""
    return aioimaplib.quoted(value)


def uid_set(uids: list[int]) -> str:
    """'101:150,152': ranges keep the command line short (servers cap its length)."""
    runs: list[list[int]] = []
    for uid in sorted(uids):
        if runs and uid == runs[-1][1] + 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in runs)


def reconnect_delay(failures: int) -> float:
    """1 s, 2 s, 4 s … at most 5 minutes."""
    return min(FIRST_RECONNECT * 2 ** max(failures - 1, 0), LONGEST_RECONNECT)


def check(response, what: str) -> None:
    if response.result != "OK":
        said = b" ".join(bytes(line) for line in response.lines)[:200]
        raise ImapError(f"{what} refused: {response.result} {said!r}")


def fetched_records(lines: list) -> list[tuple[bytes, bytes | None]]:
    """Group FETCH response lines (without the tagged one) into (metadata, literal) per message, whatever
    order the server puts the items in."""
    records: list[list] = []
    for line in lines:
        if isinstance(line, bytearray):
            if records:
                records[-1][1] = bytes(line)
        elif FETCH_LINE.match(line):
            records.append([bytes(line), None])
        elif records:
            records[-1][0] += b" " + bytes(line)
    return [(meta, literal) for meta, literal in records]


class ImapConnection:
    """One logged-in session with the mailbox selected."""

    def __init__(self, target: ImapTarget, ssl_context: ssl.SSLContext | None, timeout: float):
        self.target = target
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.timeout = timeout
        self.client: aioimaplib.IMAP4 | None = None
        self.uidvalidity = 0
        self.lost = asyncio.Event()

    @property
    def session(self) -> aioimaplib.IMAP4:
        """The client of the open connection; asking before open() is a mistake in our code."""
        if self.client is None:
            raise ImapError("the IMAP connection is not open")
        return self.client

    @property
    def capabilities(self) -> set[str]:
        return self.session.protocol.capabilities

    async def open(self) -> None:
        """Connect (TLS, or STARTTLS when offered), log in and select the mailbox."""
        target = self.target
        if target.implicit_tls:
            self.client = aioimaplib.IMAP4_SSL(target.host, target.port, timeout=self.timeout,
                                               ssl_context=self.ssl_context)
        else:
            self.client = aioimaplib.IMAP4(target.host, target.port, timeout=self.timeout)
        self.client.protocol.conn_lost_cb = lambda exc: self.lost.set()
        await self.client.wait_hello_from_server()
        if not target.implicit_tls and "STARTTLS" in self.capabilities:
            await self.starttls()
        check(await self.client.login(astring(target.username), target.password), "LOGIN")
        await asyncio.wait_for(self.client.protocol.capability(), self.timeout)  # the login reply's list is partial
        await self.select()

    async def starttls(self) -> None:
        """Upgrade the plain connection; aioimaplib has no STARTTLS of its own."""
        protocol = self.session.protocol
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        check(await asyncio.wait_for(protocol.execute(command), self.timeout), "STARTTLS")
        protocol.transport = await asyncio.get_running_loop().start_tls(
            protocol.transport, protocol, self.ssl_context, server_hostname=self.target.host)
        await asyncio.wait_for(protocol.capability(), self.timeout)  # capabilities may change after TLS

    async def select(self) -> None:
        """Select the mailbox and note its UIDVALIDITY."""
        response = await self.session.select(astring(self.target.mailbox))
        check(response, f"SELECT {self.target.mailbox}")
        found = [UIDVALIDITY.search(bytes(line)) for line in response.lines]
        self.uidvalidity = next((int(m.group(1)) for m in found if m), 0)

    async def call(self, command):
        """Run one IMAP command; a dropped connection fails it at once instead of after the timeout."""
        task = asyncio.ensure_future(command)
        await first_of(asyncio.shield(task), self.lost.wait())
        if not task.done():
            task.cancel()
            raise ConnectionLost("the IMAP server closed the connection")
        return task.result()

    async def new_uids(self, after: int) -> list[int]:
        """UIDs above `after`, ascending ("n:*" always includes the highest UID, so filter)."""
        response = await self.call(self.session.uid_search(f"UID {after + 1}:*", charset=None))
        check(response, "UID SEARCH")
        uids = {int(token) for line in response.lines[:-1] for token in bytes(line).split() if token.isdigit()}
        return sorted(uid for uid in uids if uid > after)

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE by UID, asked for in chunks so no command line grows too long."""
        found = {}
        for start in range(0, len(uids), SIZE_CHUNK):
            response = await self.call(self.session.uid("fetch", uid_set(uids[start:start + SIZE_CHUNK]),
                                                       "(UID RFC822.SIZE)"))
            check(response, "UID FETCH sizes")
            for meta, _ in fetched_records(response.lines[:-1]):
                uid, size = UID.search(meta), SIZE.search(meta)
                if uid and size:
                    found[int(uid.group(1))] = int(size.group(1))
        return found

    async def fetch(self, uids: list[int], headers_only: bool = False) -> dict[int, bytes]:
        """The raw mails by UID; PEEK, so nothing is flagged before its transaction committed."""
        part = "BODY.PEEK[HEADER]" if headers_only else "BODY.PEEK[]"
        response = await self.call(self.session.uid("fetch", uid_set(uids), f"(UID {part})"))
        check(response, "UID FETCH")
        found = {}
        for meta, literal in fetched_records(response.lines[:-1]):
            uid = UID.search(meta)
            if uid and literal is not None:
                found[int(uid.group(1))] = literal
        return found

    async def mark_done(self, uids: list[int]) -> None:
        """Flag \\Seen, or move to the configured folder."""
        if not uids:
            return
        folder = self.target.move_to
        if folder is None:
            check(await self.call(self.session.uid("store", uid_set(uids), "+FLAGS.SILENT (\\Seen)")), "UID STORE")
        elif "MOVE" in self.capabilities:
            check(await self.call(self.session.uid("move", uid_set(uids), astring(folder))), "UID MOVE")
        else:
            await self._copy_and_delete(uids, folder)

    async def _copy_and_delete(self, uids: list[int], folder: str) -> None:
        """MOVE for servers without it: copy, flag deleted, expunge just these UIDs."""
        check(await self.call(self.session.uid("copy", uid_set(uids), astring(folder))), "UID COPY")
        flags = "+FLAGS.SILENT (\\Seen \\Deleted)"
        check(await self.call(self.session.uid("store", uid_set(uids), flags)), "UID STORE")
        if "UIDPLUS" in self.capabilities:  # a plain EXPUNGE would also remove others' \Deleted mail
            check(await self.call(self.session.uid("expunge", uid_set(uids))), "UID EXPUNGE")

    async def wait_for_news(self, seconds: float, stop: asyncio.Event) -> None:
        """Return when new mail may have arrived (IDLE push), after `seconds`, or on stop."""
        if "IDLE" not in self.capabilities:
            await first_of(stop.wait(), self.lost.wait(), timeout=seconds)
        else:
            await self._idle(seconds, stop)
        if self.lost.is_set():
            raise ConnectionLost("the IMAP server closed the connection")

    async def _idle(self, seconds: float, stop: asyncio.Event) -> None:
        """IDLE until the server pushes something, `seconds` pass, we stop or the connection drops."""
        queue = self.session.protocol.idle_queue
        while not queue.empty():
            queue.get_nowait()  # pushes left from the last IDLE are about mail already synced
        idle = await asyncio.wait_for(self.call(self.session.idle_start(timeout=seconds)), self.timeout)
        try:
            await first_of(self.session.wait_server_push(timeout=seconds + 5), stop.wait(), self.lost.wait())
        finally:
            if not self.lost.is_set():
                self.session.idle_done()
                await asyncio.wait_for(idle, self.timeout)

    async def close(self) -> None:
        """Log out politely; a connection that is already gone is just dropped."""
        if self.client is None:
            return
        try:
            if not self.lost.is_set():
                await asyncio.wait_for(self.client.logout(), min(self.timeout, 5))
        except (TimeoutError, aioimaplib.AioImapException, OSError):
            pass
        finally:
            transport = self.client.protocol.transport
            if transport is not None:
                transport.close()


async def first_of(*waits, timeout: float | None = None) -> None:
    """Wait until the first of several awaitables finishes (or the timeout); cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def left_behind(task: asyncio.Future) -> None:
    """Let a fetch nobody will read end (a stop or an error came first): it keeps the connection's commands in
    order, and its own failure matters no more."""
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # read, so it is not reported as never retrieved


class ImapIntake:
    """Keeps a mailbox drained into the desk: IDLE or polling, reconnecting with backoff."""

    def __init__(self, url: str, edge: EmailEdge, poll_seconds: float = 30, ssl_context: ssl.SSLContext | None = None,
                 timeout: float = 60, max_fetch: int = MAX_FETCH):
        self.target = parse_imap_url(url)
        self.edge = edge
        self.store = edge.store
        self.poll_seconds = poll_seconds
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.max_fetch = max_fetch
        self.synced_at = time.monotonic()  # the last search whose mail is all in (at first: the start)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[ImapConnection]:
        connection = ImapConnection(self.target, self.ssl_context, self.timeout)
        try:
            await connection.open()
            yield connection
        finally:
            await connection.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Drain, then wait for news, until `stop` is set; any failure reconnects after a growing pause."""
        failures = 0
        while not stop.is_set():
            try:
                async with self.connect() as connection:
                    target = self.target
                    log.info("IMAP intake connected to %s:%s/%s", target.host, target.port, target.mailbox)
                    failures = 0
                    await self._serve(connection, stop)
            except Exception as exc:  # noqa: BLE001 - server, network or database trouble: try again later
                failures += 1
                delay = reconnect_delay(failures)
                log.warning("IMAP intake: %s; reconnecting in %.0f s", describe(exc), delay)
                await first_of(stop.wait(), timeout=delay)

    async def _serve(self, connection: ImapConnection, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.edge.retry_due()
            # Until a search finds nothing: mail that came during a sync was announced in a reply
            # aioimaplib drops, and IDLE would not announce it again.
            while await self.sync(connection, stop) and not stop.is_set():
                pass
            await connection.wait_for_news(self.poll_seconds, stop)

    async def sync_once(self) -> int:
        """Connect, take in everything new, disconnect; return how many mails were handled."""
        async with self.connect() as connection:
            return await self.sync(connection)

    async def sync(self, connection: ImapConnection, stop: asyncio.Event | None = None) -> int:
        """Take in every mail above the last done UID, batch by batch (a stop ends it between batches).

        The next batch is fetched while this one is taken in: the server's work and the way there and back
        hide behind ours. FETCH only peeks, so a batch fetched and then left changes nothing."""
        last = await self._last_uid(connection.uidvalidity)
        searched = time.monotonic()
        uids = await connection.new_uids(last)
        if not uids:
            self.synced_at = searched
            return 0
        sizes = await connection.sizes(uids)
        planned = batches(uids, sizes, min(FETCH_BYTES, self.max_fetch))
        handled = 0
        following: asyncio.Future[dict[int, bytes]] | None = None  # the next batch's fetch, under way
        try:
            for number, batch in enumerate(planned):
                if stop is not None and stop.is_set():
                    break
                fetching = following or asyncio.ensure_future(self._fetch(connection, batch, sizes))
                following = None
                mails = await fetching
                if number + 1 < len(planned):
                    following = asyncio.ensure_future(self._fetch(connection, planned[number + 1], sizes))
                await self._take_batch(connection, batch, sizes, mails)
                handled += len(batch)
            else:
                self.synced_at = searched  # every mail there at the search is in
        finally:
            if following is not None:
                await left_behind(following)
        return handled

    async def _fetch(self, connection: ImapConnection, batch: list[int], sizes: dict[int, int]) -> dict[int, bytes]:
        return await connection.fetch(batch, headers_only=self._too_big(batch, sizes))

    def _too_big(self, batch: list[int], sizes: dict[int, int]) -> bool:
        """A batch whose mail is larger than max_fetch (such a mail goes alone) is read by its headers only."""
        return sizes.get(batch[0], 0) > self.max_fetch

    async def _take_batch(self, connection: ImapConnection, batch: list[int], sizes: dict[int, int],
                          mails: dict[int, bytes]) -> None:
        """Mails in transactions of COMMIT_BATCH; then flag them all, then remember the highest UID."""
        headers_only = self._too_big(batch, sizes)
        found = [uid for uid in batch if uid in mails]  # the others were expunged meanwhile
        for start in range(0, len(found), COMMIT_BATCH):
            uids = found[start:start + COMMIT_BATCH]
            statuses = await self.edge.take_all([Incoming(
                mails[uid], self.target.mailbox, connection.uidvalidity, uid, headers_only, sizes.get(uid))
                for uid in uids])
            for uid, status in zip(uids, statuses):
                log.debug("mail uid %s: %s", uid, status)
        # Only now: a crash before this line leaves the mails unflagged, and a rerun finds them recorded.
        await connection.mark_done(found)
        await self._remember(connection.uidvalidity, batch[-1])

    async def _last_uid(self, uidvalidity: int) -> int:
        """The last done UID, or 0 when the mailbox's UIDVALIDITY changed (its old UIDs mean nothing now)."""
        async with self.store.uow() as uow:
            state = await uow.session.get(MailboxState, self.target.mailbox)
        if state is None or state.uidvalidity == uidvalidity:
            return state.last_uid if state else 0
        log.warning("UIDVALIDITY of %s changed (%s → %s): rescanning; Message-IDs keep done mail from repeating",
                    self.target.mailbox, state.uidvalidity, uidvalidity)
        return 0

    async def _remember(self, uidvalidity: int, last_uid: int) -> None:
        async with self.store.uow() as uow:
            state = await uow.session.get(MailboxState, self.target.mailbox)
            if state is None:
                uow.session.add(MailboxState(mailbox=self.target.mailbox, uidvalidity=uidvalidity, last_uid=last_uid))
            else:
                state.uidvalidity, state.last_uid = uidvalidity, last_uid
            await uow.commit()


def batches(uids: list[int], sizes: dict[int, int], most_bytes: int) -> list[list[int]]:
    """Split UIDs into FETCH batches of at most FETCH_BATCH mails and `most_bytes` (a bigger mail goes alone)."""
    out: list[list[int]] = []
    current: list[int] = []
    used = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if current and (len(current) >= FETCH_BATCH or used + size > most_bytes):
            out.append(current)
            current, used = [], 0
        current.append(uid)
        used += size
    return out + [current] if current else out
