"""The week calendar as plain data, its geometry, and the PNG drawn from it.

One column per day, hours down the side, one lane per staff member in every column. Appointments are
blocks in their service's colour with time, service and customer; a held one carries a lock, a request
is pale with a dashed outline; closures and holidays are hatched spans with their label.
"""
from __future__ import annotations

from dataclasses import dataclass

from handlers.pictures import ink

CONFIRMED, HELD, REQUESTED = "confirmed", "held", "requested"
CLOSURE, HOLIDAY = "closure", "holiday"

# Geometry in pixels. A single calendar is about 1270 px wide, which Telegram shows without scaling it
# down; several lanes grow up to MAX_WIDTH, Telegram's largest photo size, before lanes stop narrowing.
MARGIN, AXIS, TITLE, DAY_HEAD, LANE_HEAD, HOUR, GAP, LEGEND = 16, 60, 48, 40, 26, 84, 12, 40
MIN_LANE, MAX_LANE, MAX_WIDTH = 64, 168, 2560
WIDE_LANE = 120  # from here on, block text is set in the larger size


@dataclass(frozen=True)
class Block:
    """An appointment: where it stands (day and lane indexes, local minutes) and what it says."""

    day: int
    lane: int
    start: int  # minutes after local midnight
    end: int
    colour: str  # '#rrggbb'
    time: str  # e.g. '09:00–10:00'
    title: str  # the service
    detail: str  # the customer
    state: str = CONFIRMED  # confirmed | held | requested


@dataclass(frozen=True)
class Shade:
    """Time nobody books: a closure (sick, vacation, pause, the whole business) or a public holiday."""

    day: int
    start: int
    end: int
    label: str
    lane: int | None = None  # None: every lane of the day
    kind: str = CLOSURE  # closure | holiday


@dataclass(frozen=True)
class Legend:
    """The words under the calendar: the services shown, and what a lock, a dashed box and hatching mean."""

    held: str
    requested: str
    closed: str
    services: tuple[tuple[str, str], ...] = ()  # (colour, name)


@dataclass(frozen=True)
class WeekPicture:
    """A week to draw: its title, a heading per day, a name per lane, the hours shown and what stands in them."""

    title: str
    days: tuple[str, ...]  # column headings
    lanes: tuple[str, ...]  # staff names, one lane each
    first_hour: int
    last_hour: int  # the grid ends at this hour (24: midnight)
    blocks: tuple[Block, ...] = ()
    shades: tuple[Shade, ...] = ()
    legend: Legend | None = None
    quiet_days: tuple[int, ...] = ()  # weekend columns, tinted


# ---- geometry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where everything goes: one lane is `lane_width` wide, one hour HOUR high."""

    days: int
    lanes: int
    first_hour: int
    last_hour: int
    lane_width: int

    @property
    def left(self) -> int:
        return MARGIN + AXIS

    @property
    def top(self) -> int:
        return MARGIN + TITLE + DAY_HEAD + (LANE_HEAD if self.lanes > 1 else 0)

    @property
    def bottom(self) -> int:
        return self.top + (self.last_hour - self.first_hour) * HOUR

    @property
    def day_width(self) -> int:
        return self.lanes * self.lane_width

    @property
    def width(self) -> int:
        return self.left + self.days * self.day_width + MARGIN

    @property
    def height(self) -> int:
        return self.bottom + GAP + LEGEND + MARGIN

    def x(self, day: int, lane: int = 0) -> int:
        """The left edge of a lane."""
        return self.left + day * self.day_width + lane * self.lane_width

    def y(self, minute: int) -> int:
        """The height of a local time, clipped to the hours shown."""
        minute = min(max(minute, self.first_hour * 60), self.last_hour * 60)
        return self.top + (minute - self.first_hour * 60) * HOUR // 60

    def span(self, day: int, lane: int | None, start: int, end: int) -> tuple[int, int, int, int]:
        """The box of a time span in one lane, or across the day (lane None)."""
        x0 = self.x(day, lane or 0)
        x1 = x0 + (self.lane_width if lane is not None else self.day_width)
        return x0, self.y(start), x1, self.y(end)


def layout(picture: WeekPicture) -> Layout:
    """Lanes as wide as fits MAX_WIDTH, between MIN_LANE and MAX_LANE."""
    lanes, days = max(len(picture.lanes), 1), max(len(picture.days), 1)
    room = (MAX_WIDTH - 2 * MARGIN - AXIS) // (days * lanes)
    first = min(max(picture.first_hour, 0), 23)
    return Layout(days, lanes, first, min(max(picture.last_hour, first + 1), 24), min(max(room, MIN_LANE), MAX_LANE))


# ---- drawing -------------------------------------------------------------------------------------


