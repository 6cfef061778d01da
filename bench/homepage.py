"""Free times through the homepage API, on the default SQLite (a temp file, WAL), over loopback HTTP.

    python bench/homepage.py [--appointments 10000] [--runs 40] [--seed 7]

The practice of bench/availability.py (20 staff, 3 locations, 30 days from a Monday) with --appointments
existing appointments. A client (aiohttp, one kept-alive connection) asks the running API for the free
Massage times of one day at one location, as a homepage does, and for the same day at every location.
Baselines from the same run: the same read called directly (handlers.homepage.free_times in a unit of
work, no HTTP, no GraphQL) and GET /healthz (HTTP plus SELECT 1). The figure that counts, the median of
the one-location question, is printed last; the target is < 20 ms with 10 000 appointments.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/homepage.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bench.availability import DAYS, FIRST_DAY, LOCATIONS, NOW, STAFF, candidate_times, days_of, practice_rows  # noqa: E402
from bot.api import ApiServer, build_app  # noqa: E402
from handlers import homepage  # noqa: E402
from handlers.rules.availability import cells  # noqa: E402
from storage.db import Store  # noqa: E402
from storage.models import (  # noqa: E402
    Appointment,
    Business,
    Location,
    OpeningHours,
    Person,
    Service,
    SlotClaim,
    Staff,
    StaffHours,
    StaffService,
)

TARGET_MS = 20.0
DAY = (FIRST_DAY + timedelta(days=10)).isoformat()  # a Thursday inside the seeded range
ONE_PLACE = f'{{ freeTimes(service: "Massage", date: "{DAY}", location: "Location 2") {{ start end staff location }} }}'
EVERY_PLACE = f'{{ freeTimes(service: "Massage", date: "{DAY}") {{ start end staff location }} }}'
TABLES = {"business": Business, "location": Location, "opening_hours": OpeningHours, "service": Service,
          "person": Person, "staff": Staff, "staff_hours": StaffHours, "staff_service": StaffService}


class FixedClock:
    """The bench's moment: Monday 06:00 of the seeded range, so every seeded day lies ahead."""

    def now(self):
        return NOW


async def seed(store: Store, count: int, rng: random.Random) -> int:
    """The practice and `count` appointments drawn from full working days (live ones with their claims)."""
    drawn = rng.sample(candidate_times(rng, days_of(FIRST_DAY, DAYS), STAFF), count)
    chosen = sorted(drawn, key=lambda c: (c[1], c[0]))
    appointments, claims = [], []
    for number, (staff, start, end) in enumerate(chosen, start=1):
        status = rng.choices(["confirmed", "requested", "held", "expired", "cancelled"], [85, 4, 2, 4, 5])[0]
        appointments.append({
            "id": number, "service_id": 2, "location_id": 1 + staff % LOCATIONS, "staff_id": staff,
            "customer_id": STAFF + 1 + number % 500, "start_at": start, "end_at": end, "status": status,
            "hold_expires_at": NOW + timedelta(minutes=10) if status == "held" else None, "sequence": 0,
            "channel": "telegram", "created_by": "bench", "created_at": NOW})
        if status in ("confirmed", "requested", "held"):
            claims += [{"staff_id": staff, "cell": cell, "appointment_id": number} for cell in cells(start, end)]
    async with store.uow() as uow:
        for name, rows in practice_rows(STAFF).items():
            await uow.session.execute(insert(TABLES[name]), rows)
        await uow.session.execute(insert(Appointment), appointments)
        if claims:
            await uow.session.execute(insert(SlotClaim), claims)
        await uow.commit()
    return len({c["appointment_id"] for c in claims})


@dataclass(frozen=True)
class Timing:
    wall: float  # median milliseconds
    p90: float
    cpu: float  # median CPU milliseconds of the process (server and client): other load disturbs it less

    def __str__(self) -> str:
        return f"median {self.wall:.2f} ms (p90 {self.p90:.2f}, CPU {self.cpu:.2f})"


async def timed(run: Callable[[], Awaitable], runs: int) -> Timing:
    """Wall and CPU medians over `runs`, after three untimed warm-up runs."""
    for _ in range(3):
        await run()
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        await run()
        wall.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.process_time() - started_cpu))
    wall.sort()
    return Timing(statistics.median(wall), wall[int(0.9 * (len(wall) - 1))], statistics.median(cpu))


async def measure(store: Store, url: str, runs: int) -> None:
    async with aiohttp.ClientSession() as session:
        async def ask(query: str) -> list:
            async with session.post(f"{url}/graphql", json={"query": query}) as response:
                body = await response.json()
            assert response.status == 200 and "errors" not in body, body
            return body["data"]["freeTimes"]

        async def health() -> None:
            async with session.get(f"{url}/healthz") as response:
                assert response.status == 200

        async def direct() -> list:
            async with store.uow() as uow:
                return await homepage.free_times(uow, NOW, "Massage", DAY, "Location 2")

        found, every = await ask(ONE_PLACE), await ask(EVERY_PLACE)
        assert {t["start"] for t in found} == {t.start.isoformat() for t in await direct()}  # the same answer
        floor, read = await timed(health, runs), await timed(direct, runs)
        everywhere, one = await timed(lambda: ask(EVERY_PLACE), runs), await timed(lambda: ask(ONE_PLACE), runs)
    print(f"baseline GET /healthz (HTTP + SELECT 1): {floor}")
    print(f"baseline the same read called directly (no HTTP, no GraphQL): {read}")
    print(f"every location ({len(every)} free times): {everywhere}")
    print(f"ratios for one location: API/direct {one.wall / read.wall:.1f}x, API/healthz {one.wall / floor.wall:.1f}x")
    verdict = "met" if one.wall < TARGET_MS else "MISSED"
    print(f"free times through the API, one service, day and location ({len(found)} free times): "
          f"{one}; target < {TARGET_MS:.0f} ms: {verdict}")


async def main(appointments: int, runs: int, seed_value: int) -> None:
    with tempfile.TemporaryDirectory(prefix="frontdesk-bench-") as folder:
        store = Store.from_url(f"sqlite+aiosqlite:///{folder}/bench.db")
        try:
            await store.migrate()
            started = time.perf_counter()
            live = await seed(store, appointments, random.Random(seed_value))
            print(f"SQLite (WAL, a file in {folder}): {STAFF} staff, {LOCATIONS} locations, {appointments} "
                  f"appointments ({live} live), seeded in {time.perf_counter() - started:.2f} s")
            server = await ApiServer(build_app(store, FixedClock(), [], "en"), "127.0.0.1", 0).start()
            try:
                await measure(store, f"http://127.0.0.1:{server.port}", runs)
            finally:
                await server.close()
        finally:
            await store.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.appointments, args.runs, args.seed))
