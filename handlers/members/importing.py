"""Importing a member list into a group: a dry run first (checked rows, a summary, an error file), then the
import itself, all or nothing; by email each step waits for a code mailed to the sender."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from handlers.context import Context, Refusal, table
from handlers.identity import issue_code
from handlers.members import uploads
from handlers.members.groups import find_seat_group
from handlers.members.imports import MAX_FILE_BYTES, Checked, FileRefused, ImportRow, RowError, row_from_dict
from handlers.members.membership import (
    Invitee,
    add_memberships,
    in_chunks,
    member_statuses,
    seats_missing,
    take_seats,
    welcome_members,
)
from handlers.members.rules import BUYERS, CONFIRM, file_slug, missing_seats, quote
from handlers.members.uploads import pick_attachment
from handlers.messages import Attachment, Choice, Reply
from handlers.router import split_command
from handlers.rules.profile import csv_bytes
from handlers.rules.words import split_words
from storage.bulk import insert_rows
from storage.models import Address, Code, ImportBatch, Member, Membership, Person, SeatGroup

IMPORT_CONFIRM = "import_confirm"  # code purpose: by email, an import runs when the check mail's code comes back
BATCH_HOURS = 24  # a dry run older than this must be sent again


@dataclass
class ImportPlan:
    """Valid rows against the database: new members, rows already in the group, rows that clash."""

    new: list[ImportRow]
    members: list[ImportRow]
    errors: list[RowError]
    persons: dict[str, int]  # email → the person already known by it


async def import_members(ctx: Context, args: str) -> list[Reply]:
    """`import GROUP` with a CSV or XLSX: a dry run; `import GROUP confirm` then imports it."""
    tokens = split_words(args)
    confirm = bool(tokens) and tokens[-1].casefold() in CONFIRM
    group, _ = await find_seat_group(ctx, tokens[:-1] if confirm else tokens)
    if confirm and ctx.inbound.channel == "email":
        return await ask_import_code(ctx, group)
    if confirm:
        return await confirm_import(ctx, group)
    attachment = pick_attachment(ctx.inbound.attachments)
    if attachment is None:
        raise Refusal("groups_import_no_file", group=group, channel=ctx.inbound.channel)
    if ctx.inbound.channel == "email":
        return await keep_upload(ctx, group, attachment)
    return await dry_run(ctx, group, attachment.name, prepared_list(ctx, uploads.UPLOAD_KEY))


def import_word(desk, text: str) -> bool:
    """Whether a message's text is the import word (the desk reads its attachment before the transaction)."""
    command = desk.words.get(split_command(text or "")[0])
    return command is not None and command.run is import_members


def prepared_list(ctx: Context, key: str) -> Checked:
    """The list the desk read before this transaction; a refusal if it could not be read."""
    result = ctx.inbound.prepared.get(key)
    if isinstance(result, FileRefused):
        raise result
    if result is None:  # only a caller that skipped Desk.prepare gets here
        raise FileRefused("unread")
    return result


async def keep_upload(ctx: Context, group: SeatGroup, attachment: Attachment) -> list[Reply]:
    """By email: keep the list unread and mail a code; it is read only when the code comes back, since
    anyone can write the From: line of an upload."""
    if len(attachment.data) > MAX_FILE_BYTES:
        raise FileRefused("too_big", size=len(attachment.data), limit=MAX_FILE_BYTES)
    # No earlier upload is discarded here: a forged From: must not void the list its owner's code names.
    batch = ImportBatch(group_id=group.id, uploaded_by=ctx.sender, filename=(attachment.name or "")[:255], rows=[],
                        summary={}, status="uploaded", upload=attachment.data, created_at=ctx.now)
    ctx.session.add(batch)
    await ctx.session.flush()
    code = await issue_code(ctx, uploads.IMPORT_UPLOAD, f"batch:{batch.id}")
    await ctx.audit("import_uploaded", f"group:{group.id}", file=batch.filename[:120], size=len(attachment.data))
    reply = ctx.say("groups_import_upload_code", group=group, file=batch.filename, code=code,
                    expires_at=ctx.now + ctx.config.code_ttl)
    reply.subject = ctx.word("groups.import_upload_subject", code=code, group=group.name)
    return [reply]


