"""One raw mail → ParsedMail: sender, threading, text for commands, attachments, loop markers."""
from __future__ import annotations

from dataclasses import dataclass

from bot.mail.parse.attachments import Limits, Refused, attachments
from bot.mail.parse.body import body_part, body_text, strip_quotes
from bot.mail.parse.headers import (
    ID,
    first_id,
    is_automatic,
    language_of,
    message_id,
    raw_headers,
    sender_of,
    subject_of,
)
from bot.mail.parse.nesting import read_message
from bot.mail.parse.reports import DeliveryReport, delivery_report
from handlers.messages import Attachment


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
    report: DeliveryReport | None = None  # a delivery status notification: which mail failed, and why


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
        unread=unread, report=delivery_report(msg, heads),
    )
