"""Administration words of the foundation: the audit log answers "who did that?"."""
from __future__ import annotations

from sqlalchemy import select

from handlers.context import Context, Refusal
from handlers.customers import like_pattern
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.rules.roles import ADMINS
from storage.models import Audit

MAX_ENTRIES = 50


async def show_audit(ctx: Context, args: str) -> list[Reply]:
    """`audit [N] [filter]`: the latest N entries, optionally only those mentioning a word."""
    parts = args.split(None, 1)
    count = 10
    if parts and is_number(parts[0]):
        count = min(int(parts.pop(0)), MAX_ENTRIES)
    elif parts and is_number(parts[0].lstrip("-")):
        raise Refusal("audit_bad_count", value=parts[0])
    query = select(Audit).order_by(Audit.id.desc()).limit(max(count, 1))
    if parts:
        needle = like_pattern(parts[0].strip())  # a typed % or _ is looked for, not a wildcard
        query = query.where(Audit.action.ilike(needle, escape="\\") | Audit.actor.ilike(needle, escape="\\")
                            | Audit.subject.ilike(needle, escape="\\"))
    entries = (await ctx.session.scalars(query)).all()
    return [ctx.say("audit", entries=list(reversed(entries)))]


def is_number(text: str) -> bool:
    """Only ASCII digits: str.isdigit() also accepts '²', which int() refuses."""
    return text.isascii() and text.isdigit()


def handlers() -> Handlers:
    return Handlers(commands=[
        Command("audit", show_audit, allowed=ADMINS, aliases=("protokoll",), section="admin", safe=True),
    ])
