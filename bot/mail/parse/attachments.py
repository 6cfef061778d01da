"""A mail's attachments within the limits, and the names and sizes of those left out."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message, MIMEPart

from bot.mail.parse.headers import clean
from handlers.messages import Attachment

MB = 1024 * 1024


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


def attachments(msg: EmailMessage, body: Message | None,
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


def leaves(part: MIMEPart) -> Iterator[MIMEPart]:
    """Every non-multipart part, in order; an attached message (message/rfc822) counts as one part."""
    todo = [part]
    while todo:
        part = todo.pop()
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            todo.extend(reversed(list(part.iter_parts())))
        else:
            yield part


def is_attachment(part: MIMEPart) -> bool:
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
            inner = part.get_payload(0)
            return inner.as_bytes() if isinstance(inner, Message) else b""
        data = part.get_payload(decode=True)
        return data if isinstance(data, bytes) else str(part.get_payload()).encode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - keep the mail even if one part cannot be re-encoded
        return b""
