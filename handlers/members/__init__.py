"""Members: groups and their seats, seat orders, enrolling, importing and removing members, member accounts
and their credentials; one membership module owns the invitation lifecycle they share."""
from handlers.members.words import account_handlers, group_handlers

__all__ = ["account_handlers", "group_handlers"]
