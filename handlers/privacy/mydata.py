"""`mydata`: everything stored about the speaker, mailed to their proven address as one JSON file.

The data never goes into a chat: a chat may be read over a shoulder, a proven mailbox is the person's.
By email the word changes nothing, yet it is no `safe` word: the router's code round trip runs first,
so a forged From: line gets a code mailed to the real owner and never the data.
"""
from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from handlers.context import Context, Refusal
from handlers.messages import Attachment, Reply
from handlers.privacy.export import collect
from handlers.speaking import verified_email
from storage.dialect import serialize
from storage.models import Address, Audit

EXPORTS_PER_HOUR = 3  # each is a whole copy of the person's data in a mail: enough to retry, not to flood
EXPORTED = "data_exported"  # audit action, also what the hourly limit counts


async def mydata(ctx: Context, args: str) -> list[Reply]:
    """Mail the speaker's data to their proven email address; without one, say how to add it."""
    email = await destination(ctx)
    if email is None:
        raise Refusal("privacy_mydata_no_email")
    await refuse_too_many(ctx)
    data = await collect(ctx.uow, ctx.person, ctx.now, ctx.business.name if ctx.business else None)
    content = await asyncio.to_thread(encode, data)
    name = ctx.word("privacy.file", day=ctx.now.date().isoformat())
    await ctx.mail(email, "privacy_mydata_mail", attachments=[Attachment(name, "application/json", content)],
                   sections=summary(data))
    await ctx.audit(EXPORTED, f"email:{email}", size=len(content))
    return [ctx.say("privacy_mydata_sent", email=email)]


async def destination(ctx: Context) -> str | None:
    """By email the address it came from (the round trip proved it); else the person's proven email."""
    if ctx.inbound.channel == "email":
        proven = await ctx.session.scalar(select(Address.verified).where(Address.address == ctx.sender))
        return ctx.sender.split(":", 1)[1] if proven else None
    return await verified_email(ctx.uow, ctx.person.id)


async def refuse_too_many(ctx: Context) -> None:
    """At most EXPORTS_PER_HOUR exports a person an hour, from any of their addresses (counted under a lock)."""
    await serialize(ctx.session, f"mydata:{ctx.person.id}")
    recent = (await ctx.session.scalars(select(Audit.at).where(
        Audit.at > ctx.now - timedelta(hours=1), Audit.action == EXPORTED, Audit.person_id == ctx.person.id)
        .order_by(Audit.at))).all()
    if len(recent) >= EXPORTS_PER_HOUR:
        raise Refusal("privacy_mydata_too_often", limit=EXPORTS_PER_HOUR, until=recent[0] + timedelta(hours=1))


def encode(data: dict[str, Any]) -> bytes:
    """The export as a file: UTF-8 JSON, indented for reading."""
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def summary(data: dict[str, Any]) -> list[tuple[str, int]]:
    """How many entries each list section holds, for the mail's text (sections with none left out)."""
    return [(key, len(value)) for key, value in data.items() if isinstance(value, list) and value]
