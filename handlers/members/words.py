"""The words of groups and member accounts, and the links and codes that complete them: the registration."""
from __future__ import annotations

from functools import partial

from handlers.context import Context
from handlers.members import (
    accounts,
    credentials,
    enrolling,
    expiry,
    groups,
    importing,
    membership,
    orders,
    removing,
    uploads,
)
from handlers.members.credentials import FILE_SECONDS, RESET_FLOW, RESET_PURPOSE, SHOW_SECONDS
from handlers.members.rules import ADMINS, BUYERS, LISTERS, MANAGERS, REFUNDERS
from handlers.messages import Reply
from handlers.registry import Command, Handlers
from handlers.rules.words import first_word

ACTIONS = {
    "add": accounts.add_member, "neu": accounts.add_member, "set": accounts.set_fields,
    "ändern": accounts.set_fields, "aendern": accounts.set_fields, "group": accounts.put_in_group,
    "gruppe": accounts.put_in_group, "delete": accounts.delete_member, "löschen": accounts.delete_member,
    "loeschen": accounts.delete_member, "invite": accounts.reinvite, "einladen": accounts.reinvite,
    "list": accounts.list_members, "liste": accounts.list_members,
}
ADMIN_ONLY = {accounts.add_member, accounts.delete_member, accounts.reinvite}


async def member(ctx: Context, args: str) -> list[Reply]:
    """`member …`: list, card, add, set, group, delete, invite; the first word picks which."""
    head, rest = first_word(args)
    action = ACTIONS.get(head.lower())
    if action is None:
        return await (accounts.show_member(ctx, args) if head else accounts.list_members(ctx, ""))
    if action in ADMIN_ONLY and not ctx.roles & ADMINS:
        return await accounts.denied(ctx, f"member {head.lower()}")
    return await action(ctx, rest)


def group_handlers(parse_seconds: float = uploads.PARSE_SECONDS, parse_memory: int = uploads.PARSE_MEMORY) -> Handlers:
    """Group words, the invitation and import codes, the /start g-… and inv-… deep links, and reading
    an uploaded list before the transaction (at most `parse_seconds` and `parse_memory` bytes)."""
    return Handlers(
        commands=[
            Command("groups", groups.list_groups, allowed=LISTERS, aliases=("gruppen",), section="groups", safe=True),
            Command("group", groups.group_command, aliases=("gruppe",), section="groups"),
            Command("members", groups.members, allowed=MANAGERS, aliases=("mitglieder",), section="groups",
                    safe=True),
            Command("enroll", enrolling.enroll, allowed=MANAGERS, aliases=("einschreiben", "enrol"),
                    section="groups"),
            Command("remove", removing.remove, allowed=MANAGERS, aliases=("entfernen",), section="groups"),
            # safe: the dry run only reads; by email the import itself waits for its own code (import_code)
            Command("import", importing.import_members, allowed=MANAGERS, aliases=("importieren",),
                    section="groups", safe=True),
            Command("seats", groups.buy_more, allowed=BUYERS, aliases=("plaetze", "plätze"), section="groups"),
            Command("refund", removing.refund, allowed=REFUNDERS, aliases=("erstatten",), section="groups"),
            Command("orders", orders.list_orders, allowed=ADMINS, aliases=("bestellungen",), section="groups",
                    safe=True),
            Command("order", orders.order_command, allowed=ADMINS, aliases=("bestellung",), section="groups"),
        ],
        completions={membership.INVITATION: membership.accept_by_code,
                     importing.IMPORT_CONFIRM: importing.import_code_confirmed,
                     uploads.IMPORT_UPLOAD: importing.upload_code_confirmed},
        preparers=[uploads.import_preparer(importing.import_word, parse_seconds, parse_memory)],
        start_payloads={"g": groups.open_group_link, "inv": membership.open_invitation},
        jobs=dict(expiry.JOBS),
    )


def account_handlers(show_seconds: int = SHOW_SECONDS, file_seconds: int = FILE_SECONDS) -> Handlers:
    """The account words; `show_seconds` is how long a credential stays visible in a chat."""
    return Handlers(
        commands=[
            # Admins only: a group manager manages seats (groups), never people's records (phone, contract,
            # credentials state) nor their names, which others read in notices.
            Command("member", member, allowed=ADMINS, aliases=("mitglied", "benutzer"), section="admin"),
            # "safe" because by email it only ever refuses: an email round trip would first store the
            # command, with a chosen password in it, in the code row and the audit log.
            Command("credentials", partial(credentials.credentials, show_seconds=show_seconds,
                                           file_seconds=file_seconds),
                    allowed=ADMINS, aliases=("zugangsdaten",), section="admin", safe=True),
            Command("unlock", credentials.unlock, allowed=ADMINS, aliases=("entsperren",), section="admin"),
            # Everyone may ask: a refusal by role would log the typed arguments, and they can hold a password.
            # No email round trip either (it would store them too): the reset code goes to the mailbox on file.
            Command("reset", partial(credentials.reset, show_seconds=show_seconds),
                    aliases=("zuruecksetzen", "zurücksetzen"), safe=True),
        ],
        flows={accounts.DELETE_FLOW: accounts.delete_step,
               RESET_FLOW: partial(credentials.choose_password, show_seconds=show_seconds)},
        completions={membership.ACCOUNT_INVITATION: membership.accept_code, RESET_PURPOSE: credentials.reset_code_ok},
        bounces={membership.ACCOUNT_INVITATION: membership.invitation_bounced},
        start_payloads={"acc": membership.accept_link},
    )
