"""Reading a mail's headers: its ids, sender, subject and language, and whether a machine sent it."""
from __future__ import annotations

import email
import email.policy
import functools
import hashlib
import re
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from typing import TYPE_CHECKING

from handlers.rules.addresses import canonical_email

MAX_ID = 255  # width of mail_intake.message_id and outbox.message_id
MAX_SUBJECT = 900  # outbox.subject holds 998: room for "Re: " and a ticket tag
MAX_NAME = 200  # width of person.name
MAX_ADDRESS = 320
ID = re.compile(r"<[^<>\s]+>")
ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
# Senders that are machines by convention: they never read an answer.
ROBOT = re.compile(r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)([+.-].*)?$", re.I)
LIST_HEADERS = ("x-auto-response-suppress", "list-id", "list-unsubscribe", "x-failed-recipients")
# A From: of plain words and one dot-atom address, in ASCII, with no encoded word (not even in the address,
# where the full parser decodes one), comment, quote, dot in the name, group or second address, on one
# line: the full header parser and parseaddr read it alike (a property test checks), and this reads it in a
# twentieth of the time. Any other From: takes the full parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_WORDS = r"[A-Za-z0-9_'-]+(?: [A-Za-z0-9_'-]+)*"
PLAIN_FROM = re.compile(rf"(?!.*=\?)(?:(?:(?P<name>{_WORDS}) )?<(?P<angled>{_DOT_ATOM})>|(?P<bare>{_DOT_ATOM}))")

if TYPE_CHECKING:  # the stubs make EmailPolicy generic in the message class it builds; at runtime it is not
    EmailMessagePolicy = email.policy.EmailPolicy[EmailMessage]
else:
    EmailMessagePolicy = email.policy.EmailPolicy


class ParsedHeaders(EmailMessagePolicy):
    """The default policy, remembering parsed headers: reading Content-Type alone parses it again each
    time (a dozen times per mail), and most mails share the same few. Header objects are immutable."""

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name"):
            return value
        return _parsed_header(name, value)


@functools.lru_cache(maxsize=512)
def _parsed_header(name: str, value: str):
    return email.policy.default.header_fetch_parse(name, value)


POLICY = ParsedHeaders()

def clean(text: str) -> str:
    """Text any database stores: no NUL characters, no lone surrogates from undecodable bytes."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def raw_headers(msg: Message) -> dict[str, str]:
    """Each header's first raw value by lowercased name, unfolded: enough to test and cheap (no parsing)."""
    found: dict[str, str] = {}
    for name, value in msg.raw_items():
        found.setdefault(name.lower(), clean(" ".join(str(value).split())))
    return found


def header(msg: Message, name: str) -> str:
    """A header's decoded value (RFC 2047 words), or its raw text when even the lenient parser gives up."""
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a header the policy cannot parse is still worth its raw text
        return clean(first_raw(msg, name))
    return "" if value is None else clean(str(value))


def first_raw(msg: Message, name: str) -> str:
    """A header's first value as it came, unparsed ("" when there is none)."""
    wanted = name.lower()
    return next((str(value) for key, value in msg.raw_items() if key.lower() == wanted), "")


def synthetic_id(raw: bytes) -> str:
    """A stable id for a mail without Message-ID: the same bytes always give the same id."""
    return f"<{hashlib.sha256(raw).hexdigest()}@sha256.invalid>"


def is_synthetic(message_id: str) -> bool:
    return message_id.endswith("@sha256.invalid>")


def quick_id(raw: bytes) -> str:
    """The Message-ID from the headers alone, for a mail whose body cannot be parsed."""
    try:
        return message_id(raw_headers(BytesHeaderParser(policy=email.policy.default).parsebytes(raw)), raw)
    except Exception:  # noqa: BLE001 - not even the headers parse: the bytes are all we have
        return synthetic_id(raw)


def message_id(heads: dict[str, str], raw: bytes) -> str:
    """The mail's Message-ID, or a synthetic one from its bytes; ids too long to store are hashed."""
    found = first_id(heads.get("message-id", ""))
    if found is None:
        return synthetic_id(raw)
    if len(found) > MAX_ID:
        return synthetic_id(found.encode())
    return found


def first_id(value: str) -> str | None:
    """The first <id> in a header; a bare id without brackets is accepted too."""
    match = ID.search(value)
    if match:
        return match.group(0)
    bare = value.strip().split()
    return f"<{bare[0]}>" if bare and "@" in bare[0] else None


def sender_of(msg: Message) -> tuple[str | None, str | None]:
    """(display name, address in its one stored spelling) of From; the address is None when unusable."""
    raw_name, address = from_pair(msg)
    name = clean(raw_name).strip()[:MAX_NAME] or None
    if len(address) > MAX_ADDRESS or not ADDRESS.match(address):
        return name, None
    return name, canonical_email(address) or address.lower()


def from_pair(msg: Message) -> tuple[str, str]:
    """(name, address) of From as parseaddr gives them from the fully parsed header ("" for what is missing)."""
    plain = PLAIN_FROM.fullmatch(first_raw(msg, "From").strip())
    if plain:
        return plain["name"] or "", plain["angled"] or plain["bare"]
    return parseaddr(header(msg, "From"))


def subject_of(msg: Message) -> str:
    return " ".join(header(msg, "Subject").split())[:MAX_SUBJECT]


def language_of(heads: dict[str, str]) -> str | None:
    """The first tag of Content-Language, e.g. 'de' from 'de-DE, en'."""
    tag = heads.get("content-language", "").split(",")[0].strip()[:2].lower()
    return tag if tag.isalpha() and len(tag) == 2 else None


def is_automatic(heads: dict[str, str], content_type: str, sender: str | None) -> bool:
    """True for mail a machine sent: answering it could start a mail loop (RFC 3834)."""
    auto = heads.get("auto-submitted", "").split(";")[0].split("(")[0].strip().lower()
    if auto and auto != "no":
        return True
    if heads.get("precedence", "").strip().lower() in ("bulk", "junk", "list"):
        return True
    if any(heads.get(name) for name in LIST_HEADERS):
        return True
    return is_bounce(heads, content_type) or is_robot(sender, heads.get("from", ""))


def is_bounce(heads: dict[str, str], content_type: str) -> bool:
    """Delivery reports (and read receipts) come as multipart/report; bounces have an empty Return-Path."""
    return heads.get("return-path", "").replace(" ", "") == "<>" or content_type == "multipart/report"


def is_robot(sender: str | None, from_header: str) -> bool:
    if sender is None:
        return "<>" in from_header.replace(" ", "")
    return bool(ROBOT.match(sender.rpartition("@")[0]))
