"""Where the desk keeps something about a person, table by table: what `mydata` exports and `forget` erases.

A table is linked to a person by a foreign key to person.id, or by a column that holds an address
(address, recipient, sender, actor, author, email, chat_id and every `…_by`). Each linked table is
either covered (named here with its linked columns and the export section that shows it) or excluded
with the reason. tests/unit/test_privacy_rules.py fails for a linked table or column named in neither,
so a new table with a person in it cannot slip past the export and the erasure.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, MetaData, Table

ADDRESS_COLUMNS = frozenset({"address", "recipient", "sender", "actor", "author", "email", "chat_id"})


@dataclass(frozen=True)
class Covered:
    columns: frozenset[str]  # the columns that link a row to a person
    section: str  # the key of the `mydata` JSON that shows the person's rows
    erased: str  # what `forget` does with them (the README's table says the same)


def _covered(columns: str, section: str, erased: str) -> Covered:
    return Covered(frozenset(columns.split()), section, erased)


COVERED: dict[str, Covered] = {
    "person": _covered("", "person", "name replaced by the pseudonym, language cleared; the row stays"),
    "address": _covered("person_id address", "addresses", "deleted"),
    "role": _covered("person_id", "roles", "deleted"),
    "staff": _covered("person_id", "staff", "deleted"),
    "staff_service": _covered("person_id", "staff", "deleted"),
    "staff_hours": _covered("person_id", "staff", "deleted"),
    "appointment": _covered("staff_id customer_id created_by closed_by", "appointments",
                            "future ones cancelled with notices; notes and reasons cleared; rows kept"),
    "closure": _covered("staff_id created_by", "closures", "kept; who made it becomes the pseudonym"),
    "customer_note": _covered("person_id author", "notes", "deleted"),
    "profile_change": _covered("person_id decided_by", "profile_changes", "deleted"),
    "customer_group_member": _covered("person_id", "customer_groups", "deleted"),
    "seat_group": _covered("created_by", "groups_created", "kept; the creator becomes the pseudonym"),
    "membership": _covered("person_id enrolled_by", "memberships",
                           "kept for the seat count (used seats are never refunded)"),
    "seat_order": _covered("buyer_id decided_by", "invoices", "kept (legal retention), buyer pseudonymous"),
    "member": _covered("person_id", "member_account", "names, numbers, device and invitation cleared"),
    "credential": _covered("person_id", "credentials", "deleted"),
    "export_preset": _covered("person_id", "export_presets", "deleted"),
    "course": _covered("created_by", "courses_created", "kept; the creator becomes the pseudonym"),
    "course_place": _covered("person_id address", "course_places",
                             "places and waiting-list entries ended (passed down the line); rows kept"),
    "billing_address": _covered("person_id address", "billing_address", "deleted"),
    "invoice": _covered("buyer_person_id", "invoices_issued",
                        "kept (legal retention); buyer name and address become the pseudonym"),
    "import_batch": _covered("uploaded_by", "imports", "kept without the uploaded file"),
    "licence": _covered("buyer_person_id", "licences",
                        "kept (the contract with the carrier); the buyer is the pseudonym"),
    "carrier_buyer": _covered("person_id", "licences", "kept: the pseudonym stays the carrier's buyer until an admin"
                              " names another"),
    "licence_school": _covered("email", "licences", "contact name and address replaced by the pseudonym"),
    "licence_batch": _covered("uploaded_by", "licences", "rows emptied, uploader replaced by the pseudonym"),
    "ticket": _covered("customer_id email", "tickets", "subject and address replaced; messages emptied"),
    "ticket_message": _covered("author", "tickets", "texts of the person's tickets emptied"),
    "mail_intake": _covered("sender", "mails_received", "raw mail dropped, sender replaced"),
    "code": _covered("address", "codes", "deleted"),
    "conversation": _covered("address", "conversations", "deleted"),
    "choice": _covered("address", "buttons", "deleted"),
    "outbox": _covered("recipient", "mails_sent", "texts emptied, recipient replaced (after delivery)"),
    "audit": _covered("actor person_id", "audit", "kept (legal retention); addresses and names replaced"),
}

EXCLUDED: dict[str, str] = {
    "business": "its `address` column is the business's own postal address for invoices, no person's",
    "slot_claim": "5-minute cells of a live appointment: no data of their own, freed when it is cancelled",
    "hold_seat": "a booking page's open hold, under an HMAC of the address (not the address); freed with the hold",
    "school": "the school directory holds schools' office addresses, as the business's admins send them",
    "removal": "a chat message waiting to be removed (chat and message ids only), gone at its time",
    "telegram_update": "a Telegram update waiting to be answered: its body is emptied once answered, and the "
                       "rest (update id, sender) is swept two days later",
}


def uncovered(metadata: MetaData) -> dict[str, frozenset[str]]:
    """Tables with a person in them that are neither covered (with exactly their linked columns) nor excluded."""
    found = {}
    for table in metadata.sorted_tables:
        linked = linked_columns(table)
        if table.name in COVERED:
            if COVERED[table.name].columns != linked:
                found[table.name] = linked
        elif linked and table.name not in EXCLUDED:
            found[table.name] = linked
    return found


def linked_columns(table: Table) -> frozenset[str]:
    """The columns of a table that link a row to a person."""
    return frozenset(column.name for column in table.columns if _links(column))


def _links(column: Column) -> bool:
    if any(fk.column.table.name == "person" for fk in column.foreign_keys):
        return True
    return column.name in ADDRESS_COLUMNS or column.name.endswith("_by") or column.name == "person_id"
