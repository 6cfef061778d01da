"""A person's export presets: saved (or replaced) under a name of theirs, found, listed and deleted."""
from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult

from handlers.context import Context, table
from handlers.exports.request import preset_key
from storage.dialect import insert_ignoring_conflicts
from storage.models import ExportPreset

SAVE_TRIES = 3  # a preset deleted from another chat between the insert and the update: try again


async def find_preset(ctx: Context, name: str) -> ExportPreset | None:
    """The asker's preset of that name (any case), if they saved one."""
    return await ctx.session.scalar(select(ExportPreset).where(
        ExportPreset.person_id == ctx.person.id, ExportPreset.name_key == preset_key(name)))


async def own_presets(ctx: Context) -> list[ExportPreset]:
    return list(await ctx.session.scalars(
        select(ExportPreset).where(ExportPreset.person_id == ctx.person.id).order_by(ExportPreset.name_key)))


async def save_preset(ctx: Context, name: str, list_name: str, kind: str | None, fields: Sequence[str],
                      args: str) -> bool:
    """Save the preset, or replace the asker's preset of that name; True if it replaced one.

    The unique constraint on (person, name) decides: the insert that loses updates the winner's row,
    so two saves at once from two of the person's chats leave one preset, never two."""
    values = dict(name=name, list_name=list_name, kind=kind, fields=list(fields), args=args, updated_at=ctx.now)
    rows = table(ExportPreset)
    claim = insert_ignoring_conflicts(ctx.uow.dialect, rows, ["person_id", "name_key"]).returning(rows.c.id)
    for _ in range(SAVE_TRIES):
        made = await ctx.session.scalar(claim, dict(values, person_id=ctx.person.id, name_key=preset_key(name),
                                                    created_at=ctx.now))
        if made is not None:
            return False
        result = await ctx.session.execute(
            update(rows).where(rows.c.person_id == ctx.person.id, rows.c.name_key == preset_key(name))
            .values(**values))
        if isinstance(result, CursorResult) and result.rowcount:
            return True
    raise RuntimeError(f"preset {name!r} could neither be inserted nor updated")


async def delete_preset(ctx: Context, name: str) -> bool:
    """Delete the asker's preset of that name; False if they have none."""
    result = await ctx.session.execute(delete(table(ExportPreset)).where(
        table(ExportPreset).c.person_id == ctx.person.id, table(ExportPreset).c.name_key == preset_key(name)))
    return isinstance(result, CursorResult) and result.rowcount > 0
