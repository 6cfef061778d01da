"""Licences for school carriers: the school directory (`schools`), orders with a registration list
(`licence PRODUCT`), activation of each school, invoices, renewal notices, renewals and cancellation
(`licence cancel ID`), and `licences` for admins and buyers."""
from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.members.child import PARSE_MEMORY, PARSE_SECONDS

if TYPE_CHECKING:
    from handlers.registry import Handlers


def handlers(parse_seconds: float = PARSE_SECONDS, parse_memory: int = PARSE_MEMORY) -> Handlers:
    """The capability's words and hooks (imported here: the upload child loads this package without them)."""
    from handlers.licences import directory, lists, ordering, terms, views
    from handlers.registry import Command, ExportList, Handlers
    from handlers.rules.roles import ADMINS

    return Handlers(
        commands=[
            Command("schools", directory.schools, allowed=ADMINS, aliases=("schulen",), section="licences",
                    reads=reads_schools),
            Command("licence", ordering.licence, aliases=("lizenz", "license"), section="licences",
                    reads=reads),
            Command("licences", views.list_licences, aliases=("lizenzen", "licenses"), section="licences",
                    safe=True),
        ],
        completions={terms.ACTIVATION: terms.activated},
        bounces={terms.ACTIVATION: terms.activation_bounced},
        preparers=[lists.list_preparer(parse_seconds, parse_memory)],
        jobs=dict(terms.JOBS),
        exports={"licences": ExportList("licences", views.licence_rows, views.FIELDS, views.DEFAULT,
                                        aliases=("lizenzen",))},
    )


def reads(args: str) -> bool:
    """By email a dry run only reads (the list comes with the mail); confirm and cancel wait for a code."""
    from handlers.licences import ordering
    from handlers.members.rules import CONFIRM
    from handlers.rules.words import split_words

    words = [w.casefold() for w in split_words(args)]
    return bool(words) and words[-1] not in CONFIRM and words[0] not in ordering.CANCEL


def reads_schools(args: str) -> bool:
    """By email the directory's dry run only reads; `schools confirm` waits for a code."""
    from handlers.members.rules import CONFIRM

    return args.strip().casefold() not in CONFIRM
