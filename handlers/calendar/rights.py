"""Who may do what in the calendar: the speaker's rights, and the guard that answers a missing one."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers.calendar.words import Invalid
from handlers.context import Context
from handlers.messages import Reply
from storage.models import Staff

CALENDAR_KINDS = ("owner", "admin", "provider")  # assistants book for others but have no calendar


class Denied(Exception):
    """The speaker lacks a right; `guarded` answers and audits it."""

    def __init__(self, need: str):
        super().__init__(need)
        self.need = need


@dataclass(frozen=True)
class Actor:
    """The speaker as the calendar sees them."""

    person_id: int
    admin: bool
    kind: str | None
    rights: frozenset[str]

    def may(self, right: str) -> bool:
        return self.admin or right in self.rights

    @property
    def has_calendar(self) -> bool:
        return self.kind in CALENDAR_KINDS

    @property
    def sees_all(self) -> bool:
        """Admins and assistants who book for colleagues read every calendar."""
        return self.may("book_for_colleagues")


@dataclass(frozen=True)
class Member:
    """A staff member by id, name and kind."""

    id: int
    name: str
    kind: str

    @property
    def has_calendar(self) -> bool:
        return self.kind in CALENDAR_KINDS


async def actor(ctx: Context) -> Actor:
    row = await ctx.session.get(Staff, ctx.person.id)
    return Actor(ctx.person.id, "admin" in ctx.roles, row.kind if row else None,
                 frozenset(row.rights if row else ()))


def myself(ctx: Context, me: Actor) -> Member:
    """The speaker as a staff member, for their own calendar."""
    return Member(me.person_id, ctx.person.name or "", me.kind or "")


def require(allowed: bool, need: str) -> None:
    if not allowed:
        raise Denied(need)


Run = Callable[[Context, str], Awaitable[list[Reply]]]


def guarded(word: str, run: Run) -> Run:
    """Answer a missing right (audited), and add the usage line to a bad-input refusal."""
    async def guarded_run(ctx: Context, args: str) -> list[Reply]:
        """Run the command; answer a Denied, add the usage line to an Invalid."""
        try:
            return await run(ctx, args)
        except Denied as denied:
            # Rights are checked before anything changes, so the audit row is all this transaction keeps.
            await ctx.audit("denied", word, args=args[:200], need=denied.need)
            return [ctx.say("calendar_denied", word=word, need=denied.need)]
        except Invalid as invalid:
            invalid.values.setdefault("usage", ctx.word(f"help.{word}"))
            raise
    return guarded_run
