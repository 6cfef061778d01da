"""Uploaded lists of the licences capability: read before the unit of work (members.uploads does the reading in
a child process with its limits), then found by the handler in `inbound.prepared`; and the dry runs kept for
`confirm`, claimed atomically."""
from __future__ import annotations

from dataclasses import asdict, replace
from datetime import timedelta

from sqlalchemy import update

from handlers.context import Context, Refusal
from handlers.licences.rules import HeadersMissing, map_columns
from handlers.licences.sheets import DIRECTORY_PARSER, LIST_PARSER
from handlers.members import uploads
from handlers.members.imports import FileRefused, RowError
from handlers.members.rules import CONFIRM
from handlers.messages import Attachment, Inbound
from handlers.router import split_command
from handlers.rules.profile import csv_bytes
from handlers.rules.words import split_words
from storage.models import LicenceBatch

UPLOAD_KEY = "licences"  # inbound.prepared key of the list this message brings
BATCH_HOURS = 24  # a dry run older than this must be sent again
PARSERS = {"schools": DIRECTORY_PARSER, "licence": LIST_PARSER}


def list_preparer(seconds: float = uploads.PARSE_SECONDS, memory: int = uploads.PARSE_MEMORY):
    """What the desk runs before the unit of work of `schools` or `licence PRODUCT` with a file."""

    async def prepare(desk, inbound: Inbound) -> Inbound:
        command = desk.words.get(split_command(inbound.text or "")[0])
        parser = PARSERS.get(command.word) if command is not None else None
        words = split_words(split_command(inbound.text or "")[1])
        if parser is None or not inbound.attachments or (words and words[-1].casefold() in CONFIRM):
            return inbound
        attachment = uploads.pick_attachment(inbound.attachments) or inbound.attachments[0]
        result = await uploads.read_upload(attachment, parser, [], seconds, memory)
        return replace(inbound, prepared={**inbound.prepared, UPLOAD_KEY: result})

    return prepare


def prepared_table(ctx: Context, spellings: dict, required: tuple[str, ...]) -> tuple[dict[str, int], list]:
    """The columns and rows of the list the desk read before this transaction; a Refusal if unreadable."""
    result = ctx.inbound.prepared.get(UPLOAD_KEY)
    if result is None:
        raise FileRefused("unread")
    refused = uploads.refused_of(result)
    if refused is not None:
        raise refused
    try:
        columns = map_columns(result["headers"], spellings, required)
    except HeadersMissing as missing:
        raise Refusal("licences_headers_missing", missing=missing.missing, found=missing.found) from None
    return columns, [(number, cells) for number, cells in result["rows"]]


def attachment_name(ctx: Context) -> str:
    attachment = uploads.pick_attachment(ctx.inbound.attachments) or ctx.inbound.attachments[0]
    return (attachment.name or "")[:255]


async def store_batch(ctx: Context, kind: str, product: str | None, rows: list, summary: dict) -> LicenceBatch:
    """Keep the checked rows for `confirm`; the speaker's earlier dry run of the same kind is discarded (not by
    mail: a From: line proves nothing, and must not void the check its owner's code names)."""
    if ctx.inbound.channel != "email":
        await ctx.session.execute(update(LicenceBatch).where(
            LicenceBatch.kind == kind, LicenceBatch.uploaded_by == ctx.sender, LicenceBatch.status == "dry_run")
            .values(status="discarded").execution_options(synchronize_session=False))
    batch = LicenceBatch(kind=kind, product=product, uploaded_by=ctx.sender, filename=attachment_name(ctx),
                         rows=[asdict(r) for r in rows], summary=summary, status="dry_run", created_at=ctx.now)
    ctx.session.add(batch)
    await ctx.session.flush()
    return batch


async def claim_batch(ctx: Context, kind: str, product: str | None, nothing: Refusal) -> LicenceBatch:
    """The speaker's latest fresh dry run of this kind (and product), claimed with one conditional UPDATE:
    a double click confirms once."""
    from sqlalchemy import select

    query = select(LicenceBatch).where(
        LicenceBatch.kind == kind, LicenceBatch.uploaded_by == ctx.sender, LicenceBatch.status == "dry_run",
        LicenceBatch.created_at > ctx.now - timedelta(hours=BATCH_HOURS))
    if product is not None:
        query = query.where(LicenceBatch.product == product)
    batch = await ctx.session.scalar(query.order_by(LicenceBatch.id.desc()).limit(1))
    if batch is None:
        raise nothing
    claimed = await ctx.session.execute(
        update(LicenceBatch).where(LicenceBatch.id == batch.id, LicenceBatch.status == "dry_run")
        .values(status="done").execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise nothing
    return batch


def error_file(ctx: Context, name: str, errors: list[RowError]) -> Attachment:
    """Row number, value and reason for every row not taken (CSV, formulas neutralised)."""
    lines = sorted((e.row, e.value, ctx.word(f"licences_reason.{e.reason}", row=e.other_row)) for e in errors)
    header = [ctx.word(f"groups_csv.{key}") for key in ("row", "value", "reason")]
    return Attachment(f"{name}-errors.csv", "text/csv", csv_bytes(header, lines))
