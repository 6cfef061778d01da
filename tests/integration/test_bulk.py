"""storage.bulk.insert_rows stores what Core insert() stores, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, text

from storage.bulk import insert_rows
from storage.models import Outbox

NOW = datetime(2026, 3, 29, 0, 30, tzinfo=timezone.utc)
COLUMNS = [c for c in Outbox.__table__.columns if c.key != "id"]


def mails(prefix: str) -> list[dict]:
    """Rows that share their times and status and differ in headers, as an import's mails do."""
    vienna = NOW.astimezone(ZoneInfo("Europe/Vienna"))  # the same instant in another zone is stored as UTC too
    return [{"channel": "email", "recipient": f"{prefix}{i}@example.com", "subject": "Ü", "text": "t",
             "html": None, "message_id": f"<{i}@x>", "headers": {"Message-ID": f"<{i}@x>"}, "attachments": [],
             "next_attempt_at": vienna if i % 2 else NOW, "created_at": NOW + timedelta(minutes=i % 3)}
            for i in range(5)]


async def stored(store, prefix: str) -> list[tuple]:
    """The rows of one prefix in insertion order, without id and recipient."""
    async with store.uow() as uow:
        rows = await uow.session.execute(select(*COLUMNS).where(Outbox.recipient.startswith(prefix))
                                         .order_by(Outbox.id))
        return [tuple(v for c, v in zip(COLUMNS, row) if c.key != "recipient") for row in rows]


async def test_rows_read_back_as_core_inserts_them_defaults_included(store):
    async with store.uow() as uow:
        await insert_rows(uow.session, Outbox.__table__, mails("bulk"))
        await uow.session.execute(insert(Outbox.__table__), mails("core"))
        await uow.commit()
    ours, theirs = await stored(store, "bulk"), await stored(store, "core")
    assert len(ours) == 5 and ours == theirs
    keys = [c.key for c in COLUMNS if c.key != "recipient"]
    first = dict(zip(keys, ours[1]))
    assert first["choices"] == [] and first["status"] == "pending" and first["attempts"] == 0  # Python defaults
    assert first["next_attempt_at"] == NOW and first["headers"] == {"Message-ID": "<1@x>"}


async def test_a_clash_rolls_back_like_any_insert(store):
    async with store.uow() as uow:
        await insert_rows(uow.session, Outbox.__table__, mails("a"))
        await uow.commit()
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        async with store.uow() as uow:
            ids = (await uow.session.scalars(select(Outbox.id))).all()
            await insert_rows(uow.session, Outbox.__table__, [{**mails("b")[0], "id": ids[0]}])
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Outbox)) == 5


async def test_a_sql_default_is_refused(store):
    table = Table("bulk_probe", MetaData(), Column("a", Integer), Column("b", Integer, default=text("1")))
    async with store.uow() as uow:
        with pytest.raises(ValueError, match="SQL default"):
            await insert_rows(uow.session, table, [{"a": 1}])