async def upload_code_confirmed(ctx: Context, row: Code) -> list[Reply]:
    """The code of an emailed list came back: check the list the desk has just read (the dry run)."""
    batch = await ctx.session.get(ImportBatch, int(row.target.split(":", 1)[1]))
    group = await ctx.session.get(SeatGroup, batch.group_id) if batch else None
    if group is None or batch.status != "uploaded":
        raise Refusal("groups_import_nothing", group=None, command="import GROUP")
    if uploads.batch_key(batch.id) not in ctx.inbound.prepared:
        raise FileRefused("unread")  # the code stays good for another try
    batch.status, batch.upload = "discarded", None  # read once; the dry run keeps what it found
    try:
        checked = prepared_list(ctx, uploads.batch_key(batch.id))
    except FileRefused as refused:  # a list that cannot be read is answered, and its code is spent
        return [ctx.say(refused.template, **refused.values)]
    return await dry_run(ctx, group, batch.filename, checked)


async def dry_run(ctx: Context, group: SeatGroup, filename: str, checked: Checked) -> list[Reply]:
    """Check every row, keep the valid ones for `confirm`, and answer with a summary and an error file."""
    plan = await classify(ctx, group, checked.valid)
    free = group.seats_bought - group.seats_taken
    summary = {"rows": len(checked.valid) + checked.invalid_rows, "new": len(plan.new), "members": len(plan.members),
               "invalid": checked.invalid_rows + len({e.row for e in plan.errors}), "free": free,
               "missing": missing_seats(len(plan.new), group.seats_bought, group.seats_taken)}
    batch = await store_batch(ctx, group, filename, checked.valid, summary)
    code = await import_code(ctx, batch) if summary["new"] and ctx.inbound.channel == "email" else None
    reply = ctx.say("groups_import_dry_run", group=group, summary=summary, ignored=checked.ignored, code=code,
                    choices=import_choices(ctx, group, summary))
    reply.subject = ctx.word("groups.import_code_subject", code=code, group=group.name) if code else None
    if checked.errors or plan.errors or plan.members:
        reply.attachments.append(error_file(ctx, group, checked.errors + plan.errors, plan.members))
    await ctx.audit("import_checked", f"group:{group.id}", file=(filename or "")[:120], **summary)
    return [reply]


async def import_code(ctx: Context, batch: ImportBatch) -> str:
    """Email is easy to spoof: the import runs when this code, mailed to the sender, comes back."""
    return await issue_code(ctx, IMPORT_CONFIRM, f"batch:{batch.id}")


async def ask_import_code(ctx: Context, group: SeatGroup) -> list[Reply]:
    """`import GROUP confirm` by email: mail a code for the latest check; its return imports."""
    batch = await latest_batch(ctx, group)
    code = await import_code(ctx, batch)
    reply = ctx.say("groups_import_code", group=group, code=code)
    reply.subject = ctx.word("groups.import_code_subject", code=code, group=group.name)
    return [reply]


async def import_code_confirmed(ctx: Context, row: Code) -> list[Reply]:
    """The code of an email import came back from the sender's mailbox: import that very check."""
    batch = await ctx.session.get(ImportBatch, int(row.target.split(":", 1)[1]))
    group = await ctx.session.get(SeatGroup, batch.group_id) if batch else None
    if group is None:
        raise Refusal("groups_import_nothing", group=None, command="import GROUP")
    return await confirm_import(ctx, group, batch.id)


def import_choices(ctx: Context, group: SeatGroup, summary: dict) -> list[Choice]:
    """A confirm button when someone is new, and a buy button for the missing seats (for those who may buy)."""
    choices = []
    if summary["new"]:
        choices.append(ctx.choice("label.groups_import_confirm", f"import {quote(group.name)} confirm",
                                  count=summary["new"]))
    if summary["missing"] and ctx.roles & BUYERS:
        choices.append(ctx.choice("label.groups_buy_more", f"seats {quote(group.name)} +{summary['missing']}",
                                  count=summary["missing"]))
    return choices


