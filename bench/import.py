"""Bulk import and seat races through the full desk, on a fresh database.

    python bench/import.py [--rows 10000] [--runs 3]
                           [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

1. Baseline: reading and checking the CSV alone (handlers.members.imports.parse_import, no database).
2. Dry run: `import GROUP` with the CSV attached, through Desk.handle: parse, compare with the
   database, store the batch, build the error file, commit.
3. Import: `import GROUP confirm`: persons, addresses, memberships, member rows, codes and one
   invitation mail per member, all in one transaction (Core bulk inserts). Target: < 2 s each on SQLite.
4. Race: 50 tasks enrol at once for the last 10 seats of a group; exactly 10 may win.

Each timed step runs --runs times on its own group and the median is printed, then the ratios
to the baseline (the machines are shared and noisy: compare ratios, not seconds). Everything is
loopback: a temporary SQLite file, or a throwaway schema on the given PostgreSQL server.
"""
from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/import.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from handlers import identity, members, welcome  # noqa: E402
from handlers.bootstrap import ensure_owners  # noqa: E402
from handlers.context import DeskConfig  # noqa: E402
from handlers.members.imports import parse_import  # noqa: E402
from handlers.messages import Attachment, Inbound  # noqa: E402
from handlers.registry import Handlers  # noqa: E402
from handlers.router import Desk  # noqa: E402
from storage.db import Store  # noqa: E402
from storage.models import Address, BillingAddress, Business, Membership, Outbox, SeatGroup, Service  # noqa: E402

OWNER = "console:owner"
RACERS = 50
LAST_SEATS = 10
STEP_TIMEOUT = 120.0  # seconds per step: a broken run stops instead of hanging


def member_csv(rows: int) -> bytes:
    """A German Excel export: cp1252, ';', umlauts, and a phone number on every other row."""
    lines = ["Vorname;Nachname;E-Mail;Telefon"]
    for i in range(rows):
        phone = f"+49 30 {1_000_000 + i}" if i % 2 else ""
        lines.append(f"Jürgen{i};Müller;member{i}@example.com;{phone}")
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def message(text: str, attachment: Attachment | None = None, sender: str = OWNER) -> Inbound:
    return Inbound(channel="console", sender=sender, received_at=datetime.now(timezone.utc), text=text,
                   attachments=(attachment,) if attachment else (), language_hint="en")


async def open_store(url: str | None, folder: str) -> tuple[Store, object]:
    """A migrated store on a new SQLite file, or on a new schema of the PostgreSQL server."""
    if url is None:
        store = Store.from_url(f"sqlite+aiosqlite:///{folder}/bench.db")
        await store.migrate()
        return store, store.dispose
    import asyncpg

    schema, parsed = f"bench_{secrets.token_hex(4)}", make_url(url)
    conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                 database=parsed.database)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    store = Store.from_url(url + ("&" if "?" in url else "?") + f"search_path={schema}")
    await store.migrate()

    async def cleanup():
        await store.dispose()
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()

    return store, cleanup


async def prepare(store: Store) -> Desk:
    async with store.uow() as uow:
        now = datetime.now(timezone.utc)
        await ensure_owners(uow, [OWNER], now)
        owner = await uow.session.scalar(select(Address.person_id).where(Address.address == OWNER))
        uow.session.add(BillingAddress(person_id=owner, name="Bench Owner", address="Hauptstraße 2, 10115 Berlin",
                                       updated_at=now))  # an invoice over 250 € names its buyer
        uow.session.add(Service(name="First Aid", minutes=480, price="49.90", kind="course"))
        # Seats are invoiced: the business needs what an invoice must show.
        uow.session.add(Business(id=1, name="Bench Academy", timezone="Europe/Berlin", language="en",
                                 address="Hauptstraße 1, 10115 Berlin", tax_id="DE123456789", vat_percent="0",
                                 iban="DE89370400440532013000", bic="COBADEFFXXX"))
        await uow.commit()
    config = DeskConfig(secret_key=secrets.token_bytes(32), default_language="en")
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), members.group_handlers()))


