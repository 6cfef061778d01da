"""Colours, fonts and small drawing steps the pictures share (Pillow only; no I/O beyond loading a font)."""
from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont, features

from handlers.rules.values import COLOUR

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Box = tuple[int, int, int, int]

PAPER: RGB = (255, 255, 255)
INK: RGB = (31, 41, 51)
MUTED: RGB = (82, 96, 109)
LINE: RGB = (210, 215, 222)
HALF_LINE: RGB = (236, 239, 243)
DAY_LINE: RGB = (154, 163, 173)
QUIET: RGB = (246, 248, 251)  # weekend columns
CLOSED, CLOSED_HATCH = (232, 235, 239), (184, 191, 199)
HOLIDAY, HOLIDAY_HATCH, HOLIDAY_TEXT = (253, 241, 214), (240, 195, 109), (140, 90, 10)
LOCK: RGB = (31, 41, 51)
GREY: RGB = (149, 165, 166)  # a service without a colour

# DejaVu's condensed faces fit names into narrow lanes and cover most scripts of Europe and around it;
# without them, Pillow's own scalable font (Pillow >= 10.1) is still legible. Its bitmap font is not.
FACES = {False: ("DejaVuSansCondensed.ttf", "DejaVuSans.ttf"),
         True: ("DejaVuSansCondensed-Bold.ttf", "DejaVuSans-Bold.ttf")}


@lru_cache(maxsize=64)
def font(size: int, bold: bool = False, shaped: bool = False) -> Font:
    """A font of `size` pixels. `shaped` lays text out with Raqm (right-to-left and joined scripts); the
    basic layout is more than twice as fast and right for Latin, Greek and Cyrillic."""
    engine = ImageFont.Layout.RAQM if shaped and features.check("raqm") else ImageFont.Layout.BASIC
    for name in FACES[bold]:
        try:
            return ImageFont.truetype(name, size, layout_engine=engine)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


SHAPED = re.compile("[\u0590-\u1fff\u2c00-\U0010ffff]")  # Hebrew on (Arabic, Indic, …), symbols aside


def needs_shaping(words: str) -> bool:
    """Whether text holds a script that needs Raqm's layout."""
    return SHAPED.search(words) is not None


def face_for(words: str, size: int, bold: bool = False) -> Font:
    return font(size, bold, needs_shaping(words))


def rgb(colour: str, default: RGB = GREY) -> RGB:
    """'#2e86de' as (46, 134, 222); anything else as `default`."""
    if not COLOUR.match(colour or ""):
        return default
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def blend(colour: RGB, other: RGB, share: float) -> RGB:
    """`share` of `colour`, the rest `other`."""
    r, g, b = (round(a * share + c * (1 - share)) for a, c in zip(colour, other))
    return r, g, b


def darker(colour: RGB) -> RGB:
    return blend(colour, (0, 0, 0), 0.7)


def text_on(fill: RGB) -> RGB:
    """Dark text on a light fill, white on a dark one (by relative luminance)."""
    r, g, b = fill
    return INK if 0.2126 * r + 0.7152 * g + 0.0722 * b > 150 else PAPER


def fit(words: str, face: Font, width: int) -> str:
    """`words` cut with an ellipsis so that they fit `width` pixels (empty if not even '…' fits)."""
    full = face.getlength(words)
    if full <= width:
        return words
    keep = int(len(words) * width / full)  # a guess from the average letter, then letter by letter
    while keep > 0 and face.getlength(words[:keep].rstrip() + "…") > width:
        keep -= 1
    if keep == 0:
        return "…" if face.getlength("…") <= width else ""
    return words[:keep].rstrip() + "…"


class Canvas:
    """An RGB image to draw on, which sets each distinct text once (a week repeats times and services)."""

    def __init__(self, width: int, height: int):
        self.image = Image.new("RGB", (width, height), PAPER)
        self.draw = ImageDraw.Draw(self.image)
        self._texts: dict[tuple[str, int, bool, str], tuple[Image.Image, int, int]] = {}
        self._fitted: dict[tuple[str, int, bool, int], str] = {}

    def fit(self, words: str, size: int, width: int, bold: bool = False) -> str:
        """`fit` with the face for the words, remembered: a week repeats its services and times."""
        key = (words, size, bold, width)
        if key not in self._fitted:
            self._fitted[key] = fit(words, face_for(words, size, bold), width)
        return self._fitted[key]

    def fits(self, words: str, size: int, width: int, bold: bool = False) -> bool:
        return self.fit(words, size, width, bold) == words

    def line(self, at: tuple[int, int], words: str, size: int, colour: RGB, width: int, bold: bool = False,
             anchor: str = "la", band: bool = False) -> int:
        """One line of text in `size` pixels, cut to `width`; `band` sets it on white (to read over
        hatching). Returns the width it took."""
        fitted = self.fit(words, size, width, bold)
        if not fitted:
            return 0
        mask, left, top = self._text(fitted, size, bold, anchor)
        x, y = at[0] + left, at[1] + top
        if band:
            self.draw.rectangle((x - 2, y - 1, x + mask.width + 2, y + mask.height + 1), fill=PAPER)
        self.draw.bitmap((x, y), mask, fill=colour)
        return mask.width

    def _text(self, words: str, size: int, bold: bool, anchor: str) -> tuple[Image.Image, int, int]:
        """The text's coverage as a mask, and where it sits from the anchor point."""
        key = (words, size, bold, anchor)
        if key not in self._texts:
            face = face_for(words, size, bold)
            left, top, right, bottom = (int(v) for v in face.getbbox(words, anchor=anchor))
            mask = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
            ImageDraw.Draw(mask).text((-left, -top), words, font=face, fill=255, anchor=anchor)
            self._texts[key] = (mask, left, top)
        return self._texts[key]

    def png(self) -> bytes:
        return png(self.image)