async def store_batch(ctx: Context, group: SeatGroup, filename: str, rows: list[ImportRow],
                      summary: dict) -> ImportBatch:
    """Keep the valid rows for `confirm`; an earlier dry run of the same sender and group is discarded,
    except by mail: a From: line proves nothing, so a mail never discards the check its owner's code names."""
    if ctx.inbound.channel != "email":
        await ctx.session.execute(update(ImportBatch).where(
            ImportBatch.group_id == group.id, ImportBatch.uploaded_by == ctx.sender, ImportBatch.status == "dry_run")
            .values(status="discarded").execution_options(synchronize_session=False))
    batch = ImportBatch(group_id=group.id, uploaded_by=ctx.sender, filename=(filename or "")[:255],
                        rows=[r.to_dict() for r in rows], summary=summary, status="dry_run", created_at=ctx.now)
    ctx.session.add(batch)
    await ctx.session.flush()
    return batch


def error_file(ctx: Context, group: SeatGroup, errors: list[RowError], members: list[ImportRow]) -> Attachment:
    """Row number, value and reason for every row not imported (CSV, formulas neutralised)."""
    lines = [(e.row, e.value, ctx.word(f"groups_reason.{e.reason}", row=e.other_row)) for e in errors]
    lines += [(m.row, m.email, ctx.word("groups_reason.already_member")) for m in members]
    header = [ctx.word(f"groups_csv.{key}") for key in ("row", "value", "reason")]
    lines.sort(key=lambda line: line[0])
    return Attachment(f"import-errors-{file_slug(group.name)}.csv", "text/csv", csv_bytes(header, lines))


async def classify(ctx: Context, group: SeatGroup, rows: list[ImportRow]) -> ImportPlan:
    """Sort valid rows into new members and members already in the group (skipped: not charged twice)."""
    persons = await persons_by_email(ctx, [r.email for r in rows])
    in_group = await members_among(ctx, group.id, list(persons.values()))
    phones = await phone_owners(ctx, [r.phone for r in rows if r.phone])
    plan = ImportPlan([], [], [], persons)
    for row in rows:
        person_id = persons.get(row.email)
        if person_id is not None and person_id in in_group:
            plan.members.append(row)
        elif row.phone and phones.get(row.phone, person_id) != person_id:
            plan.errors.append(RowError(row.row, row.phone, "phone_taken"))
        else:
            plan.new.append(row)
    return plan


async def persons_by_email(ctx: Context, emails: list[str]) -> dict[str, int]:
    rows = await in_chunks(ctx, lambda chunk: select(Address.address, Address.person_id).where(
        Address.address.in_(chunk)), [f"email:{e}" for e in emails])
    return {address.split(":", 1)[1]: person_id for address, person_id in rows}


async def members_among(ctx: Context, group_id: int, person_ids: list[int]) -> set[int]:
    rows = await in_chunks(ctx, lambda chunk: select(Membership.person_id).where(
        Membership.group_id == group_id, Membership.person_id.in_(chunk)), person_ids)
    return {person_id for (person_id,) in rows}


async def phone_owners(ctx: Context, phones: list[str]) -> dict[str, int]:
    """Phone numbers are unique among members (member.phone): who holds each already."""
    rows = await in_chunks(ctx, lambda chunk: select(Member.phone, Member.person_id).where(
        Member.phone.in_(chunk)), phones)
    return dict(rows)


async def confirm_import(ctx: Context, group: SeatGroup, batch_id: int | None = None) -> list[Reply]:
    """Import the last dry run, all or nothing, in this one transaction; too few seats import nothing."""
    batch = await claim_batch(ctx, group, batch_id)
    plan = await classify(ctx, group, [row_from_dict(r) for r in batch.rows])
    if plan.errors:
        raise Refusal("groups_import_changed", group=group)
    if plan.new and not await take_seats(ctx, group.id, len(plan.new)):
        raise await seats_missing(ctx, group.id, len(plan.new))
    try:
        async with ctx.session.begin_nested():
            await create_members(ctx, group, plan)
    except IntegrityError:  # someone enrolled one of these addresses meanwhile
        raise Refusal("groups_import_changed", group=group) from None
    await ctx.audit("import_done", f"group:{group.id}", batch=batch.id, imported=len(plan.new),
                    skipped=len(plan.members))
    await ctx.session.refresh(group)
    return [ctx.say("groups_import_done", group=group, imported=len(plan.new), skipped=len(plan.members))]


