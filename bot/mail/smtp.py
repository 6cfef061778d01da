"""Outgoing mail: turn an outbox row into a MIME message and hand it to SMTP or a directory."""
from __future__ import annotations

import asyncio
import base64
import email.policy
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from urllib.parse import unquote

import aiosmtplib

from bot.settings import SettingsError, hide_password, split_url
from bot.transport import PermanentFailure, TemporaryFailure, Transport
from handlers.bounces import PRIVATE
from handlers.messages import new_message_id
from handlers.speaking import AUTO_GENERATED
from storage.models import Outbox

log = logging.getLogger(__name__)

# Headers build_email sets itself; a row's headers may not replace them.
ENVELOPE_HEADERS = {"from", "to", "subject", "date"}


def mail_address(recipient: str) -> str:
    """The bare address of an outbox recipient ("email:kim@example.com" or "kim@example.com")."""
    return recipient.removeprefix("email:")


def build_email(row: Outbox, mail_from: str) -> EmailMessage:
    """Build the MIME message for one outbox row: text, optional html, attachments."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = mail_from
    msg["To"] = mail_address(row.recipient)
    msg["Subject"] = row.subject or ""
    msg["Date"] = format_datetime(row.created_at or datetime.now(timezone.utc))
    _add_row_headers(msg, row.headers or {}, mail_from)
    # Quoted-printable keeps the mail 7-bit clean for servers without 8BITMIME.
    msg.set_content(row.text, charset="utf-8", cte="quoted-printable")
    if row.html:
        msg.add_alternative(row.html, subtype="html", charset="utf-8", cte="quoted-printable")
    attachments = row.attachments or []
    for attachment in attachments:
        if is_calendar(attachment):
            _add_invitation(msg, attachment)
    for attachment in attachments:
        _attach(msg, calendar_copy(attachment) if is_calendar(attachment) else attachment)
    return msg


def calendar_copy(attachment: dict) -> dict:
    """The invitation's copy as a file, for clients that do not read iMIP, shaped as Google sends it: its name
    also as the content type's `name`, which older Outlook versions show instead of the disposition's."""
    return {**attachment, "type": f"application/ics; name={attachment.get('name', 'invite.ics')}"}


def is_calendar(attachment: dict) -> bool:
    return attachment.get("type", "").split(";")[0].strip().lower() == "text/calendar"


def _add_invitation(msg: EmailMessage, attachment: dict) -> None:
    """iMIP (RFC 6047): the calendar is an alternative of the text, its METHOD repeated in the content type;
    Outlook and Gmail show an invitation's controls only for that shape."""
    calendar = base64.b64decode(attachment["data"]).decode("utf-8")
    found = re.search(r"^METHOD:(\S+)", calendar, re.MULTILINE)
    method = found.group(1) if found else "PUBLISH"
    msg.add_alternative(calendar, subtype="calendar", charset="utf-8", cte="quoted-printable",
                        params={"method": method})


def _add_row_headers(msg: EmailMessage, headers: dict, mail_from: str) -> None:
    for name, value in headers.items():
        if name.lower() not in ENVELOPE_HEADERS and not name.lower().startswith(PRIVATE):
            del msg[name]
            msg[name] = str(value)
    if "Message-ID" not in msg:
        msg["Message-ID"] = new_message_id(_domain(mail_from))
    for name, value in AUTO_GENERATED.items():  # a row that came without it is still marked automatic
        if name not in msg:
            msg[name] = value
    # Asks Exchange and friends not to answer with out-of-office mail (loop protection).
    del msg["X-Auto-Response-Suppress"]
    msg["X-Auto-Response-Suppress"] = "All"


def _domain(mail_from: str) -> str:
    address = parseaddr(mail_from)[1]
    return address.rpartition("@")[2] or "localhost"


