"""`export`: a list as a CSV or XLSX file, with chosen fields or a saved preset.

`export LIST [ARGS] [csv|xlsx] [FIELD,…]` writes one of the lists the capabilities registered (Handlers.exports)
that the asker may see; `export preset NAME LIST …` saves the choices under a name, `export NAME` uses them,
`export presets` lists them and `export preset delete NAME` removes one. The rows are read in the message's
unit of work; the file is made from them afterwards (Reply.later), in a thread.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select

from handlers.context import Context, Refusal
from handlers.exports.files import CSV, file_name, make_file
from handlers.exports.presets import delete_preset, find_preset, own_presets, save_preset
from handlers.exports.request import Request, check_fields, check_preset_name, preset_key, read_request
from handlers.messages import Reply
from handlers.registry import ExportList
from handlers.rules.words import first_word
from storage.db import UnitOfWork
from storage.models import ExportPreset

PRESET_WORDS = frozenset({"preset", "vorlage"})
PRESETS_WORDS = frozenset({"presets", "vorlagen"})
DELETE_WORDS = frozenset({"delete", "löschen", "loeschen"})
# The lists DESIGN.md names for `export`; by email a line is an export only if it names one, a preset word
# or a saved preset ("Export of my invoice failed" is a question for a person).
CONTRACT_LISTS = frozenset({"customers", "bookings", "day", "week", "members", "tickets", "courses",
                            "participants", "licences", "licenses", "audit", "kunden", "termine", "tag", "woche",
                            "mitglieder", "kurse", "teilnehmer", "lizenzen", "protokoll"})


def registered(ctx: Context) -> Mapping[str, ExportList]:
    return ctx.desk.exports


def find_list(lists: Iterable[ExportList], word: str) -> ExportList | None:
    """The list a word names: its name or one of its aliases, in any case."""
    wanted = word.casefold()
    return next((x for x in lists if wanted == x.name or wanted in x.aliases), None)


def visible(ctx: Context) -> list[ExportList]:
    """The lists the asker's roles may export, by name."""
    return sorted((x for x in registered(ctx).values() if x.allowed & ctx.roles), key=lambda x: x.name)


def reserved(ctx: Context) -> set[str]:
    """Words a preset may not be called: every list's name and alias, and the words of `export` itself."""
    words = set(PRESET_WORDS | PRESETS_WORDS | DELETE_WORDS | CONTRACT_LISTS | {"csv", "xlsx", "excel"})
    for x in registered(ctx).values():
        words |= {x.name, *x.aliases}
    return words


async def export(ctx: Context, args: str) -> list[Reply]:
    """`export …`: a list, a preset, or the words about presets; alone, what the asker can export."""
    head, rest = first_word(args)
    word = head.casefold()
    if not word:
        return [usage(ctx)]
    if word in PRESETS_WORDS and not rest.strip():
        return [ctx.say("export_presets", presets=await own_presets(ctx))]
    if word in PRESET_WORDS:
        return await preset_command(ctx, rest)
    chosen = find_list(registered(ctx).values(), word)
    if chosen is not None:
        return await write(ctx, chosen, read_request(rest, chosen.fields))
    preset = await find_preset(ctx, head)
    if preset is None:
        raise Refusal("export_unknown", value=head[:40], lists=[x.name for x in visible(ctx)],
                      presets=[p.name for p in await own_presets(ctx)])
    return await write_preset(ctx, preset, rest)


def usage(ctx: Context) -> Reply:
    """What the asker can export, each list with its fields (the default ones marked) and its arguments."""
    lists = [(x.name, x.fields, x.chosen, args_word(ctx, x.name)) for x in visible(ctx)]
    return ctx.say("export_usage", lists=lists)


def args_word(ctx: Context, name: str) -> str:
    """How a list's arguments are typed (`export_args.<list>` in a word file), if it takes any."""
    try:
        return ctx.word(f"export_args.{name}")
    except KeyError:
        return ""


async def allowed(ctx: Context, chosen: ExportList) -> bool:
    """Whether the asker's roles may export the list; a refusal is logged, as the router logs one."""
    if chosen.allowed & ctx.roles:
        return True
    await ctx.audit("denied", f"export {chosen.name}")
    return False


