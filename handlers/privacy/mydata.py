"""`mydata`: everything stored about the speaker, mailed to their proven address as one JSON file.

The data never goes into a chat: a chat may be read over a shoulder, a proven mailbox is the person's.
By email the word changes nothing, yet it is no `safe` word: the router's code round trip runs first,
so a forged From: line gets a code mailed to the real owner and never the data.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import select

from handlers.context import Context, Refusal
from handlers.messages import Attachment, Reply
from handlers.privacy.export import collect
from handlers.speaking import verified_email
from storage.models import Address


async def mydata(ctx: Context, args: str) -> list[Reply]:
    """Mail the speaker's data to their proven email address; without one, say how to add it."""
    email = await destination(ctx)
    if email is None:
        raise Refusal("privacy_mydata_no_email")
    data = await collect(ctx.uow, ctx.person, ctx.now, ctx.business.name if ctx.business else None)
    content = await asyncio.to_thread(encode, data)
    name = ctx.word("privacy.file", day=ctx.now.date().isoformat())
    await ctx.mail(email, "privacy_mydata_mail", attachments=[Attachment(name, "application/json", content)],
                   sections=summary(data))
    await ctx.audit("data_exported", f"email:{email}", size=len(content))
    return [ctx.say("privacy_mydata_sent", email=email)]


async def destination(ctx: Context) -> str | None:
    """By email the address it came from (the round trip proved it); else the person's proven email."""
    if ctx.inbound.channel == "email":
        proven = await ctx.session.scalar(select(Address.verified).where(Address.address == ctx.sender))
        return ctx.sender.split(":", 1)[1] if proven else None
    return await verified_email(ctx.uow, ctx.person.id)


def encode(data: dict[str, Any]) -> bytes:
    """The export as a file: UTF-8 JSON, indented for reading."""
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def summary(data: dict[str, Any]) -> list[tuple[str, int]]:
    """How many entries each list section holds, for the mail's text (sections with none left out)."""
    return [(key, len(value)) for key, value in data.items() if isinstance(value, list) and value]
