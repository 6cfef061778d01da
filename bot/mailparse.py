"""Incoming mail → what the desk needs: sender, threading, text for commands, attachments, loop markers.

Pure: no network, no database. Broken mail (wrong or unknown charsets, missing headers, bad
boundaries) degrades to a best guess instead of raising.
"""
from __future__ import annotations

import codecs
import email
import email.policy
import functools
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from html.parser import HTMLParser

from handlers.rules.addresses import canonical_email
from handlers.messages import Attachment

MB = 1024 * 1024
MAX_ID = 255  # width of mail_intake.message_id and outbox.message_id
MAX_SUBJECT = 900  # outbox.subject holds 998: room for "Re: " and a ticket tag
MAX_NAME = 200  # width of person.name
MAX_ADDRESS = 320
ID = re.compile(r"<[^<>\s]+>")
ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")
# Senders that are machines by convention: they never read an answer.
ROBOT = re.compile(r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)([+.-].*)?$", re.I)
LIST_HEADERS = ("x-auto-response-suppress", "list-id", "list-unsubscribe", "x-failed-recipients")
# The standard library parses (and walks) nested parts recursively: some thousand levels raise
# RecursionError. Real mail nests a handful of levels; deeper parts are left out and named in `unread`.
MAX_DEPTH = 40
DEEP_PARTS = "deep_parts"  # an `unread` entry: parts nested deeper than MAX_DEPTH were left out
HEAD_ONLY = "head_only"  # an `unread` entry: only the headers could be read


class ParsedHeaders(email.policy.EmailPolicy):
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


@dataclass(frozen=True)
class Limits:
    """How much attachment data one mail may bring."""

    attachment: int = 10 * MB
    total: int = 25 * MB


@dataclass(frozen=True)
class Refused:
    """An attachment left out because it was too large."""

    name: str
    size: int


@dataclass(frozen=True)
class ParsedMail:
    message_id: str
    sender: str | None  # "kim@example.com" (identity.canonical_email); None when From holds no usable address
    display_name: str | None
    subject: str
    in_reply_to: str | None
    references: tuple[str, ...]
    body: str  # the whole text, quotes and signature included
    command_text: str  # the body without quoted replies and signature
    attachments: tuple[Attachment, ...]
    refused: tuple[Refused, ...]
    automatic: bool
    language: str | None
    unread: tuple[str, ...] = ()  # what could not be read: DEEP_PARTS, HEAD_ONLY


def parse(raw: bytes, limits: Limits = Limits()) -> ParsedMail:
    """Read one raw mail (RFC 5322 bytes) into what the desk needs."""
    msg, unread = read_message(raw)
    heads = raw_headers(msg)
    name, sender = sender_of(msg)
    part = body_part(msg)
    body = body_text(part)
    kept, refused = attachments(msg, part, limits)
    return ParsedMail(
        message_id=message_id(heads, raw), sender=sender, display_name=name, subject=subject_of(msg),
        in_reply_to=first_id(heads.get("in-reply-to", "")), references=tuple(ID.findall(heads.get("references", ""))),
        body=body, command_text=strip_quotes(body), attachments=kept, refused=refused,
        automatic=is_automatic(heads, msg.get_content_type(), sender), language=language_of(heads),
        unread=unread,
    )


def read_message(raw: bytes) -> tuple[Message, tuple[str, ...]]:
    """Parse a mail; one nested deeper than MAX_DEPTH is read without its deepest parts, and if even that
    fails, by its headers alone. Also says what was left out."""
    if not may_nest_deeply(raw):  # the parser takes seconds to reach its recursion limit: skip that try
        msg = parse_within(raw)
        if msg is not None:
            return msg, ()
    shallow, cut = cut_deep(raw, MAX_DEPTH)
    msg = parse_within(shallow)
    if msg is not None:
        return msg, (DEEP_PARTS,) if cut else ()
    msg = BytesHeaderParser(policy=POLICY).parsebytes(raw)
    for name in ("content-type", "content-transfer-encoding"):
        del msg[name]
    msg.set_payload("")
    return msg, (HEAD_ONLY,)


