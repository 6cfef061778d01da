"""The week as a picture: drawing the PNG of 5 staff with 300 appointments.

    python bench/week.py [--appointments 300] [--staff 5] [--runs 20] [--seed 7] [--out week.png]

The week is plain data, as `week` hands it to the drawer: 5 lanes (one per staff member), Monday to
Saturday 08:00-19:00 filled back to back with 15- to 60-minute appointments in four service colours
(some held, some requested), a vacation day, a pause and a public holiday. Each run draws the whole
PNG from that data, as the thread after the transaction does (render_week: layout, blocks, text,
encoding), and the figure is the median wall clock over --runs, target < 150 ms. The process's CPU
time is printed too (other load on a shared machine disturbs it less), and a baseline from the same
run: encoding an empty picture of the same size, the floor no drawing can go below.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/week.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from handlers.pictures import ink  # noqa: E402
from handlers.pictures.week import (  # noqa: E402
    CONFIRMED,
    HELD,
    HOLIDAY,
    REQUESTED,
    Block,
    Legend,
    Shade,
    WeekPicture,
    layout,
    render_week,
)

TARGET_MS = 150.0
SERVICES = [("#2e86de", "Massage"), ("#10ac84", "Heilgymnastik"), ("#f368e0", "Erstberatung"),
            ("#ff9f43", "Lymphdrainage")]
LENGTHS, GAPS = [15, 30, 45, 45, 60], [0, 0, 0, 15, 30]
NAMES = ["Anna Berger", "Lukas Huber", "Maria Sommer", "Tobias Klein", "Zeynep Yıldız", "Jonas Weber",
         "Lea Fuchs", "Paul Bauer"]
DAYS = ("Mo. 7.12.", "Di. 8.12.", "Mi. 9.12.", "Do. 10.12.", "Fr. 11.12.", "Sa. 12.12.", "So. 13.12.")
FIRST, LAST = 8 * 60, 19 * 60


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def blocks(rng: random.Random, staff: int, wanted: int) -> list[Block]:
    """`wanted` appointments, spread over the lanes and Monday to Saturday, none overlapping in a lane."""
    free = [(day, lane) for day in range(6) for lane in range(staff) if (day, lane) != (2, 1)]  # a vacation
    cursor = {slot: FIRST + rng.choice(GAPS) for slot in free}
    made: list[Block] = []
    while len(made) < wanted and free:
        slot = rng.choice(free)
        start, length = cursor[slot], rng.choice(LENGTHS)
        if start + length > LAST:
            free.remove(slot)
            continue
        colour, service = rng.choice(SERVICES)
        state = rng.choices([CONFIRMED, HELD, REQUESTED], weights=[8, 1, 1])[0]
        made.append(Block(slot[0], slot[1], start, start + length, colour, f"{hhmm(start)}–{hhmm(start + length)}",
                          service, f"Kundin {len(made) + 1:03d} Muster", state))
        cursor[slot] = start + length + rng.choice(GAPS)
    if len(made) < wanted:
        sys.exit(f"{wanted} appointments do not fit {staff} lanes of 6 days from 08:00 to 19:00")
    return made


def the_week(appointments: int, staff: int, seed: int) -> WeekPicture:
    rng = random.Random(seed)
    shades = (Shade(2, 0, 1440, "Urlaub", 1), Shade(1, 12 * 60, 13 * 60, "Pause", 0),
              Shade(6, 0, 1440, "Mariä Empfängnis", None, HOLIDAY))
    return WeekPicture("Kalender · KW 50 · 7. Dez. – 13. Dez. 2026", DAYS, tuple(NAMES[:staff]), 8, 19,
                       tuple(blocks(rng, staff, appointments)), shades,
                       Legend("reserviert, wartet auf den Code", "Anfrage, wartet auf Antwort", "geschlossen",
                              tuple(SERVICES)), (5, 6))


def timed(draw, runs: int) -> tuple[float, float, bytes]:
    """Median wall clock and CPU milliseconds of `draw()` over `runs`, and one result."""
    walls, cpus, out = [], [], b""
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        out = draw()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=300)
    parser.add_argument("--staff", type=int, default=5, choices=range(1, len(NAMES) + 1))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="save one picture here, to look at")
    args = parser.parse_args()
    week = the_week(args.appointments, args.staff, args.seed)
    render_week(week)  # loads the fonts once, as a running desk has them loaded
    box = layout(week)
    empty = ink.Canvas(box.width, box.height)
    base_wall, base_cpu, _ = timed(empty.png, args.runs)
    wall, cpu, png = timed(lambda: render_week(week), args.runs)
    if args.out:
        args.out.write_bytes(png)
    print(f"week of {args.staff} staff, {len(week.blocks)} appointments: {box.width}x{box.height} px, "
          f"{len(png) / 1024:.0f} KiB PNG, runs: {args.runs} (medians)")
    print(f"baseline, encoding an empty picture: {base_wall:.1f} ms (cpu {base_cpu:.1f} ms)")
    print(f"drawing the week: cpu {cpu:.1f} ms; ratio drawing/encoding-empty: {wall / base_wall:.2f}")
    print(f"target < {TARGET_MS:.0f} ms: {'ok' if wall < TARGET_MS else 'MISSED'}")
    print(f"median ms per week picture: {wall:.1f}")


if __name__ == "__main__":
    main()
