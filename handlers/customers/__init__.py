"""Customers: find them, read their card, and keep the business's record right.

The record is the business's own: an admin fixes pseudonyms ("Der korrekte Name ist nur für Sie
in Ihrer Datenbank ersichtlich"), adds notes and groups. A customer's own change of name or email
does not overwrite it; it waits as a ProfileChange for an admin to accept or ignore.
"""
from __future__ import annotations

from handlers.customers.card import customer
from handlers.customers.changes import accept, ignore, list_changes
from handlers.customers.finding import list_customers
from handlers.customers.parsing import like_pattern
from handlers.customers.profile import own_name, record_email_change
from handlers.customers.record import booking
from handlers.registry import Command, Handlers
from handlers.rules.roles import ADMINS, TEAM

__all__ = ["handlers", "like_pattern", "record_email_change"]


def handlers() -> Handlers:
    return Handlers(commands=[
        Command("customers", list_customers, allowed=TEAM, aliases=("kunden",), section="staff", safe=True),
        Command("customer", customer, allowed=TEAM, aliases=("kunde",), section="staff"),
        Command("booking", booking, allowed=ADMINS, aliases=("buchung",), section="admin"),
        Command("changes", list_changes, allowed=ADMINS, aliases=("aenderungen", "änderungen"), section="admin",
                safe=True),
        Command("accept", accept, allowed=ADMINS, aliases=("uebernehmen", "übernehmen"), section="admin"),
        Command("ignore", ignore, allowed=ADMINS, aliases=("ignorieren",), section="admin"),
        Command("name", own_name),
    ])