def may_nest_deeply(raw: bytes) -> bool:
    """Whether a mail names more boundaries and attached mails than MAX_DEPTH (cheap: byte counts)."""
    return sum(raw.count(word) for word in (b"oundary", b"OUNDARY", b"essage/", b"ESSAGE/")) > MAX_DEPTH


def parse_within(raw: bytes) -> Message | None:
    """Parse, or None when the parts nest deeper than MAX_DEPTH."""
    try:
        msg = email.message_from_bytes(raw, policy=POLICY)
    except RecursionError:
        return None
    return msg if nesting(msg) <= MAX_DEPTH else None


def nesting(msg: Message) -> int:
    """How deep parts are nested (a plain mail: 0), counted without recursion."""
    deepest, todo = 0, [(msg, 0)]
    while todo:
        part, depth = todo.pop()
        deepest = max(deepest, depth)
        if part.is_multipart():
            todo.extend((sub, depth + 1) for sub in part.get_payload())
    return deepest


def cut_deep(raw: bytes, limit: int) -> tuple[bytes, bool]:
    """The raw mail without the parts nested deeper than `limit`, found by their boundaries line by line;
    and whether any was left out."""
    lines = raw.splitlines(keepends=True)
    start, blocks, boundary, depth = part_head(lines, 0, 0, limit)
    out = [line for block in (blocks[:-1] if depth > limit else blocks) for line in block]
    if depth > limit:
        return b"".join(out), True
    opened = [(boundary, depth)] if boundary else []  # multiparts open around the current line
    skipping = cut = False
    index = start
    while index < len(lines):
        line, index = lines[index], index + 1
        found = delimiter(line, opened)
        if found is None:
            if not skipping:
                out.append(line)
            continue
        level, closing = found
        del opened[level + 1:]  # a parent's delimiter ends every part inside it
        parent_depth = opened[level][1]
        if closing:
            opened.pop()
        elif parent_depth + 1 > limit:
            skipping = cut = True
            continue
        out.append(line)
        skipping = False
        if closing:
            continue
        index, blocks, boundary, depth = part_head(lines, index, parent_depth + 1, limit)
        out.extend(line for block in (blocks[:-1] if depth > limit else blocks) for line in block)
        skipping = depth > limit
        cut = cut or skipping
        if boundary and not skipping:
            opened.append((boundary, depth))
    return b"".join(out), cut


def part_head(lines: list[bytes], index: int, depth: int,
              limit: int) -> tuple[int, list[list[bytes]], bytes | None, int]:
    """Read a part's header block, and those of the mails inside an attached mail (each one level deeper):
    (the next line, the blocks, the multipart boundary if any, the depth of the innermost block)."""
    blocks: list[list[bytes]] = []
    while True:
        block, index = header_block(lines, index)
        blocks.append(block)
        head = BytesHeaderParser(policy=email.policy.compat32).parsebytes(b"".join(block))
        kind = head.get_content_type()
        if kind.startswith("multipart/"):
            found = head.get_boundary()
            return index, blocks, found.encode("ascii", "surrogateescape") if found else None, depth
        if not kind.startswith("message/") or kind == "message/delivery-status" or depth > limit:
            return index, blocks, None, depth
        depth += 1


def header_block(lines: list[bytes], index: int) -> tuple[list[bytes], int]:
    """The header lines from `index` through the blank line that ends them (a delimiter ends them too)."""
    block: list[bytes] = []
    while index < len(lines):
        line = lines[index]
        if line.startswith(b"--"):
            break
        block.append(line)
        index += 1
        if not line.strip():
            break
    return block, index


