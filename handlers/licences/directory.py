"""`schools`: the school directory as the admins send it (CSV or XLSX); a dry run first, then `schools confirm`
updates it, all or nothing."""
from __future__ import annotations

from datetime import date

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal, table
from handlers.licences import lists
from handlers.licences.rules import DIRECTORY_HEADERS, DIRECTORY_REQUIRED, SchoolRow, check_directory
from handlers.members.membership import in_chunks
from handlers.members.rules import CONFIRM
from handlers.messages import Reply
from handlers.rules.words import split_words
from storage.models import School

KIND = "schools"


async def schools(ctx: Context, args: str) -> list[Reply]:
    """`schools` with the directory attached: a dry run; `schools confirm`: apply the last one."""
    words = split_words(args)
    if words and words[-1].casefold() in CONFIRM:
        return await confirm_schools(ctx)
    if not ctx.inbound.attachments:
        total = await ctx.session.scalar(select(table(School).c.id).order_by(table(School).c.id.desc()).limit(1))
        raise Refusal("licences_schools_no_file", known=bool(total))
    columns, rows = lists.prepared_table(ctx, DIRECTORY_HEADERS, DIRECTORY_REQUIRED)
    checked = check_directory(rows, columns)
    known = await known_numbers(ctx, [r.number for r in checked.valid])
    summary = {"rows": len(rows), "new": sum(r.number not in known for r in checked.valid),
               "updated": sum(r.number in known for r in checked.valid), "invalid": len(checked.errors)}
    await lists.store_batch(ctx, KIND, None, checked.valid, summary)
    choices = [ctx.choice("licences_label.schools_confirm", "schools confirm")] if checked.valid else []
    reply = ctx.say("licences_schools_dry_run", summary=summary, choices=choices)
    if checked.errors:
        reply.attachments.append(lists.error_file(ctx, "schools", checked.errors))
    await ctx.audit("schools_checked", None, **summary)
    return [reply]


async def known_numbers(ctx: Context, numbers: list[str]) -> dict[str, int]:
    """School number → id of those already in the directory."""
    found = await in_chunks(ctx, lambda chunk: select(School.number, School.id).where(School.number.in_(chunk)),
                            numbers)
    return dict(found)


async def confirm_schools(ctx: Context) -> list[Reply]:
    """Apply the last dry run in this one transaction: new schools added, known ones brought in line."""
    batch = await lists.claim_batch(ctx, KIND, None, Refusal("licences_nothing", command="schools"))
    rows = [SchoolRow(**r) for r in batch.rows]
    known = await known_numbers(ctx, [r.number for r in rows])
    try:
        async with ctx.session.begin_nested():
            await write_schools(ctx, rows, known)
    except IntegrityError:  # another admin's directory added one of these numbers meanwhile
        raise Refusal("licences_schools_changed") from None
    await ctx.audit("schools_imported", None, new=len(rows) - len(known), updated=len(known))
    return [ctx.say("licences_schools_done", new=len(rows) - len(known), updated=len(known))]


def school_values(row: SchoolRow, now) -> dict:
    return {"number": row.number, "name": row.name, "type": row.type, "carrier": row.carrier, "email": row.email,
            "single_product": row.product, "single_until": date.fromisoformat(row.until) if row.until else None,
            "single_paid_cents": row.paid_cents, "updated_at": now}


async def write_schools(ctx: Context, rows: list[SchoolRow], known: dict[str, int]) -> None:
    """Core bulk statements: one INSERT for the new schools, one executemany UPDATE for the known."""
    from sqlalchemy import bindparam

    fresh = [school_values(r, ctx.now) for r in rows if r.number not in known]
    if fresh:
        await ctx.session.execute(insert(table(School)), fresh)
    changed = [dict(school_values(r, ctx.now), key=known[r.number]) for r in rows if r.number in known]
    if changed:
        schools_table = table(School)
        await ctx.session.execute(update(schools_table).where(schools_table.c.id == bindparam("key")).values(
            {k: bindparam(k) for k in changed[0] if k != "key"}).execution_options(synchronize_session=False),
            changed)
