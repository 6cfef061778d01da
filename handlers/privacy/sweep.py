"""The last step of erasing a person: every text column of every table searched for what named them.

What `forget` removes on purpose (addresses, notes, message texts) goes first, table by table. What is
left are traces in other rows: "Kim Ott" in a staff member's notice, `telegram:1001` as an audit actor
or as whoever created a closure, an email in an import's rows. Each is replaced by the pseudonym. A LIKE
finds the candidate rows (in text, and in JSON as it is stored, with non-ASCII letters escaped); Python
then replaces each trace where it stands alone (rules.Traces.pattern), so "Kim Otto" keeps his name.

Outbox rows still waiting for delivery are left alone: a cancellation notice must reach the person and
the staff as written. The scrub job (handlers/privacy/erase.py) empties them once they went out.

Files of delivered mails are stored base64-encoded, where no LIKE finds a name, and a file that names the
person is dropped from its mail whole, since the rest of its row (a phone number beside the pseudonym)
would still tell who it was. A file we made records whom it names (`names`, person ids: an invoice's PDF
and XML name the buyer, a week picture the staff of its lanes and the customers of its blocks; see
handlers.messages.Attachment): it is dropped when the person is among them, and never decoded, so a PDF or
a PNG, which no text search could read, goes as well. A file without that record (one from before it, a
text file such as an export, an invitation or a file someone sent) is decoded and its text searched, an
XLSX or another zip part by part; a file that is neither text nor zipped text and records nobody (a
picture someone sent) cannot be searched and stays. Only delivered rows with files are read.
"""
from __future__ import annotations

import base64
import binascii
import html
import io
import re
import zipfile
from typing import Any

from sqlalchemy import JSON, String, Table, Text, and_, cast, or_, select, update

from handlers.context import table as table_of
from handlers.customers import like_pattern
from handlers.messages import recorded_names
from handlers.privacy.rules import Traces, replace_traces
from storage.db import UnitOfWork
from storage.models import Base, Outbox

MAX_PART = 50 * 1024 * 1024  # a zipped part larger than this is not unpacked to be read

# Columns never searched, each with its reason: other people's own names and addresses (the erased
# person's rows there are deleted or replaced directly), the business's catalog, and secrets.
UNSEARCHED: dict[tuple[str, str], str] = {
    ("person", "name"): "other people's names; the erased person's own becomes the pseudonym directly",
    ("address", "address"): "other people's addresses; the erased person's are deleted",
    ("member", "first_name"): "other members' names; the erased member's are cleared",
    ("member", "last_name"): "other members' names; the erased member's are cleared",
    ("business", "name"): "the business's own name",
    ("location", "name"): "the catalog",
    ("service", "name"): "the catalog",
    ("customer_group", "name"): "group names are the business's catalog",
    ("customer_group", "name_key"): "the key of a group name",
    ("seat_group", "name"): "group names are the business's catalog",
    ("seat_group", "name_key"): "the key of a group name",
    ("installation", "key"): "a random id",
    ("code", "digest"): "an HMAC",
    ("credential", "digest"): "a password hash",
    ("member", "invitation_token"): "an HMAC",
}


def searched_columns() -> list[tuple[Table, str]]:
    """Every text and JSON column of every table, but primary keys and the unsearched ones."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.primary_key or (table.name, column.name) in UNSEARCHED:
                continue
            if isinstance(column.type, String | JSON):
                found.append((table, column.name))
    return found


async def sweep(uow: UnitOfWork, person_id: int, traces: Traces, replacement: str) -> int:
    """Replace every trace of the person in every searched column, and drop the delivered files that name
    them; how many rows changed."""
    pattern = traces.pattern()
    if pattern is None:
        return await drop_files(uow, person_id, None)
    needles = traces.like_needles()
    changed = 0
    for table, name in searched_columns():
        column = table.c[name]
        text = cast(column, Text) if isinstance(column.type, JSON) else column
        found = or_(*(text.ilike(like_pattern(needle), escape="\\") for needle in needles))
        if table.name == "outbox":
            found = and_(found, table.c.status != "pending")  # delivered first, emptied by the scrub job
        keys = list(table.primary_key.columns)
        for row in (await uow.session.execute(select(*keys, column).where(found))).all():
            value: Any = row[-1]
            new = replace_traces(value, pattern, replacement)
            if new != value:
                where = and_(*(key == row[i] for i, key in enumerate(keys)))
                await uow.session.execute(update(table).where(where).values({name: new}))
                changed += 1
    return changed + await drop_files(uow, person_id, pattern)


async def drop_files(uow: UnitOfWork, person_id: int, pattern: re.Pattern[str] | None) -> int:
    """Drop the files of delivered mails that name the person; how many mails lost a file."""
    outbox = table_of(Outbox)
    stored = cast(outbox.c.attachments, Text)
    changed = 0
    for number, files in (await uow.session.execute(
            select(outbox.c.id, outbox.c.attachments)
            .where(outbox.c.status != "pending", stored.not_in(["[]", "null"])))).all():
        kept = [file for file in files or [] if not names_person(file, person_id, pattern)]
        if len(kept) != len(files or []):
            await uow.session.execute(update(outbox).where(outbox.c.id == number).values(attachments=kept))
            changed += 1
    return changed


def names_person(file: Any, person_id: int, pattern: re.Pattern[str] | None) -> bool:
    """Whether a stored file names the person: by its record of whom it names if it has one (nothing is
    decoded), else by a trace in its text."""
    if not isinstance(file, dict):
        return False
    recorded = recorded_names(file)
    if recorded is not None:
        return person_id in recorded
    return pattern is not None and names(file, pattern)


def names(file: dict[str, Any], pattern: re.Pattern[str]) -> bool:
    """Whether a stored file's text (or the text of any part of a zipped file) holds a trace."""
    try:
        data = base64.b64decode(file.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        return False
    parts = [data]
    if zipfile.is_zipfile(io.BytesIO(data)):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                parts = [archive.read(info) for info in archive.infolist() if info.file_size < MAX_PART]
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
            return False
    return any(pattern.search(html.unescape(part.decode("utf-8", "replace"))) for part in parts)