def delimiter(line: bytes, opened: list[tuple[bytes, int]]) -> tuple[int, bool] | None:
    """(which open multipart, whether it closes) if the line is a boundary delimiter of one of them."""
    if not line.startswith(b"--"):
        return None
    bare = line.rstrip()
    for level in range(len(opened) - 1, -1, -1):
        boundary = b"--" + opened[level][0]
        if bare == boundary or bare == boundary + b"--":
            return level, bare != boundary
    return None


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
        value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    return "" if value is None else clean(str(value))


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
    name, address = parseaddr(header(msg, "From"))
    name = clean(name).strip()[:MAX_NAME] or None
    if len(address) > MAX_ADDRESS or not ADDRESS.match(address):
        return name, None
    return name, canonical_email(address) or address.lower()


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


# ---- text -----------------------------------------------------------------------------------


def body_text(part: Message | None) -> str:
    """The readable text of the body part: text/plain as it is, HTML turned into text."""
    if part is None:
        return ""
    text = decode_text(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return clean(text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def body_part(msg: Message) -> Message | None:
    """The part holding the body, text/plain preferred; a multipart whose boundary is broken is read as text."""
    if not msg.is_multipart():  # the usual case; get_body would re-read Content-Type many times
        return msg if msg.get_content_maintype() in ("text", "multipart") else None
    try:
        return msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001 - a broken structure: no body, the parts still count as attachments
        return None


def decode_text(part: Message) -> str:
    """A text part's content, undoing the transfer encoding, whatever its charset claims."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - undecodable transfer encoding: use what is there
        data = None
    if data is None:
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    return decode_bytes(data, part.get_content_charset())


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode with the declared charset, else UTF-8, else a lenient guess; unknown charsets never raise."""
    attempts = [(charset, "strict"), ("utf-8", "strict"), (lenient(charset), "replace"), ("cp1252", "replace")]
    for candidate, errors in attempts:
        if not candidate:
            continue
        try:
            return data.decode(candidate, errors)
        except (UnicodeError, LookupError, TypeError, ValueError):  # LookupError: unknown or non-text codec
            continue
    return data.decode("latin-1")


def lenient(charset: str | None) -> str:
    """What to read undecodable text as: a multi-byte charset with gaps, else Windows-1252, the usual
    truth behind mislabelled "utf-8" or "us-ascii" mail."""
    try:
        name = codecs.lookup(charset or "").name
    except LookupError:
        return "cp1252"
    return "cp1252" if name in ("utf-8", "ascii") else name


class _TextFromHtml(HTMLParser):
    """Collects the text of an HTML mail; blockquotes become '> ' lines so quote stripping sees them."""

    BLOCKS = {"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre", "hr"}
    HIDDEN = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quoted = 0
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self._boundary(tag, +1)

    def handle_endtag(self, tag):
        self._boundary(tag, -1)

    def handle_data(self, data):
        if not self.hidden:
            self.current.append(data)

    def _boundary(self, tag: str, step: int) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(self.hidden + step, 0)
        elif tag == "blockquote":
            self.flush()
            self.quoted = max(self.quoted + step, 0)
        elif tag in self.BLOCKS:
            self.flush()

    def flush(self) -> None:
        line = " ".join("".join(self.current).split())
        self.current = []
        if line or (self.lines and self.lines[-1]):
            self.lines.append("> " * self.quoted + line if line else "")


def html_to_text(html: str) -> str:
    parser = _TextFromHtml()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; this is a last resort
        return re.sub(r"<[^>]*>", " ", html)
    parser.flush()
    return "\n".join(parser.lines).strip()


# A reply's own words end where the quoted original, the signature or a mobile footer begins.
CUT = [
    re.compile(r"^-{2,}\s*(original message|ursprüngliche nachricht|forwarded message|weitergeleitete nachricht)",
               re.I),
    re.compile(r"^_{5,}\s*$"),
    re.compile(r"^--\s*$"),
    re.compile(r"^(sent from my|von meinem .* gesendet|gesendet von meinem)", re.I),
]
# Lines that introduce a quote: "On … wrote:", "Am … schrieb …:" (clients may wrap them onto two lines).
ATTRIBUTION = [re.compile(r"^on\b.*\bwrote:\s*$", re.I | re.S), re.compile(r"^am\b.*\bschrieb\b.*:\s*$", re.I | re.S)]
OUTLOOK_FROM = re.compile(r"^(from|von):\s", re.I)
OUTLOOK_NEXT = re.compile(r"^(sent|gesendet|date|datum|to|an|subject|betreff):\s", re.I)


def strip_quotes(text: str) -> str:
    """The reply's own words: quoted lines, attributions, Outlook blocks and signatures removed."""
    lines = text.split("\n")
    kept: list[str] = []
    skip = 0
    for index, line in enumerate(lines):
        if skip:
            skip -= 1
            continue
        if ends_own_words(lines, index):
            break
        attribution = attribution_length(lines, index)
        if attribution:
            skip = attribution - 1
            continue
        if not line.lstrip().startswith(">"):
            kept.append(line)
    return "\n".join(kept).strip()


def ends_own_words(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if any(pattern.match(line) for pattern in CUT) or lines[index] == "-- ":
        return True
    following = [candidate.strip() for candidate in lines[index + 1:index + 3]]
    return bool(OUTLOOK_FROM.match(line)) and any(OUTLOOK_NEXT.match(candidate) for candidate in following)


def attribution_length(lines: list[str], index: int) -> int:
    """1 or 2 if an attribution line ("On … wrote:") starts here, else 0."""
    one = lines[index].strip()
    two = f"{one} {lines[index + 1].strip()}" if index + 1 < len(lines) else one
    for length, candidate in ((1, one), (2, two)):
        if one and any(pattern.match(candidate) for pattern in ATTRIBUTION):
            return length
    return 0


def first_line(text: str) -> str:
    """The first non-empty line."""
    return next((line.strip() for line in text.split("\n") if line.strip()), "")


# ---- attachments ----------------------------------------------------------------------------


def attachments(msg: Message, body: Message | None,
                limits: Limits) -> tuple[tuple[Attachment, ...], tuple[Refused, ...]]:
    """Attachments within the limits (the body part aside), and the names and sizes of those left out."""
    kept: list[Attachment] = []
    refused: list[Refused] = []
    total = 0
    for number, part in enumerate((p for p in leaves(msg) if p is not body and is_attachment(p)), 1):
        name, data = filename(part, number), part_bytes(part)
        if len(data) > limits.attachment or total + len(data) > limits.total:
            refused.append(Refused(name, len(data)))
            continue
        total += len(data)
        kept.append(Attachment(name, part.get_content_type(), data))
    return tuple(kept), tuple(refused)


def leaves(part: Message) -> Iterator[Message]:
    """Every non-multipart part, in order; an attached message (message/rfc822) counts as one part."""
    todo = [part]
    while todo:
        part = todo.pop()
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            todo.extend(reversed(part.get_payload()))
        else:
            yield part


def is_attachment(part: Message) -> bool:
    """Parts marked as attachments, and anything that is not text (images, PDFs, attached mails)."""
    try:
        marked = part.is_attachment()
    except Exception:  # noqa: BLE001 - a broken Content-Disposition
        marked = False
    return marked or part.get_content_maintype() not in ("text", "multipart")


def filename(part: Message, number: int) -> str:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001 - a broken filename parameter
        name = None
    return clean(name).strip()[:200] if name and clean(name).strip() else f"attachment-{number}"


def part_bytes(part: Message) -> bytes:
    """A part's decoded content; an attached message as its own bytes."""
    try:
        if part.get_content_maintype() == "message" and part.is_multipart():
            return part.get_payload(0).as_bytes()
        data = part.get_payload(decode=True)
        return data if data is not None else str(part.get_payload()).encode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - keep the mail even if one part cannot be re-encoded
        return b""