async def timed(coro) -> tuple[float, object]:
    started = time.perf_counter()
    result = await asyncio.wait_for(coro, STEP_TIMEOUT)
    return time.perf_counter() - started, result


async def expect(desk: Desk, text: str, wanted: str, attachment: Attachment | None = None) -> float:
    """Send one message, check the answer, return the seconds it took."""
    seconds, replies = await timed(desk.handle(message(text, attachment)))
    if wanted not in replies[0].text:
        raise SystemExit(f"{text!r} answered {replies[0].text[:300]!r}, expected {wanted!r}")
    return seconds


async def import_run(desk: Desk, run: int, data: bytes, rows: int) -> tuple[float, float]:
    """One group, one dry run, one import: (dry run seconds, import seconds)."""
    name = f"Bench {run}"
    await expect(desk, f'group new "{name}" {rows} group', "Done")
    attachment = Attachment("members.csv", "text/csv", data)
    dry = await expect(desk, f'import "{name}"', f"{rows:,} new members".replace(",", ""), attachment)
    done = await expect(desk, f'import "{name}" confirm', f"Imported {rows} members")
    return dry, done


async def race(desk: Desk, store: Store) -> tuple[int, int, int]:
    """50 enrolments at once for the last 10 seats: (winners, seats taken, seats bought)."""
    await expect(desk, f'group new Race {LAST_SEATS + 2} group', "Done")
    for i in range(2):
        await expect(desk, f"enroll Race Early{i} early{i}@example.com", "is enrolled")
    replies = await asyncio.wait_for(asyncio.gather(*(
        desk.handle(message(f"enroll Race Racer{i} racer{i}@example.com")) for i in range(RACERS))), STEP_TIMEOUT)
    winners = sum("is enrolled" in r[0].text for r in replies)
    async with store.uow() as uow:
        group = await uow.session.scalar(select(SeatGroup).where(SeatGroup.name == "Race"))
        held = await uow.session.scalar(select(func.count()).select_from(Membership)
                                        .where(Membership.group_id == group.id))
    if held != group.seats_taken:
        raise SystemExit(f"memberships {held} != seats taken {group.seats_taken}")
    return winners, group.seats_taken, group.seats_bought


def baseline(data: bytes, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        parse_import("members.csv", "text/csv", data)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main(rows: int, runs: int, url: str | None) -> None:
    data = member_csv(rows)
    with tempfile.TemporaryDirectory() as folder:
        store, cleanup = await open_store(url, folder)
        try:
            desk = await prepare(store)
            parse = baseline(data, runs)
            results = [await import_run(desk, run, data, rows) for run in range(runs)]
            winners, taken, bought = await race(desk, store)
            async with store.uow() as uow:
                mails = await uow.session.scalar(select(func.count()).select_from(Outbox))
        finally:
            await cleanup()
    dry, done = statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)
    print(f"database: {store.dialect}, rows: {rows}, runs: {runs} (medians)")
    print(f"baseline parse+check only: {parse:.3f} s ({rows / parse:,.0f} rows/s)")
    print(f"dry run (desk, commit):    {dry:.3f} s  target < 2 s: {'ok' if dry < 2 else 'MISSED'}")
    print(f"import (desk, commit):     {done:.3f} s  target < 2 s: {'ok' if done < 2 else 'MISSED'}"
          f"  ({rows / done:,.0f} members/s, {mails} mails queued in all)")
    print(f"race: {RACERS} tasks for the last {LAST_SEATS} seats: {winners} won, seats {taken}/{bought}"
          f" {'ok' if winners == LAST_SEATS and taken == bought else 'WRONG'}")
    print(f"ratio dry run/parse: {dry / parse:.2f}")
    print(f"ratio import/parse: {done / parse:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; SQLite in a temporary folder if unset")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows, arguments.runs, arguments.database_url))
