"""Mail that could not be delivered: the capability that sent it decides what that means.

A mail whose failure matters carries its purpose and target in its outbox row (`purpose_headers`); the
headers stay ours (the SMTP transport does not send them). A refusal at delivery, or a delivery report
that names the Message-ID of one of our rows, runs the hook registered for the row's purpose. The
report's own words are never trusted to say which mail it was: only our row is."""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from storage.db import UnitOfWork
from storage.models import Audit, Outbox

PURPOSE = "X-Frontdesk-Purpose"
TARGET = "X-Frontdesk-Target"
PRIVATE = "x-frontdesk-"  # headers of an outbox row that never leave (lower case prefix)
MAX_REASON = 160


@dataclass(frozen=True)
class Bounce:
    """One of our mails that was not delivered."""

    purpose: str
    target: str  # what the mail was about, as its sender wrote it into the row (a row id, a person id)
    recipient: str  # the address it went to, without "email:"
    message_id: str
    status: str  # "5.1.1", or an SMTP reply code
    reason: str  # "bounced: 5.1.1 …", short, for the admin
    at: datetime


# What a bounce of a mail with a given purpose does, inside the unit of work that records it.
BounceHook = Callable[[UnitOfWork, Bounce], Awaitable[None]]


def purpose_headers(purpose: str, target: str | int) -> dict[str, str]:
    """Headers for ctx.mail that tie a mail to what it is about, for when it bounces."""
    return {PURPOSE: purpose, TARGET: str(target)}


def reason_for(status: str, detail: str = "") -> str:
    detail = " ".join(detail.split())
    return f"bounced: {status} {detail}".strip()[:MAX_REASON]


async def bounced(uow: UnitOfWork, hooks: Mapping[str, BounceHook], row: Outbox, status: str, detail: str,
                  now: datetime, actor: str) -> bool:
    """Run the hook of our row's purpose; False if the row has none. Audited either way it runs."""
    headers = row.headers or {}
    purpose, target = headers.get(PURPOSE), headers.get(TARGET)
    if purpose is None or target is None or row.message_id is None or purpose not in hooks:
        return False
    bounce = Bounce(purpose, str(target), row.recipient.removeprefix("email:"), row.message_id, status,
                    reason_for(status, detail), now)
    uow.session.add(Audit(at=now, actor=actor, person_id=None, channel="email", action="mail_bounced",
                          subject=f"email:{bounce.recipient}",
                          detail={"purpose": purpose, "target": bounce.target, "message_id": row.message_id,
                                  "reason": bounce.reason}))
    await hooks[purpose](uow, bounce)
    return True