def _attach(msg: EmailMessage, attachment: dict) -> None:
    """Attach one {name, type, data(base64)} entry; "text/calendar; method=REQUEST" keeps its parameters."""
    content_type, *raw_params = [part.strip() for part in attachment.get("type", "").split(";")]
    maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
    params = dict(param.split("=", 1) for param in raw_params if "=" in param)
    data = base64.b64decode(attachment["data"])
    if maintype == "text" and "charset" not in params and _is_utf8(data):
        params["charset"] = "utf-8"  # text without a charset is read as US-ASCII (RFC 2046)
    msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                       filename=attachment.get("name", "attachment"), params=params)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class EmlDirTransport:
    """Writes each mail as an .eml file: the demo's and tests' stand-in for SMTP."""

    def __init__(self, directory: Path, mail_from: str):
        self.directory = Path(directory)
        self.mail_from = mail_from

    def path_for(self, row: Outbox) -> Path:
        stamp = (row.created_at or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
        return self.directory / f"{stamp}-{row.id:06d}.eml"

    async def send(self, row: Outbox) -> None:
        """Write the row's mail to its file; a disk error is worth a retry."""
        data = build_email(row, self.mail_from).as_bytes()
        try:
            await asyncio.to_thread(_write_atomically, self.path_for(row), data)
        except OSError as exc:
            raise TemporaryFailure(f"cannot write mail: {exc}") from exc

    async def close(self) -> None:
        """Nothing to release."""


def _write_atomically(path: Path, data: bytes) -> None:
    # A reader never sees half a file: write aside, then rename over.
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """Read smtp://user:pass@host:port or smtps://…; user and password may be percent-encoded."""
    parts = split_url(url)
    if parts is None or parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        # The URL usually holds the password: the message shows it without.
        raise ValueError(f"FRONTDESK_SMTP_URL must look like smtp://user:pass@host:port, not {hide_password(url)!r}")
    implicit_tls = parts.scheme == "smtps"
    return SmtpTarget(
        host=parts.hostname, port=parts.port or (465 if implicit_tls else 25), implicit_tls=implicit_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class SmtpTransport:
    """Sends through one SMTP connection, kept open and reused across mails."""

    def __init__(self, url: str, mail_from: str, timeout: float = 30):
        self.target = parse_smtp_url(url)
        self.mail_from = mail_from
        self.sender = parseaddr(mail_from)[1] or mail_from
        self.timeout = timeout
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def send(self, row: Outbox) -> None:
        """Send one row; say whether a failure is worth a retry."""
        message = build_email(row, self.mail_from)
        async with self._lock:
            try:
                await self._send_reconnecting(message, mail_address(row.recipient))
            except (TimeoutError, aiosmtplib.SMTPException, OSError, ValueError) as exc:
                if not isinstance(exc, (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused)):
                    self._discard()  # the connection's state is unknown now
                raise classify(exc) from exc

    async def _send_reconnecting(self, message: EmailMessage, recipient: str) -> None:
        try:
            await self._send(message, recipient)
        except aiosmtplib.SMTPServerDisconnected:
            # Servers drop idle connections without telling us; one fresh connection is worth a try.
            self._discard()
            await self._send(message, recipient)

    async def _send(self, message: EmailMessage, recipient: str) -> None:
        client = self._client
        if client is None or not client.is_connected:
            client = await self._connect()
        await client.send_message(message, sender=self.sender, recipients=[recipient])

    async def _connect(self) -> aiosmtplib.SMTP:
        target = self.target
        client = aiosmtplib.SMTP(
            hostname=target.host, port=target.port, username=target.username, password=target.password,
            use_tls=target.implicit_tls, start_tls=False if target.implicit_tls else None, timeout=self.timeout,
        )
        try:
            await client.connect()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            # Unreachable server, refused greeting or bad credentials: our setup, not this mail.
            raise TemporaryFailure(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
        self._client = client
        return client

    def _discard(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def close(self) -> None:
        """Say QUIT politely; drop the connection if the server is already gone."""
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            client.close()


def classify(exc: BaseException) -> TemporaryFailure | PermanentFailure:
    """A 5xx about this mail is permanent; anything about the server or the network is temporary."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return PermanentFailure(text) if min(codes) >= 500 else TemporaryFailure(text)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        text = f"{exc.code} {exc.message}"
        return PermanentFailure(text) if exc.code >= 500 else TemporaryFailure(text)
    if isinstance(exc, (aiosmtplib.SMTPNotSupported, ValueError)):
        return PermanentFailure(f"{exc.__class__.__name__}: {exc}")
    return TemporaryFailure(f"{exc.__class__.__name__}: {exc}")


def transport_for(settings) -> Transport:
    """SMTP when FRONTDESK_SMTP_URL is set, else .eml files in FRONTDESK_OUTBOX_DIR."""
    if settings.smtp_url:
        try:
            return SmtpTransport(settings.smtp_url, settings.mail_from)
        except ValueError as exc:  # a malformed URL: fail at start, naming the variable, as for IMAP
            raise SettingsError(str(exc)) from exc
    return EmlDirTransport(settings.outbox_dir, settings.mail_from or "frontdesk@localhost")
