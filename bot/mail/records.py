"""The intake's own statements, built once (building one costs more than SQLite takes to run it), and its
reads and writes for a whole batch of mails."""
from __future__ import annotations

import functools

from sqlalchemy import bindparam, func, literal, select, union_all

from handlers.tickets.records import ACK_AUTHOR, ACKS_SINCE
from storage.db import UnitOfWork
from storage.dialect import insert_ignoring_conflicts
from storage.models import Audit, MailIntake, Outbox, Ticket, TicketMessage

_AUDIT, _INTAKE, _MESSAGES, _TICKETS = Audit.__table__, MailIntake.__table__, TicketMessage.__table__, Ticket.__table__

SENT = select(Outbox.__table__.c.id).where(Outbox.__table__.c.message_id == bindparam("message_id")).limit(1)

# An address's automatic answers of the last hour: (acknowledgements, notes of the `action`), in one read …
ANSWERED_LATELY = select(ACKS_SINCE.scalar_subquery(), select(func.count()).select_from(_AUDIT).where(
    _AUDIT.c.action == bindparam("action"), _AUDIT.c.subject == bindparam("subject"),
    _AUDIT.c.at > bindparam("since")).scalar_subquery())
# … and for several: rows (0, email, acknowledgements) and (1, "email:…", notes), none for a count of 0.
ANSWERED_LATELY_ALL = union_all(
    select(literal(0), _TICKETS.c.email, func.count()).select_from(_MESSAGES)
    .join(_TICKETS, _TICKETS.c.id == _MESSAGES.c.ticket_id)
    .where(_TICKETS.c.email.in_(bindparam("emails", expanding=True)), _MESSAGES.c.author == ACK_AUTHOR,
           _MESSAGES.c.created_at > bindparam("since")).group_by(_TICKETS.c.email),
    select(literal(1), _AUDIT.c.subject, func.count())
    .where(_AUDIT.c.action == bindparam("action"), _AUDIT.c.subject.in_(bindparam("subjects", expanding=True)),
           _AUDIT.c.at > bindparam("since")).group_by(_AUDIT.c.subject))


@functools.cache
def intake_claim(dialect: str):
    """INSERT an intake record unless its Message-ID is recorded, returning the new id.
    (The table, not the class: a Core INSERT skips the ORM's bulk-insert machinery.)"""
    return insert_ignoring_conflicts(dialect, _INTAKE, ["message_id"]).returning(_INTAKE.c.id)


async def claim_all(uow: UnitOfWork, rows: list[dict]) -> list[int | None]:
    """Insert intake records in one statement; per row its new id, or None for a Message-ID recorded before
    or earlier among `rows` (the first one is taken)."""
    new = dict((await uow.session.execute(
        insert_ignoring_conflicts(uow.dialect, _INTAKE, ["message_id"]).values(rows)
        .returning(_INTAKE.c.message_id, _INTAKE.c.id))).all())
    return [new.pop(row["message_id"], None) for row in rows]


async def answered_lately_all(uow: UnitOfWork, senders: list[str], since, action: str) -> dict[str, tuple[int, int]]:
    """Each sender's automatic answers since `since`: (acknowledgements, `action` notes), in one read.

    Good for each sender's first mail of a batch only. A desk note that another mail of the batch adds to
    one of the sender's tickets is missing from it; such notes are no mail to the sender, and each
    acknowledgement or note mailed to them is caused by a mail of their own, whose successors count anew."""
    wanted = sorted(set(senders))
    counts = {sender: [0, 0] for sender in wanted}
    rows = await uow.session.execute(ANSWERED_LATELY_ALL, {
        "emails": wanted, "subjects": [f"email:{sender}" for sender in wanted], "action": action, "since": since})
    for kind, who, number in rows:
        counts[who.removeprefix("email:")][kind] = number
    return {sender: (acks, notes) for sender, (acks, notes) in counts.items()}
