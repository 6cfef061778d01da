"""A carrier's licence dry run through the full desk: a directory of 20 000 schools, a registration list of
1 000 of them, on a fresh database.

    python bench/licences.py [--schools 20000] [--listed 1000] [--runs 5]
                             [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

1. Baseline: reading the XLSX list alone (handlers.licences.sheets.registration_table, no child, no database),
   and the upload child alone (its start and imports are most of a small list's dry run).
2. Dry run: `licence PRODUCT` with the list attached, through Desk.handle: the list read in the upload child,
   checked, matched against the directory, eligibility per school type, credits for the schools that hold a
   single licence, the batch stored, the answer rendered, commit.

Each dry run is timed --runs times and the median printed, the figure that counts last (goal: under 2 s).
The directory is written with one bulk insert (its own `schools` import is not what is measured here).
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import secrets
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/licences.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from handlers import identity, licences, welcome  # noqa: E402
from handlers.bootstrap import ensure_owners  # noqa: E402
from handlers.context import DeskConfig  # noqa: E402
from handlers.licences.sheets import LIST_PARSER, registration_table  # noqa: E402
from handlers.members.uploads import read_upload  # noqa: E402
from handlers.messages import Attachment, Inbound  # noqa: E402
from handlers.registry import Handlers  # noqa: E402
from handlers.router import Desk  # noqa: E402
from storage.models import Business, Product, School  # noqa: E402

OWNER = "console:owner"
CARRIER = "Stadt Bench"
TYPES = ("Grundschule", "Gymnasium", "Realschule")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STEP_TIMEOUT = 120.0
open_store = importlib.import_module("bench.import").open_store  # `import` is a keyword: no from-import


def directory(schools: int, listed: int) -> list[dict]:
    """The carrier's `listed` schools (every fifth holds a single licence), the rest spread over other carriers."""
    now = datetime.now(timezone.utc)
    rows = []
    for n in range(schools):
        ours = n < listed
        single = ours and n % 5 == 0
        rows.append({"number": f"{100000 + n}", "name": f"Schule {n}", "type": TYPES[n % len(TYPES)],
                     "carrier": CARRIER if ours else f"Kreis {n % 400}", "email": f"schule{n}@bench.example",
                     "single_product": "Mathe" if single else None,
                     "single_until": date(2027, 9, 30) if single else None,
                     "single_paid_cents": 12000 if single else None, "updated_at": now})
    return rows


def registration_list(listed: int) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(("Schulnummer", "Schulname", "Ansprechpartner", "E-Mail"))
    for n in range(listed):
        book.active.append((f"{100000 + n}", f"Schule {n}", f"Kontakt {n}", f"kontakt{n}@bench.example"))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def prepare(store, schools: int, listed: int) -> Desk:
    async with store.uow() as uow:
        now = datetime.now(timezone.utc)
        await ensure_owners(uow, [OWNER], now)
        uow.session.add(Business(id=1, name="Bench Verlag", timezone="Europe/Berlin", language="en",
                                 address="Hauptstraße 1, 10115 Berlin", tax_id="DE123456789", vat_percent="19",
                                 iban="DE89370400440532013000", bic="COBADEFFXXX"))
        uow.session.add(Product(name="Mathe", price_per_school="80.00", single_price="120.00", term_months=12,
                                renewal_notice_days=42, invoice_after_days=7))
        await uow.session.execute(insert(School), directory(schools, listed))
        await uow.commit()
    config = DeskConfig(secret_key=secrets.token_bytes(32), default_language="en")
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), licences.handlers()))


async def dry_run(desk: Desk, data: bytes, listed: int) -> float:
    """One `licence Mathe` with the list: the seconds it took; the answer is checked."""
    inbound = Inbound(channel="console", sender=OWNER, received_at=datetime.now(timezone.utc), text="licence Mathe",
                      attachments=(Attachment("anmeldung.xlsx", XLSX, data),), language_hint="en")
    started = time.perf_counter()
    [reply] = await asyncio.wait_for(desk.handle(inbound), STEP_TIMEOUT)
    seconds = time.perf_counter() - started
    wanted = f"Yearly total: {listed} × €80.00"
    if wanted not in reply.text or "not eligible" in reply.text:
        raise SystemExit(f"the dry run answered {reply.text[:400]!r}, expected {wanted!r}")
    return seconds


async def main(schools: int, listed: int, runs: int, url: str | None) -> None:
    if listed > schools:
        raise SystemExit("--listed cannot be more than --schools")
    data = registration_list(listed)
    parse = []
    for _ in range(runs):
        started = time.perf_counter()
        registration_table("anmeldung.xlsx", XLSX, data)
        parse.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as folder:
        store, cleanup = await open_store(url, folder)
        try:
            desk = await prepare(store, schools, listed)
            times = [await dry_run(desk, data, listed) for _ in range(runs)]
            child = []
            for _ in range(runs):
                started = time.perf_counter()
                await read_upload(Attachment("anmeldung.xlsx", XLSX, data), LIST_PARSER, [])
                child.append(time.perf_counter() - started)
        finally:
            await cleanup()
    median, baseline = statistics.median(times), statistics.median(parse)
    print(f"database: {store.dialect}, directory: {schools} schools, list: {listed} schools, runs: {runs}")
    print(f"baseline reading the list only: {baseline:.3f} s")
    print(f"the upload child alone (start, imports, reading): {statistics.median(child):.3f} s")
    print(f"ratio dry run/reading: {median / baseline:.2f}")
    print(f"median dry run (desk, commit): {median:.3f} s  goal < 2 s: {'ok' if median < 2 else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=20_000)
    parser.add_argument("--listed", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; SQLite in a temporary folder if unset")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.schools, arguments.listed, arguments.runs, arguments.database_url))
