"""Welcome, help and language: the words everyone may use."""
from __future__ import annotations

from handlers.context import Context, Refusal
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from templates import has_word

SECTIONS = ("everyone", "customer", "courses", "staff", "admin", "groups", "support")


async def start(ctx: Context, payload: str) -> list[Reply]:
    """Greet; a deep-link payload (`/start <payload>`) goes to the module that issued it."""
    payload = payload.strip()
    if payload:
        prefix = payload.split("-", 1)[0]
        handler = ctx.desk.start_payloads.get(prefix)
        if handler is not None:
            return await handler(ctx, payload)
        await ctx.audit("start_unknown_payload", payload[:64])
    return [ctx.say("welcome", unknown_payload=bool(payload), choices=welcome_choices(ctx))]


def welcome_choices(ctx: Context):
    return [
        ctx.choice("label.help", "help"),
        ctx.choice("label.verify_email", "email"),
        ctx.choice("label.language", "language"),
    ]


async def show_help(ctx: Context, args: str) -> list[Reply]:
    """List the commands this speaker's roles may use, grouped by section."""
    prefix = "" if ctx.inbound.channel == "email" else "/"
    allowed = ctx.desk.allowed_commands(ctx.roles)
    sections = []
    for section in SECTIONS:
        # a word without a help line is an internal step (a button's target), not something to type
        lines = [(f"{prefix}{c.word}", ctx.word(f"help.{c.word}")) for c in allowed
                 if c.section == section and has_word(ctx.lang, f"help.{c.word}")]
        if lines:
            sections.append((ctx.word(f"section.{section}"), lines))
    return [ctx.say("help", sections=sections)]


async def set_language(ctx: Context, args: str) -> list[Reply]:
    """`language` offers the choice; `language de|en` sets it."""
    wanted = args.strip().lower()[:2]
    if not wanted:
        return [ctx.say("language_ask", choices=[
            ctx.choice("label.lang_de", "language de"), ctx.choice("label.lang_en", "language en")])]
    if wanted not in ("de", "en"):
        raise Refusal("language_unknown", value=args.strip()[:20])
    if ctx.inbound.channel == "email":
        # A From: line is a claim: by mail the word changes this answer only, never the stored setting.
        ctx.lang = wanted
        return [ctx.say("language_once")]
    await ctx.update_person(language=wanted)
    ctx.lang = wanted
    await ctx.audit("language_set", wanted)
    return [ctx.say("language_set")]


def handlers() -> Handlers:
    return Handlers(commands=[
        Command("start", start, safe=True),
        Command("help", show_help, aliases=("hilfe", "?"), safe=True),
        Command("language", set_language, aliases=("sprache", "lang"), safe=True),
    ])
