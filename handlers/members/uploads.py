"""Reading an uploaded member list in a child process, before the message's unit of work begins.

A workbook is hostile until read: a 146 KB XLSX can declare millions of shared strings and keep a
parser busy for a minute. So the declared sizes are checked first (imports.check_zip), and the parse
runs in a child process with a time limit and a memory limit, never on the event loop and never
inside an open transaction: the desk calls `prepare` before it opens the unit of work, and the
handler finds the result in `inbound.prepared`.

By email nothing is read before the round trip: the upload is kept unread, and only the mail that
brings its code back has it read (here, before that mail's transaction).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from handlers.members.child import (  # noqa: F401 - the child's side, re-exported for the callers
    MEMBER_PARSER,
    PARSE_MEMORY,
    PARSE_SECONDS,
    from_json,
    member_list,
    refused_json,
    refused_of,
    to_json,
)
from handlers.members.imports import MAX_FILE_BYTES, Checked, FileRefused
from handlers.messages import Attachment, Inbound
from handlers.router import split_command
from handlers.rules import codes
from handlers.rules.profile import region_for
from storage.models import Business, Code, ImportBatch

IMPORT_UPLOAD = "import_upload"  # code purpose: an emailed list is read when this code comes back
UPLOAD_KEY = "import"  # inbound.prepared key of the list attached to this message
ROOT = Path(__file__).resolve().parents[2]
CHILD = "handlers.members.child"  # the child's entry: light, it imports no storage
IMPORT_SUFFIXES = (".csv", ".txt", ".xlsx", ".xlsm", ".xls")


def batch_key(batch_id: int) -> str:
    """inbound.prepared key of an emailed list read after its round trip."""
    return f"upload:{batch_id}"


# ---- the parent side ------------------------------------------------------------------------------

async def read_list(attachment: Attachment, region: str, seconds: float = PARSE_SECONDS,
                    memory: int = PARSE_MEMORY) -> Checked | FileRefused:
    """Parse a member list in a child process; a refusal (also: too slow, too much memory) is returned."""
    return from_json(await read_upload(attachment, MEMBER_PARSER, [region], seconds, memory))


async def read_upload(attachment: Attachment, parser: str, extra: list[str], seconds: float = PARSE_SECONDS,
                      memory: int = PARSE_MEMORY) -> dict:
    """Run `parser` ("module:function", called as function(name, mime, data, *extra) -> JSON-able dict) on
    an upload in a child process with a time and a memory limit; a refusal comes back as {"refused": …}."""
    if len(attachment.data) > MAX_FILE_BYTES:  # refused before it is even handed over
        return refused_json(FileRefused("too_big", size=len(attachment.data), limit=MAX_FILE_BYTES))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", CHILD, (attachment.name or "")[:255], (attachment.mime or "")[:255],
        parser, str(seconds), str(memory), *extra, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env)
    try:
        out, _ = await asyncio.wait_for(child.communicate(attachment.data), seconds)
    except TimeoutError:  # asyncio.TimeoutError is this one since Python 3.11
        child.kill()
        await child.wait()
        return refused_json(FileRefused("too_slow", seconds=int(seconds)))
    if child.returncode != 0 or not out:  # killed by its own limits (CPU time, memory)
        return refused_json(FileRefused("too_complex", limit=memory))
    return json.loads(out)


async def business_region(desk) -> str:
    """The region a number without a country code belongs to (a short read of its own), as ctx.tz has it."""
    async with desk.store.uow() as uow:
        zone = await uow.session.scalar(select(Business.timezone).where(Business.id == 1))
    return region_for(zone or desk.config.default_timezone)


def pick_attachment(attachments) -> Attachment | None:
    """The member list among the attachments (a mail may also carry a logo or a signature)."""
    for attachment in attachments:
        if (attachment.name or "").lower().endswith(IMPORT_SUFFIXES) or "csv" in attachment.mime \
                or "spreadsheet" in attachment.mime or "excel" in attachment.mime:
            return attachment
    return attachments[0] if len(attachments) == 1 else None


def import_preparer(import_word, seconds: float = PARSE_SECONDS, memory: int = PARSE_MEMORY):
    """What the desk runs before the unit of work of a message that brings a member list (or its code);
    `import_word(desk, text)` says whether a message's text is the import word."""

    async def prepare(desk, inbound: Inbound) -> Inbound:
        if inbound.channel == "email":
            return await prepare_returned_code(desk, inbound, seconds, memory)
        attachment = pick_attachment(inbound.attachments) if import_word(desk, inbound.text) else None
        if attachment is None:
            return inbound
        result = await read_list(attachment, await business_region(desk), seconds, memory)
        return replace(inbound, prepared={**inbound.prepared, UPLOAD_KEY: result})

    return prepare


async def prepare_returned_code(desk, inbound: Inbound, seconds: float, memory: int) -> Inbound:
    """A mail that brings back the code of an emailed list: read that list now (the code is checked here
    too, so a mail without the right code has nothing read)."""
    typed = returned_code(desk, inbound.text)
    if typed is None:
        return inbound
    async with desk.store.uow() as uow:
        now = desk.clock.now()
        pending = (await uow.session.scalars(select(Code).where(
            Code.address == inbound.sender, Code.purpose == IMPORT_UPLOAD, Code.used_at.is_(None),
            Code.expires_at > now, Code.attempts < desk.config.code_max_attempts))).all()
        row = next((r for r in pending if codes.matches(desk.config.secret_key, r.purpose, r.target, typed, r.digest)),
                   None)
        batch = await uow.session.get(ImportBatch, int(row.target.split(":", 1)[1])) if row else None
    if batch is None or batch.upload is None:
        return inbound
    result = await read_list(Attachment(batch.filename, "", batch.upload), await business_region(desk), seconds, memory)
    return replace(inbound, prepared={**inbound.prepared, batch_key(batch.id): result})


def returned_code(desk, text: str) -> str | None:
    """The six digits of a bare code or of `confirm CODE`, else None."""
    text = (text or "").strip()
    if codes.CODE_PATTERN.match(text):
        return text
    word, args = split_command(text)
    command = desk.words.get(word)
    typed = args.replace(" ", "")
    return typed if command is not None and command.word == "confirm" and codes.CODE_PATTERN.match(typed) else None
