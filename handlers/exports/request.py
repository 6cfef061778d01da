"""What `export` was asked, pure: `export LIST [ARGS] [csv|xlsx] [FIELD,…]`, preset names, date ranges.

The fields come last: a comma list (`name,email,phone`, spaces after the commas allowed), or one word
that names a field of the list. The file kind may stand right after the list or right before the fields.
Whatever is left is the list's own arguments (a group, dates), passed on as typed, quotes and all.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from handlers.context import Refusal
from handlers.exports.files import KINDS, XLSX
from handlers.rules.words import OutOfRange, iso_date, looks_like_date

KIND_WORDS = {"csv": "csv", "xlsx": XLSX, "excel": XLSX}
# Kinds people may ask for that we do not write: a clear "no" instead of taking them for an argument.
OTHER_KINDS = frozenset({"pdf", "xls", "ods", "json", "txt", "html", "docx", "xml"})
TRAILING_FIELDS = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z][A-Za-z0-9_]*)*\s*,?)\s*$")
LEADING_KIND = re.compile(r"^(\S+)(?:\s+|$)")
TRAILING_KIND = re.compile(r"(?:^|\s+)(\S+)$")
PRESET_NAME = re.compile(r"[^\W_][\w-]*")
MAX_PRESET_NAME = 40
MAX_ARGS = 200  # export_preset.args


@dataclass(frozen=True)
class Request:
    """An export's choices as typed: None where the asker chose nothing."""

    args: str
    kind: str | None = None
    fields: tuple[str, ...] | None = None


def split_fields(text: str, known: Iterable[str], strict: bool = False) -> tuple[str, tuple[str, ...] | None]:
    """The text before a trailing field choice, and the choice (None: no fields named). `strict`: a last
    word is always the fields (a preset names them), unless it is a file kind."""
    found = TRAILING_FIELDS.search(text)
    if found is None:
        return text, None
    names = [n.strip().lower() for n in found.group(1).split(",") if n.strip()]
    if "," not in found.group(1) and (names[0] in KIND_WORDS or not (strict or names[0] in set(known))):
        return text, None  # one word that is no field: an argument of the list, or the kind
    return text[:found.start(1)].strip(), tuple(dict.fromkeys(names))


def kind_word(word: str) -> str | None:
    """The file kind a word names; a refusal for a kind we do not write."""
    lowered = word.lower().lstrip(".")
    if lowered in OTHER_KINDS:
        raise Refusal("export_bad_kind", value=word[:20], kinds=KINDS)
    return KIND_WORDS.get(lowered)


def split_kind(text: str) -> tuple[str, str | None]:
    """The text without a file kind at its start or end, and the kind (None: none named)."""
    for pattern in (LEADING_KIND, TRAILING_KIND):
        found = pattern.search(text)
        kind = kind_word(found.group(1)) if found else None
        if found is not None and kind is not None:
            return (text[:found.start()] + text[found.end():]).strip(), kind
    return text.strip(), None


def read_request(text: str, fields: Sequence[str], strict: bool = False) -> Request:
    """What follows the list's name: its arguments, the file kind and the fields, as typed (`strict`: the
    last word names fields, as in a preset, even if it names none of the list's)."""
    rest, chosen = split_fields(" ".join(text.split()), fields, strict)
    args, kind = split_kind(rest)
    if len(args) > MAX_ARGS:
        raise Refusal("export_too_long", limit=MAX_ARGS)
    return Request(args, kind, chosen)


def check_fields(list_name: str, chosen: Sequence[str], fields: Sequence[str]) -> tuple[str, ...]:
    """The chosen fields if the list has them all; else a refusal naming the unknown and the allowed ones."""
    unknown = [f for f in chosen if f not in fields]
    if unknown or not chosen:
        raise Refusal("export_unknown_field", list=list_name, unknown=unknown, allowed=list(fields))
    return tuple(chosen)


def preset_key(name: str) -> str:
    """A preset's name as compared: any case."""
    return name.casefold()


def check_preset_name(name: str, reserved: Iterable[str]) -> str:
    """A preset name is one word of letters, digits, '-' or '_', and no list's name or a word of ours."""
    if len(name) > MAX_PRESET_NAME or not PRESET_NAME.fullmatch(name):
        raise Refusal("export_preset_bad_name", value=name[:MAX_PRESET_NAME], reason="shape",
                      limit=MAX_PRESET_NAME)
    if preset_key(name) in {preset_key(word) for word in reserved}:
        raise Refusal("export_preset_bad_name", value=name, reason="reserved", limit=MAX_PRESET_NAME)
    return name


def date_range(words: list[str]) -> tuple[date | None, date | None, list[str]]:
    """Up to two leading dates (`FROM [TO]`, both days included) and the words after them."""
    days: list[date] = []
    while words and len(days) < 2 and looks_like_date(words[0]):
        try:
            days.append(iso_date(words[0]))
        except (ValueError, OutOfRange):
            raise Refusal("export_bad_dates", problem="date", value=words[0]) from None
        words = words[1:]
    if words and re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", words[0]):
        raise Refusal("export_bad_dates", problem="date", value=words[0])  # 2026-1-5: say how to write it
    first = days[0] if days else None
    last = days[1] if len(days) > 1 else None
    if first is not None and last is not None and last < first:
        raise Refusal("export_bad_dates", problem="order", first=first, last=last)
    return first, last, words
