"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, recording what it receives."""
from __future__ import annotations

import email
import email.policy
import socket
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    """aiosmtpd handler: keeps each mail, the connection it came on, and refuses chosen recipients."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.peers: list[tuple] = []  # one entry per mail: the client's (host, port)
        self.refuse: dict[str, str] = {}  # recipient -> reply, e.g. "550 5.1.1 no such user"

    @property
    def connections(self) -> int:
        """How many distinct SMTP connections carried mail."""
        return len(set(self.peers))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.raw.append(envelope.content)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.peers.append(session.peer)
        return "250 Message accepted"


class SmtpServer:
    """Starts and stops an aiosmtpd server on a fixed free port, so it can go down and come back."""

    def __init__(self, credentials: tuple[str, str] | None = None):
        self.handler = Recorder()
        self.port = free_port()
        self.credentials = credentials
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    def start(self) -> None:
        options = {}
        if self.credentials:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening and cut every open connection."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        user, password = self.credentials
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server():
    """A running SMTP server; `.stop()` / `.start()` simulate an outage on the same port."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