def render_week(picture: WeekPicture) -> bytes:
    """The week as PNG bytes. Pure and CPU-bound: call it in a thread, never inside a transaction."""
    box = layout(picture)
    canvas = ink.Canvas(box.width, box.height)
    for day in picture.quiet_days:
        if 0 <= day < box.days:
            canvas.draw.rectangle((box.x(day), box.top, box.x(day + 1) - 1, box.bottom), fill=ink.QUIET)
    for shade in picture.shades:
        paint_shade(canvas, box, shade)
    paint_grid(canvas, box)
    for block in picture.blocks:
        if 0 <= block.day < box.days and 0 <= block.lane < box.lanes and block.end > block.start:
            paint_block(canvas, box, block)
    paint_heads(canvas, box, picture)
    if picture.legend is not None:
        words = picture.legend
        marks = [*words.services, (ink.LOCK_MARK, words.held), (ink.DASHED_MARK, words.requested),
                 (ink.HATCH_MARK, words.closed)]
        ink.legend(canvas, (MARGIN, box.bottom + GAP, box.width - MARGIN, box.bottom + GAP + LEGEND), marks)
    return canvas.png()


def paint_grid(canvas: ink.Canvas, box: Layout) -> None:
    """Hour and half-hour lines, lane and day separators, and the hours down the side."""
    right = box.x(box.days)
    for hour in range(box.first_hour, box.last_hour + 1):
        y = box.y(hour * 60)
        canvas.draw.line((box.left, y, right, y), fill=ink.LINE)
        if hour < box.last_hour:
            half = box.y(hour * 60 + 30)
            canvas.draw.line((box.left, half, right, half), fill=ink.HALF_LINE)
        canvas.line((box.left - 8, y), f"{hour:02d}:00", 15, ink.MUTED, AXIS, anchor="rm")
    for day in range(box.days):
        for lane in range(1, box.lanes):
            x = box.x(day, lane)
            canvas.draw.line((x, box.top, x, box.bottom), fill=ink.LINE)
    heads = box.top - DAY_HEAD - (LANE_HEAD if box.lanes > 1 else 0)
    for day in range(box.days + 1):
        x = box.x(day)
        canvas.draw.line((x, heads, x, box.bottom), fill=ink.DAY_LINE, width=2 if 0 < day < box.days else 1)


def paint_heads(canvas: ink.Canvas, box: Layout, picture: WeekPicture) -> None:
    """The title, a heading per day and, with several lanes, the staff names over their lanes."""
    canvas.line((MARGIN, MARGIN + TITLE // 2 - 4), picture.title, 26, ink.INK, box.width - 2 * MARGIN,
             bold=True, anchor="lm")
    size = 20 if box.day_width >= WIDE_LANE else 16
    for day, name in enumerate(picture.days[:box.days]):
        x, y = box.x(day) + box.day_width // 2, MARGIN + TITLE + DAY_HEAD // 2
        canvas.line((x, y), name, size, ink.INK, box.day_width - 8, bold=True, anchor="mm")
    if box.lanes > 1:
        for day in range(box.days):
            for lane, name in enumerate(picture.lanes[:box.lanes]):
                x, y = box.x(day, lane) + box.lane_width // 2, box.top - LANE_HEAD // 2
                first_name = name.split(" ")[0]  # a full name, else the first name
                short = name if canvas.fits(name, 14, box.lane_width - 6) else first_name
                canvas.line((x, y), short, 14, ink.MUTED, box.lane_width - 6, anchor="mm")


def paint_shade(canvas: ink.Canvas, box: Layout, shade: Shade) -> None:
    """A closure or holiday: a hatched span with its label at the top."""
    if not 0 <= shade.day < box.days or (shade.lane is not None and not 0 <= shade.lane < box.lanes):
        return
    x0, y0, x1, y1 = box.span(shade.day, shade.lane, shade.start, shade.end)
    if y1 - y0 < 2:
        return
    holiday = shade.kind == HOLIDAY
    ink.hatch(canvas, (x0 + 1, y0, x1 - 1, y1), ink.HOLIDAY if holiday else ink.CLOSED,
              ink.HOLIDAY_HATCH if holiday else ink.CLOSED_HATCH)
    if y1 - y0 >= 20:
        canvas.line((x0 + 5, y0 + 4), shade.label, 14, ink.HOLIDAY_TEXT if holiday else ink.MUTED,
                 x1 - x0 - 10, bold=True, band=True)


def paint_block(canvas: ink.Canvas, box: Layout, block: Block) -> None:
    """One appointment: the coloured box, then as many of its lines as fit."""
    x0, y0, x1, y1 = box.span(block.day, block.lane, block.start, block.end)
    x0, y0, x1, y1 = x0 + 2, y0 + 1, x1 - 2, max(y1 - 1, y0 + 4)
    colour = ink.rgb(block.colour)
    if block.state == REQUESTED:  # pale, with a dashed outline: not booked yet
        fill = ink.blend(colour, ink.PAPER, 0.25)
        canvas.draw.rectangle((x0, y0, x1, y1), fill=fill)
        ink.dashed_box(canvas, (x0, y0, x1, y1), ink.darker(colour), width=2)
    else:
        fill = colour
        canvas.draw.rectangle((x0, y0, x1, y1), fill=fill, outline=ink.darker(colour))
    size = 16 if box.lane_width >= WIDE_LANE else 14
    held = block.state == HELD
    if held:
        ink.lock(canvas, (x1 - size - 3, y0 + 3), size)
    ink.block_lines(canvas, (x0 + 5, y0 + 2, x1 - 4, y1 - 1), (block.time, block.title, block.detail),
                    ink.text_on(fill), size, room_for_lock=size + 4 if held else 0)
