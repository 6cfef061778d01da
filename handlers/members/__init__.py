"""Members: groups and their seats, seat orders, enrolling, importing and removing members, member accounts
and their credentials; one membership module owns the invitation lifecycle they share.

The package imports nothing itself: the upload child process (members.child) reads a list with the light
modules alone, without the desk's storage. `account_handlers` and `group_handlers` load on first use."""
from __future__ import annotations

from typing import Any

__all__ = ["account_handlers", "group_handlers"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from handlers.members import words

        return getattr(words, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
