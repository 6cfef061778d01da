"""Delivery status notifications (RFC 3464): which mail failed, for whom, and why."""
from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from typing import cast

from bot.mail.parse.headers import first_id

MAX_FIELDS = 20_000  # characters of a status part read at most


@dataclass(frozen=True)
class DeliveryReport:
    """A report that a mail could not be delivered: its original's Message-ID and the first failure."""

    original_id: str | None
    status: str  # "5.1.1"
    diagnostic: str


def delivery_report(msg: Message, heads: dict[str, str]) -> DeliveryReport | None:
    """A multipart/report with report-type=delivery-status whose recipients failed; None for anything else
    (a delay, a relay, a read receipt). The original is named by its returned headers, else by threading."""
    kind = str(msg.get_param("report-type", "")).lower()
    if msg.get_content_type() != "multipart/report" or kind != "delivery-status":
        return None
    status_part = original = None
    for part in cast(list[Message], msg.get_payload()) if msg.is_multipart() else []:
        kind = part.get_content_type()
        if kind == "message/delivery-status" and status_part is None:
            status_part = part
        elif kind in ("message/rfc822", "text/rfc822-headers") and original is None:
            original = part
    failed = first_failure(status_part) if status_part is not None else None
    if failed is None:
        return None
    original_id = returned_id(original) if original is not None else None
    if original_id is None:
        original_id = first_id(heads.get("in-reply-to", "")) or first_id(heads.get("references", ""))
    return DeliveryReport(original_id, *failed)


def first_failure(part: Message) -> tuple[str, str] | None:
    """(status, diagnostic) of the first recipient whose Action is failed."""
    for fields in status_groups(part):
        if fields.get("action", "").strip().lower() == "failed":
            status = fields.get("status", "").split()[0] if fields.get("status", "").split() else "5.0.0"
            diagnostic = fields.get("diagnostic-code", "").partition(";")[2] or fields.get("diagnostic-code", "")
            return status, " ".join(diagnostic.split())
    return None


def status_groups(part: Message) -> list[dict[str, str]]:
    """The per-message and per-recipient field groups of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the parser read each group as a message of headers
        return [{k.lower(): str(v) for k, v in group.items()} for group in cast(list[Message], payload)]
    blocks = text_of(part).replace("\r\n", "\n").split("\n\n")
    return [{k.lower(): str(v) for k, v in HeaderParser().parsestr(block).items()} for block in blocks if block.strip()]


def returned_id(part: Message) -> str | None:
    """The Message-ID in the returned original (a whole mail, or its headers only)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:  # message/rfc822: the parsed original
        return first_id(str(cast(list[Message], payload)[0].get("message-id", "")))
    headers = HeaderParser().parsestr(text_of(part), headersonly=True)
    return first_id(str(headers.get("message-id", "")))


def text_of(part: Message) -> str:
    """A part's text, at most MAX_FIELDS characters."""
    data = part.get_payload(decode=True)
    return data.decode("utf-8", "replace")[:MAX_FIELDS] if isinstance(data, bytes) else ""
