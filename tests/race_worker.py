"""A separate OS process for the double-booking race: its own Store on the same database URL.

    python -m tests.race_worker SPEC.json

SPEC.json: {"url": …, "staff": 1, "service": 1, "customer": 2, "now": ISO, "attempts": [[ISO start, minutes], …],
            "tasks": 4, "name": "a", "ready": PATH, "go": PATH}

Once released at the barrier (tests/processes.py), it claims every
attempt as a new confirmed appointment, each in its own unit of work, `tasks` at a time. It prints
{"won": [appointment ids], "taken": N, "errors": [...]} as JSON on stdout.
"""
from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from handlers.appointments import SlotTaken, claim
from storage.db import Store
from storage.models import Appointment
from tests.processes import at_the_barrier


async def attempt(store: Store, spec: dict, start: datetime, minutes: int) -> int | None:
    """One booking attempt in its own unit of work: the appointment id if it won, None if the slot was taken."""
    now = datetime.fromisoformat(spec["now"])
    async with store.uow() as uow:
        row = Appointment(service_id=spec["service"], location_id=None, staff_id=spec["staff"],
                          customer_id=spec["customer"], start_at=start, end_at=start + timedelta(minutes=minutes),
                          status="confirmed", hold_expires_at=None, sequence=0, channel="console",
                          created_by=f"race worker {spec['name']}", created_at=now)
        try:
            await claim(uow, row, now)
        except SlotTaken:
            return None
        await uow.commit()
        return row.id


async def main(spec: dict) -> dict:
    store = Store.from_url(spec["url"])
    queue: asyncio.Queue = asyncio.Queue()
    for start, minutes in spec["attempts"]:
        queue.put_nowait((datetime.fromisoformat(start), minutes))
    result = {"won": [], "taken": 0, "errors": []}

    async def drain() -> None:
        while not queue.empty():
            start, minutes = queue.get_nowait()
            try:
                won = await attempt(store, spec, start, minutes)
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on any
                result["errors"].append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            if won is None:
                result["taken"] += 1
            else:
                result["won"].append(won)

    await at_the_barrier(store, spec, asyncio.gather(*(drain() for _ in range(spec["tasks"]))))
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))))