async def write(ctx: Context, chosen: ExportList, request: Request, base: ExportPreset | None = None) -> list[Reply]:
    """Read the list's rows now; the file follows once the transaction is over."""
    if not await allowed(ctx, chosen):
        return [ctx.say("export_not_allowed", list=chosen.name)]
    kind = request.kind or (base.kind if base else None) or CSV
    fields = check_fields(chosen.name, request.fields or (tuple(base.fields) if base else ()) or chosen.chosen,
                          chosen.fields)
    args = request.args or (base.args if base else "")
    rows = await chosen.rows(ctx, args)
    day = ctx.now.astimezone(ZoneInfo(ctx.tz)).date()
    name = file_name(chosen.name, args, day, kind)
    reply = ctx.say("export_done", list=chosen.name, rows=len(rows), fields=fields, kind=kind, file=name,
                    preset=base.name if base else None)
    reply.later.append(partial(make_file, kind, name, fields, rows, ZoneInfo(ctx.tz), chosen.name))
    await ctx.audit("export", chosen.name, kind=kind, fields=list(fields), rows=len(rows), args=args[:200])
    return [reply]


async def write_preset(ctx: Context, preset: ExportPreset, rest: str) -> list[Reply]:
    """`export NAME [ARGS] [csv|xlsx] [FIELD,…]`: the preset's choices, with what is typed now instead."""
    chosen = registered(ctx).get(preset.list_name)
    if chosen is None:  # a capability that registered the list is gone since
        raise Refusal("export_unknown", value=preset.list_name, lists=[x.name for x in visible(ctx)],
                      presets=[p.name for p in await own_presets(ctx)])
    return await write(ctx, chosen, read_request(rest, chosen.fields), base=preset)


async def preset_command(ctx: Context, text: str) -> list[Reply]:
    """`export preset NAME LIST [ARGS] [csv|xlsx] [FIELD,…]`, or `export preset delete NAME`."""
    name, rest = first_word(text)
    if name.casefold() in DELETE_WORDS:
        return await remove_preset(ctx, rest.strip())
    list_word, rest = first_word(rest)
    if not name or not list_word:
        raise Refusal("export_preset_usage")
    check_preset_name(name, reserved(ctx))
    chosen = find_list(registered(ctx).values(), list_word)
    if chosen is None:
        raise Refusal("export_unknown", value=list_word[:40], lists=[x.name for x in visible(ctx)], presets=[])
    if not await allowed(ctx, chosen):
        return [ctx.say("export_not_allowed", list=chosen.name)]
    request = read_request(rest, chosen.fields, strict=True)
    fields = check_fields(chosen.name, request.fields, chosen.fields) if request.fields else ()
    replaced = await save_preset(ctx, name, chosen.name, request.kind, fields, request.args)
    await ctx.audit("export_preset_saved", name, list=chosen.name, fields=list(fields))
    return [ctx.say("export_preset_saved", preset=name, list=chosen.name, kind=request.kind, fields=fields,
                    args=request.args, replaced=replaced)]


async def remove_preset(ctx: Context, name: str) -> list[Reply]:
    if not name or len(name.split()) > 1:
        raise Refusal("export_preset_usage")
    if not await delete_preset(ctx, name):
        raise Refusal("export_unknown_preset", value=name[:40], presets=[p.name for p in await own_presets(ctx)])
    await ctx.audit("export_preset_deleted", name)
    return [ctx.say("export_preset_deleted", preset=name)]


def only_reads(args: str) -> bool:
    """Every `export` line reads, but those that save or delete a preset (by email they wait for a code)."""
    return first_word(args)[0].casefold() not in PRESET_WORDS


async def is_export_line(uow: UnitOfWork, args: str) -> bool:
    """By email: a line names a list, a preset word or a preset someone saved; else it is a question."""
    word = first_word(args)[0].casefold()
    if not word or word in CONTRACT_LISTS | PRESET_WORDS | PRESETS_WORDS:
        return True
    return bool(await uow.session.scalar(select(exists().where(ExportPreset.name_key == preset_key(word)))))
