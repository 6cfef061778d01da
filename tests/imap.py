"""A real IMAP server for tests: pymap's in-memory backend on 127.0.0.1, in the test's own event loop.

It can go down and come back on the same port (open connections are cut), offer or withhold IDLE,
offer STARTTLS with a throwaway certificate, and start the mailbox over with a new UIDVALIDITY.
"""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import tempfile
from argparse import Namespace
from pathlib import Path

import pytest
from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import Config, DictBackend, Login
from pymap.backend.dict.mailbox import MailboxSet
from pymap.config import BackendCapability
from pymap.imap import IMAPServer
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials.flag import Seen

from tests.smtp import free_port

USER = "desk@example.com"
PASSWORD = "pä ss\"word"  # a space, a quote and an umlaut: the client must quote and encode


class _Args(Namespace):
    debug = False
    cert = None
    key = None
    demo_data = False
    passlib_cfg = None
    proxy_protocol = None
    inherited_sockets = None


class _ConfigWithoutIdle(Config):
    @property
    def backend_capability(self) -> BackendCapability:
        return BackendCapability(idle=False, object_id=True, multi_append=True)


class ImapServer:
    """Start with `await server.start()`; `url` is what FRONTDESK_IMAP_URL would hold."""

    def __init__(self, idle: bool = True, tls: bool = False, implicit_tls: bool = False):
        self.port = free_port()
        self.idle = idle
        self.tls = tls  # offer STARTTLS (and refuse LOGIN before it)
        self.implicit_tls = implicit_tls  # imaps: TLS from the first byte
        self.server_tls: ssl.SSLContext | None = None
        self.cert_path: Path | None = None
        self.backend: DictBackend | None = None
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.raw: dict[int, bytes] = {}  # uid -> bytes, to rebuild the mailbox under a new UIDVALIDITY

    @property
    def url(self) -> str:
        scheme = "imaps" if self.implicit_tls else "imap"
        return f"{scheme}://desk%40example.com:p%C3%A4%20ss%22word@127.0.0.1:{self.port}/INBOX"

    async def start(self) -> None:
        """Listen on the server's port; mailboxes survive a stop and start."""
        if self.backend is None:
            self.backend = await self._backend()
        self.backend.config.apply_context()
        handler = ProxyProtocolReader(self.backend.config.proxy_protocol).get_callback(
            IMAPServer(self.backend.login, self.backend.config))

        async def on_connect(reader, writer):
            self.writers.add(writer)  # kept until stop(): the handler returns at once and serves in a task
            await handler(reader, writer)

        tls = self.server_tls if self.implicit_tls else None
        self.server = await asyncio.start_server(on_connect, "127.0.0.1", self.port, ssl=tls)

    async def stop(self) -> None:
        """Stop listening and cut every open connection."""
        if self.server is not None:
            self.server.close()
            for writer in self.writers:
                writer.close()
            self.writers.clear()
            self.server = None
            await asyncio.sleep(0.05)

    async def _backend(self) -> DictBackend:
        args = _Args(host="127.0.0.1", port=self.port, tls=self.tls, demo_user=USER, demo_password=PASSWORD)
        config_class = Config if self.idle else _ConfigWithoutIdle
        if self.tls or self.implicit_tls:
            self.server_tls = self._server_tls()
        extra = {"ssl_context": self.server_tls} if self.tls else {}
        config = config_class.from_args(args, invalid_user_sleep=0, reject_dnsbl=False, **extra)
        login = Login(config)
        await DictBackend._add_demo_user(config, login)
        backend = DictBackend(login, config)
        async with login.demo_user_identity.new_session():
            pass  # creates the user's mailboxes
        return backend

    # ---- mail -----------------------------------------------------------------------------

    async def inbox(self):
        return await self.backend.config.set_cache[USER][0].get_mailbox("INBOX")

    async def append(self, raw: bytes, seen: bool = False) -> int:
        """Deliver a mail into INBOX as an MTA would; returns its UID."""
        flags = frozenset({Seen}) if seen else frozenset()
        message = await (await self.inbox()).append(AppendMessage(raw, datetime.datetime.now(), flags), recent=True)
        self.raw[message.uid] = raw
        return message.uid

    async def flags(self) -> dict[int, set[str]]:
        """Every mail's flags by UID, e.g. {101: {"\\\\Seen"}}."""
        found = {}
        async for message in (await self.inbox()).messages():
            found[message.uid] = {flag.value.decode() for flag in message.permanent_flags}
        return found

    async def seen(self) -> set[int]:
        return {uid for uid, flags in (await self.flags()).items() if "\\Seen" in flags}

    async def unseen(self) -> set[int]:
        return {uid for uid, flags in (await self.flags()).items() if "\\Seen" not in flags}

    async def new_uidvalidity(self) -> None:
        """Start INBOX over (as after a careless server migration): same mails, new UIDs, UIDVALIDITY, no flags."""
        config = self.backend.config
        _, filter_set = config.set_cache[USER]
        config.set_cache[USER] = (MailboxSet(), filter_set)
        old, self.raw = self.raw, {}
        for _, raw in sorted(old.items()):
            await self.append(raw)

    async def add_folder(self, name: str) -> None:
        await self.backend.config.set_cache[USER][0].add_mailbox(name)

    async def folder_size(self, name: str) -> int:
        folder = await self.backend.config.set_cache[USER][0].get_mailbox(name)
        return len([message async for message in folder.messages()])

    async def uidvalidity(self) -> int:
        return (await self.inbox()).uid_validity

    # ---- TLS ------------------------------------------------------------------------------

    def _server_tls(self) -> ssl.SSLContext:
        cert, key = self_signed_certificate()
        directory = Path(tempfile.mkdtemp(prefix="imap-tls-"))
        self.cert_path, key_path = directory / "cert.pem", directory / "key.pem"
        self.cert_path.write_bytes(cert)
        key_path.write_bytes(key)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, key_path)
        return context

    def client_tls(self) -> ssl.SSLContext:
        """A client context that trusts this server's throwaway certificate."""
        return ssl.create_default_context(cafile=str(self.cert_path))


def self_signed_certificate() -> tuple[bytes, bytes]:
    """A certificate for 127.0.0.1, valid for a day (PEM cert, PEM key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


@pytest.fixture
async def imap_server():
    """A running IMAP server with IDLE; `.stop()` / `.start()` simulate an outage on the same port."""
    server = ImapServer()
    await server.start()
    yield server
    await server.stop()
