"""A mail's text: the body part decoded whatever its charset claims, HTML as text, quotes and signature cut."""
from __future__ import annotations

import codecs
import re
from email.message import EmailMessage, Message, MIMEPart
from html.parser import HTMLParser

from bot.mail.parse.headers import clean


def body_text(part: Message | None) -> str:
    """The readable text of the body part: text/plain as it is, HTML turned into text."""
    if part is None:
        return ""
    text = decode_text(part)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return clean(text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def body_part(msg: EmailMessage) -> MIMEPart | None:
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
    if not isinstance(data, bytes):
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
# The line a mail client or phone adds under one's words: "Sent from Outlook", "Von meinem iPhone gesendet".
FOOTER = re.compile(r"^((sent|gesendet)\s+(from|with|via|von|mit|über)\s.{0,60}|get outlook for \S+"
                    r"|von meinem .{1,40} gesendet)$", re.I)


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


def own_words(text: str) -> str:
    """A mail's own words (quotes and signature already gone) without a client's "Sent from …" line."""
    lines = text.strip().split("\n")
    while lines and (not lines[-1].strip() or FOOTER.match(lines[-1].strip())):
        lines.pop()
    return "\n".join(lines).strip()