def lock(canvas: Canvas, at: tuple[int, int], size: int) -> None:
    """A padlock on a white badge: the mark of a held slot (waiting for the customer's code)."""
    draw, (x, y) = canvas.draw, at
    draw.rounded_rectangle((x, y, x + size, y + size), radius=3, fill=PAPER)
    stroke, body_top = max(size // 8, 2), y + size // 2
    left, right = x + size * 3 // 10, x + size - size * 3 // 10
    draw.arc((left, y + 2, right, y + 2 + (right - left)), start=180, end=360, fill=LOCK, width=stroke)
    middle = y + 2 + (right - left) // 2
    draw.rectangle((left, middle, left + stroke - 1, body_top), fill=LOCK)
    draw.rectangle((right - stroke + 1, middle, right, body_top), fill=LOCK)
    draw.rectangle((x + size // 6, body_top, x + size - size // 6, y + size - 2), fill=LOCK)


def dashed_box(canvas: Canvas, box: Box, colour: RGB, width: int = 2, dash: int = 6) -> None:
    """The outline of a pending request: dashes of `dash` pixels with gaps as long."""
    draw, (x0, y0, x1, y1) = canvas.draw, box
    for x in range(x0, x1, 2 * dash):
        end = min(x + dash - 1, x1)
        draw.rectangle((x, y0, end, y0 + width - 1), fill=colour)
        draw.rectangle((x, y1 - width + 1, end, y1), fill=colour)
    for y in range(y0, y1, 2 * dash):
        end = min(y + dash - 1, y1)
        draw.rectangle((x0, y, x0 + width - 1, end), fill=colour)
        draw.rectangle((x1 - width + 1, y, x1, end), fill=colour)


def hatch(canvas: Canvas, box: Box, fill: RGB, lines: RGB, step: int = 10) -> None:
    """A filled box with diagonal lines (2 px wide, `step` apart, aligned across boxes): time that is closed."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    canvas.draw.rectangle(box, fill=fill)
    width, height = x1 - x0, y1 - y0
    # The pattern repeats every `step` rows: a pixel is on a line where (x + y) % step < 2.
    rows = [bytes(255 if (x + y) % step < 2 else 0 for x in range(x0, x1)) for y in range(y0, y0 + step)]
    mask = Image.frombytes("L", (width, height), b"".join(rows[r % step] for r in range(height)))
    canvas.image.paste(lines, box, mask)


def block_lines(canvas: Canvas, box: Box, lines: Sequence[str], colour: RGB, size: int,
                room_for_lock: int = 0) -> None:
    """An appointment's time, service and customer, as many lines as the box holds (one: start and service)."""
    x0, y0, x1, y1 = box
    step = size + 3
    fitting = (y1 - y0 + 3) // step  # the last line needs no space below it
    if fitting < 1:
        return
    room = x1 - x0 - room_for_lock
    start = lines[0].partition("–")[0]
    if fitting == 1:  # start and service, or in a narrow lane the service alone (the hours are at the side)
        both = f"{start} {lines[1]}"
        lines = [both if canvas.fits(both, size, room, bold=True) else lines[1]]
    elif not canvas.fits(lines[0], size, room):
        lines = [start, *lines[1:]]  # narrow: the start alone
    for index, words in enumerate(lines[:fitting]):
        width = x1 - x0 - (room_for_lock if index == 0 else 0)
        canvas.line((x0, y0 + index * step), words, size, colour, width, bold=index == 1 or fitting == 1)




LOCK_MARK, DASHED_MARK, HATCH_MARK = "lock", "dashed", "hatch"  # legend marks besides a colour swatch


def legend(canvas: Canvas, box: Box, entries: Sequence[tuple[str, str]]) -> None:
    """A row of (mark, meaning) under a picture: a mark is a colour ('#rrggbb') or LOCK/DASHED/HATCH_MARK."""
    x, y0, x1, _ = box
    mid = y0 + 18
    for mark, meaning in entries:
        if x + 60 > x1:
            return
        if mark == LOCK_MARK:
            canvas.draw.rounded_rectangle((x - 1, mid - 9, x + 17, mid + 9), radius=3, fill=MUTED)
            lock(canvas, (x + 1, mid - 7), 14)
        elif mark == DASHED_MARK:
            dashed_box(canvas, (x, mid - 8, x + 18, mid + 8), MUTED, width=2, dash=4)
        elif mark == HATCH_MARK:
            hatch(canvas, (x, mid - 8, x + 18, mid + 8), CLOSED, CLOSED_HATCH, step=6)
        else:
            canvas.draw.rectangle((x, mid - 8, x + 16, mid + 8), fill=rgb(mark))
        x += 26 + canvas.line((x + 26, mid), meaning, 16, MUTED, x1 - x - 26, anchor="lm") + 24


def png(image: Image.Image) -> bytes:
    """An RGB image as PNG, every row unfiltered.

    Pillow tries five filters on every row of an RGB image, which costs more than all the drawing; flat
    colours and lines compress about as well without them, in a third of the time."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    raw, stride = memoryview(image.tobytes()), width * 3
    deflate = zlib.compressobj(1)
    body = [deflate.compress(b"\x00" + raw[at:at + stride]) for at in range(0, len(raw), stride)]
    data = b"".join(body) + deflate.flush()

    def chunk(kind: bytes, content: bytes) -> bytes:
        return struct.pack(">I", len(content)) + kind + content + struct.pack(">I", zlib.crc32(kind + content))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
