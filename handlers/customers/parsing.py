"""Customers' parsing and checks: ids, one-line values and notes, LIKE patterns, who counts as a customer."""
from __future__ import annotations

from sqlalchemy import exists, select

from handlers.context import Context, Refusal
from handlers.messages import Reply
from handlers.rules.roles import WORKING_ROLES
from handlers.rules.words import parse_id
from storage.models import Person, Role, Staff

LIST_LIMIT = 20
CARD_LIMIT = 10
MAX_NAME = 200  # person.name
MAX_GROUP = 120  # customer_group.name
MAX_NOTE = 2000
CLEAR = "-"  # `booking note ID -` removes the note


# ---- parsing and checks -------------------------------------------------------------------------

def one_line(text: str, limit: int, empty: str) -> str:
    """Collapse whitespace; refuse an empty value or one longer than its column holds."""
    value = " ".join(text.split())
    if not value:
        raise Refusal(empty)
    if len(value) > limit:
        raise Refusal("customers_too_long", limit=limit, length=len(value))
    return value


def note_text(text: str) -> str:
    """A note keeps its line breaks; refuse empty or overlong text."""
    value = text.strip()
    if not value:
        raise Refusal("customers_note_empty")
    if len(value) > MAX_NOTE:
        raise Refusal("customers_too_long", limit=MAX_NOTE, length=len(value))
    return value


def like_pattern(text: str) -> str:
    """A LIKE pattern for a substring, with the wildcards the user typed taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def is_customer():
    """Persons who do not work here (no staff row, no team role)."""
    return ~exists().where(Staff.person_id == Person.id) & ~exists().where(
        Role.person_id == Person.id, Role.role.in_(WORKING_ROLES))


async def find_customer(ctx: Context, text: str) -> Person:
    """The customer with this id, or a refusal that says what was wrong."""
    number = parse_id(text)
    if number is None:
        raise Refusal("customers_bad_id", value=text.strip()[:40])
    person = await ctx.session.scalar(select(Person).where(Person.id == number, is_customer()))
    if person is None:
        raise Refusal("customers_unknown", id=number)
    return person


async def denied(ctx: Context, what: str, args: str) -> list[Reply]:
    """Refuse a word the speaker's roles do not allow, and log the attempt (as the router does)."""
    await ctx.audit("denied", what, args=args[:200])
    return [ctx.say("not_allowed", word=what)]