async def latest_batch(ctx: Context, group: SeatGroup, batch_id: int | None = None) -> ImportBatch:
    """The sender's latest dry run for the group (or the one a code names), if still fresh."""
    query = select(ImportBatch).where(ImportBatch.group_id == group.id, ImportBatch.status == "dry_run",
                                      ImportBatch.created_at > ctx.now - timedelta(hours=BATCH_HOURS))
    # A code names its check (and proves who asked); otherwise it is the speaker's own latest one.
    query = query.where(ImportBatch.id == batch_id if batch_id else ImportBatch.uploaded_by == ctx.sender)
    batch = await ctx.session.scalar(query.order_by(ImportBatch.id.desc()).limit(1))
    if batch is None:
        raise Refusal("groups_import_nothing", group=group, command=f"import {quote(group.name)}")
    return batch


async def claim_batch(ctx: Context, group: SeatGroup, batch_id: int | None = None) -> ImportBatch:
    """Claim the dry run atomically: a double click imports once."""
    batch = await latest_batch(ctx, group, batch_id)
    claimed = await ctx.session.execute(
        update(ImportBatch).where(ImportBatch.id == batch.id, ImportBatch.status == "dry_run")
        .values(status="imported").execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise Refusal("groups_import_nothing", group=group, command=f"import {quote(group.name)}")
    return batch


async def create_members(ctx: Context, group: SeatGroup, plan: ImportPlan) -> None:
    """People, addresses, memberships, member rows, codes and mails: Core bulk inserts, one list each."""
    fresh = [row for row in plan.new if row.email not in plan.persons]
    person_of = {**plan.persons, **await insert_people(ctx, fresh)}
    ids = [person_of[row.email] for row in plan.new]
    statuses = await member_statuses(ctx, [person_of[row.email] for row in plan.new if row.email in plan.persons])
    await add_memberships(ctx, group, ids, {pid for pid, status in statuses.items() if status == "activated"})
    await welcome_members(ctx, group, [Invitee(person_of[row.email], row.email, row, row.email not in plan.persons)
                                       for row in plan.new])


async def insert_people(ctx: Context, rows: list[ImportRow]) -> dict[str, int]:
    """New persons with their (unverified) addresses, inserted in bulk with ids chosen beforehand."""
    if not rows:
        return {}
    ids = await new_ids(ctx, table(Person), len(rows))
    await insert_rows(ctx.session, table(Person), [
        {"id": pid, "name": row.name, "created_at": ctx.now} for row, pid in zip(rows, ids)])
    await insert_rows(ctx.session, table(Address), [
        {"address": f"email:{row.email}", "kind": "email", "person_id": pid, "verified": False,
         "created_at": ctx.now} for row, pid in zip(rows, ids)])
    return {row.email: pid for row, pid in zip(rows, ids)}


async def new_ids(ctx: Context, table, count: int) -> list[int]:
    """`count` unused ids of `table`, one branch per dialect (STYLE §8).

    Bulk inserts cannot ask for ids back on SQLite without going row by row (RETURNING has no
    order guarantee there, so SQLAlchemy falls back to one INSERT per row: 20x slower).
    """
    if ctx.uow.dialect == "postgresql":
        sequence = func.pg_get_serial_sequence(table.name, "id")
        return list(await ctx.session.scalars(select(func.nextval(sequence)).select_from(
            func.generate_series(1, count))))
    # SQLite: this transaction took the write lock at BEGIN (IMMEDIATE), so no one else inserts meanwhile.
    last = await ctx.session.scalar(select(func.max(table.c.id))) or 0
    return list(range(last + 1, last + 1 + count))
