"""Pure rules of groups and seats: who may do what, names, seat counts, invoices, group matching. No I/O."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from handlers.context import Context, Refusal
from handlers.rules.names import name_key, name_problem
from handlers.rules.roles import ADMINS  # admins manage every group, not only their own
from handlers.rules.values import MAX_SEATS
from handlers.rules.words import split_words

MANAGERS = frozenset({"manager", "admin", "owner"})  # may list, enrol, remove and import
FULL_ACCESS = ADMINS | {"support"}  # see every group
SUPPORT = frozenset({"support", "admin", "owner"})  # see every group
REFUNDERS = frozenset({"support", "owner"})  # seed 000: a refund goes through support ("Erstattung über den Support")
BUYERS = frozenset({"manager", "owner"})  # may buy more seats for a group
LISTERS = MANAGERS | SUPPORT
MANAGER = "manager"
MAX_GROUP_NAME = 60  # group names go into other people's mail subjects
MAX_NAME = 200
LIST_LIMIT = 30
GROUP_BUTTONS = 10
CURRENCY = "EUR"
CENT = Decimal("0.01")
NUMBER = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes "²", which int() refuses
SEATS = re.compile(r"\+?[0-9]{1,6}")  # '5' or '+5'; longer is over MAX_SEATS anyway (and int() caps digits)
ENROLL_ME = ("enroll-me", "enrol-me", "enroll_me", "mich", "mich-einschreiben")
GROUP_ONLY = ("group", "gruppe")
CONFIRM = ("confirm", "bestätigen", "bestaetigen")
APPROVE = ("approve", "freigeben", "genehmigen")
REJECT = ("reject", "ablehnen")
NEW = ("new", "neu")



@dataclass(frozen=True)
class NewGroup:
    """`group new NAME SEATS [COURSE] [group|enroll-me]`, parsed."""

    name: str
    seats: int
    course: str
    option: str | None  # None: ask; "group": buy only; "enroll": buy and enrol the buyer


def quote(name: str) -> str:
    return f'"{name}"'


def parse_new_group(args: str) -> NewGroup:
    """NAME is everything before the first number (quote it if it holds one); refuse anything else."""
    tokens = split_words(args)
    if not tokens or tokens[0].casefold() not in NEW:
        raise Refusal("groups_usage", word="group")
    tokens = tokens[1:]
    at = next((i for i, t in enumerate(tokens) if i and NUMBER.fullmatch(t)), None)
    if at is None:
        raise Refusal("groups_usage", word="group")
    rest, option = tokens[at + 1:], None
    if rest and rest[-1].casefold() in ENROLL_ME + GROUP_ONLY:
        option = "enroll" if rest.pop().casefold() in ENROLL_ME else "group"
    return NewGroup(" ".join(tokens[:at]), seat_count(tokens[at]), " ".join(rest), option)


def group_name(text: str) -> str:
    """A short printable name without quotes, web or mail addresses, that is not a bare number."""
    name = " ".join(text.split())
    problem = "empty" if not name else name_problem(name, MAX_GROUP_NAME)
    if problem is None and name.lstrip("#+").isdigit():
        problem = "number"
    if problem:
        shown = "".join(c if c.isprintable() else "?" for c in name[:MAX_GROUP_NAME])
        raise Refusal("groups_refused", reason="bad_name", problem=problem, value=shown, limit=MAX_GROUP_NAME)
    return name


def seat_count(value: int | str) -> int:
    """1 … MAX_SEATS seats; '+5' means 5."""
    text = str(value).strip()
    if not SEATS.fullmatch(text) or not 1 <= int(text) <= MAX_SEATS:
        raise Refusal("groups_refused", reason="bad_seats", value=str(value)[:20], limit=MAX_SEATS)
    return int(text)


def invoice_lines(text: str, quantity: int, unit_price: str | None) -> tuple[list[dict], str]:
    """One invoice line and the total, in Decimal (money is never a float), stored as text."""
    unit = Decimal(unit_price or "0").quantize(CENT)
    amount = (unit * quantity).quantize(CENT)
    line = {"text": text, "quantity": quantity, "unit_price": str(unit), "amount": str(amount)}
    return [line], str(amount)


def missing_seats(needed: int, bought: int, taken: int) -> int:
    return max(0, needed - (bought - taken))


def match_group(tokens: list[str], groups: list[tuple[int, str]]) -> tuple[int, list[str]] | None:
    """The group whose name is the longest leading run of words (any case), or '#ID'; with the rest."""
    if tokens and re.fullmatch(r"#\d{1,9}", tokens[0]):
        wanted = int(tokens[0][1:])
        return next(((gid, tokens[1:]) for gid, _ in groups if gid == wanted), None)
    names = {name_key(name): gid for gid, name in groups}
    for size in range(len(tokens), 0, -1):
        gid = names.get(name_key(" ".join(tokens[:size])))
        if gid is not None:
            return gid, tokens[size:]
    return None


def file_slug(name: str) -> str:
    return re.sub(r"[^\w-]+", "-", name).strip("-_")[:40] or "group"  # letters of any language stay


def deep_link(ctx: Context, payload: str) -> dict:
    """`/start PAYLOAD`, and the t.me link when the bot's username is configured."""
    username = getattr(ctx.config, "bot_username", "") or ""
    return {"payload": payload, "command": f"/start {payload}",
            "url": f"https://t.me/{username}?start={payload}" if username else None}
