"""Personal data against a real store (SQLite and PostgreSQL): `mydata` mails everything about a person as
JSON to their proven address only, `forget` erases a person everywhere after a question and keeps what the
law keeps under a pseudonym, and the retention job deletes old processed mails and old closed tickets."""
from __future__ import annotations

import base64
import io
import json
import logging
import zipfile
from datetime import timedelta

from sqlalchemy import func, select, update

from bot.outbox import OutboxWorker
from handlers.jobs.runner import JobRunner
from handlers.privacy.coverage import COVERED
from handlers.privacy.rules import pseudonym
from handlers.setup import apply_setup, parse_setup
from handlers.speaking import mail_row
from storage.models import (
    Address,
    Appointment,
    Audit,
    Base,
    Business,
    Code,
    Credential,
    Job,
    MailIntake,
    Member,
    Membership,
    Outbox,
    Person,
    SeatGroup,
    SeatOrder,
    Ticket,
    TicketMessage,
)
from templates import Rendered
from tests.conftest import SECRET, inbound
from tests.helpers import PRACTICE as EXAMPLE
from tests.helpers import Chat, add_admin, count, mails_to, rows
from tests.integration.test_booking import TUESDAY, book_and_confirm, chat, customer, desk  # noqa: F401

KIM, KIM_EMAIL, KIM_NAME = "telegram:5551234", "kimberly.f@example.org", "Kimberly Forgetmenot"
KIM_PHONE = "+436649876543"
ADMIN, OWNER, LUKAS = "telegram:1009", "telegram:1001", "telegram:1002"
SECRET_DIGEST = "scrypt$16384$8$1$c2FsdA$bm90LWEtcmVhbC1oYXNoLWJ1dC1zZWNyZXQ"
SECRET_TOKEN = "9f2c1d0e7b6a5948372615f4e3d2c1b0a9f8e7d6c5b4a3928170f6e5d4c3b2a1"
NEEDLES = (KIM_NAME, "Forgetmenot", KIM_EMAIL, KIM, "5551234", KIM_PHONE)


class Recording:
    """A transport we own: every row it is handed counts as delivered."""

    def __init__(self):
        self.sent: list[Outbox] = []

    async def send(self, row: Outbox) -> None:
        self.sent.append(row)

    async def close(self) -> None:
        pass


async def deliver(desk) -> int:
    """Deliver everything due, as the outbox worker does, over transports that always succeed."""
    transport = Recording()
    worker = OutboxWorker(desk.store, {"email": transport, "telegram": transport}, clock=desk.clock)
    await worker.drain()
    return len(transport.sent)


async def rich_kim(desk, store) -> tuple[int, int]:
    """Kim with everything: Telegram and a proven email, a name, a booking, a ticket, a note and a group,
    a member account with credentials, a seat and an invoice, a raw mail. Returns (person id, appointment id)."""
    kim = await customer(desk, store, KIM, KIM_EMAIL)
    await kim.send(f"/name {KIM_NAME}")
    booked = await book_and_confirm(desk, store, kim, KIM_EMAIL, f"/book Massage {TUESDAY} 10:00 Lukas Huber")
    await desk.handle(inbound(f"email:{KIM_EMAIL}", "Hello, may I bring my own towel to the massage?\nKimberly",
                              clock=desk.clock))
    async with store.uow() as uow:
        pid = await uow.session.scalar(select(Address.person_id).where(Address.address == KIM))
    await add_admin(store, ADMIN, desk.clock.now())
    ada = chat(desk, ADMIN)
    await ada.send(f"/customer note {pid} Prefers mornings; {KIM_NAME} asked for lavender oil")
    await ada.send(f"/customer group {pid} VIP")
    await add_membership(store, desk.clock.now(), pid)
    return pid, booked


async def add_membership(store, now, pid: int) -> None:
    async with store.uow() as uow:
        group = SeatGroup(name="Yoga Tuesday", kind="course", seats_bought=5, seats_taken=1, created_by=ADMIN,
                          created_at=now)
        uow.session.add(group)
        await uow.session.flush()
        uow.session.add_all([
            Membership(group_id=group.id, person_id=pid, holds_seat=True, seat_used=True, enrolled_at=now,
                       enrolled_by=ADMIN),
            Member(person_id=pid, status="activated", first_name="Kimberly", last_name="Forgetmenot",
                   phone=KIM_PHONE, extension="42", invitation_token=SECRET_TOKEN, activated_at=now, services=[]),
            Credential(person_id=pid, kind="password", digest=SECRET_DIGEST, created_at=now, failed_attempts=0),
            SeatOrder(invoice_number="2026-0042", group_id=group.id, buyer_id=pid, seats=5, total="250.00",
                      lines=[{"text": f"5 seats Yoga Tuesday for {KIM_NAME}", "quantity": 5, "amount": "250.00"}],
                      created_at=now),
            MailIntake(message_id="<raw-1@example.org>", mailbox="INBOX", sender=f"email:{KIM_EMAIL}",
                       status="failed", raw=f"From: {KIM_NAME} <{KIM_EMAIL}>\r\n\r\nHi".encode(),
                       received_at=now),
        ])
        await uow.commit()


async def exported(store, to: str) -> tuple[Outbox, str]:
    """The newest mail to `to` with a JSON file, and the file's text."""
    mails = [m for m in await mails_to(store, to) if m.attachments]
    assert mails, f"no mail with a file to {to}"
    [attachment] = mails[-1].attachments
    assert attachment["type"] == "application/json"
    return mails[-1], base64.b64decode(attachment["data"]).decode("utf-8")


async def json_mails(store) -> list[Outbox]:
    return [m for m in await rows(store, Outbox) if any(a["type"] == "application/json" for a in m.attachments)]


# ---- mydata -------------------------------------------------------------------------------------


async def test_mydata_mails_everything_about_a_person_as_json_to_their_proven_address(desk, store):
    pid, booked = await rich_kim(desk, store)
    [answer] = await chat(desk, KIM).send("/mydata")
    assert answer.template == "privacy_mydata_sent" and KIM_EMAIL in answer.text and not answer.attachments
    mail, text = await exported(store, KIM_EMAIL)
    assert mail.subject == "Your data at Physio am Park" and "appointments: 1" in mail.text
    assert mail.attachments[0]["name"] == "my-data-2026-12-07.json"
    data = json.loads(text)
    assert {c.section for c in COVERED.values()} <= set(data)
    assert data["person"] == {"id": pid, "name": KIM_NAME, "language": None, "created_at": data["person"]["created_at"]}
    assert {(a["address"], a["verified"]) for a in data["addresses"]} == {(KIM, True), (f"email:{KIM_EMAIL}", True)}
    [massage] = data["appointments"]
    assert (massage["id"], massage["service"], massage["staff"], massage["location"], massage["status"]) == (
        booked, "Massage", "Lukas Huber", "Linz", "confirmed")
    assert massage["start"] == "2026-12-08T09:00:00+00:00"
    [ticket] = data["tickets"]
    assert "my own towel" in ticket["messages"][0]["text"] and ticket["email"] == KIM_EMAIL
    assert data["memberships"] == [{"group": "Yoga Tuesday", "kind": "course", "holds_seat": True, "seat_used": True,
                                    "enrolled_at": "2026-12-07T07:00:00+00:00"}]
    assert data["member_account"]["phone"] == KIM_PHONE and data["member_account"]["last_name"] == "Forgetmenot"
    assert [c["kind"] for c in data["credentials"]] == ["password"]
    assert [i["invoice_number"] for i in data["invoices"]] == ["2026-0042"]
    assert "lavender" in data["notes"][0]["text"] and data["customer_groups"] == ["VIP"]
    assert {"verify_email", "booking"} <= {c["purpose"] for c in data["codes"]}
    assert "Booked: Massage" in " ".join(m["subject"] or "" for m in data["mails_sent"])
    assert {"name_set", "email_verified", "customer_noted"} <= {a["action"] for a in data["audit"]}
    assert [m["status"] for m in data["mails_received"]] == ["failed"]


async def test_mydata_never_holds_a_secret(desk, store):
    await rich_kim(desk, store)
    await chat(desk, KIM).send("/mydata")
    _, text = await exported(store, KIM_EMAIL)
    digests = [c.digest for c in await rows(store, Code)]
    codes = [m.subject.split()[0] for m in await mails_to(store, KIM_EMAIL) if m.subject and m.subject[:6].isdigit()]
    assert len(codes) >= 2 and digests
    for secret in [SECRET_DIGEST, SECRET_TOKEN, SECRET.decode(), *digests, *codes]:
        assert secret not in text
    assert "••••••" in text  # the subjects of the code mails, with their codes hidden


async def test_mydata_goes_only_to_the_proven_address_never_to_another(desk, store):
    await customer(desk, store, KIM, KIM_EMAIL)
    async with store.uow() as uow:
        pid = await uow.session.scalar(select(Address.person_id).where(Address.address == KIM))
        uow.session.add(Address(address="email:typed.by.admin@example.org", kind="email", person_id=pid,
                                verified=False, created_at=desk.clock.now()))
        await uow.commit()
    [answer] = await chat(desk, KIM).send("/mydata")
    assert answer.template == "privacy_mydata_sent"
    assert [m.recipient for m in await json_mails(store)] == [KIM_EMAIL]
    assert await mails_to(store, "typed.by.admin@example.org") == []


async def test_someone_without_a_proven_email_is_told_to_add_one(desk, store):
    [answer] = await chat(desk, "telegram:77").send("/mydata")
    assert answer.template == "privacy_mydata_no_email" and '"email ADDRESS"' in answer.text
    [german] = await chat(desk, "telegram:78", lang="de").send("/meinedaten")
    assert german.template == "privacy_mydata_no_email" and "„email ADRESSE“" in german.text
    assert await json_mails(store) == []


async def test_mydata_by_email_goes_out_only_after_the_code_comes_back(desk, store):
    await customer(desk, store, KIM, KIM_EMAIL)
    sender = f"email:{KIM_EMAIL}"
    [asked] = await desk.handle(inbound(sender, "MYDATA", clock=desk.clock))
    assert asked.template == "mail_command_code" and not asked.attachments
    assert await json_mails(store) == []
    code = asked.subject.split()[0]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert (await desk.handle(inbound(sender, wrong, clock=desk.clock)))[0].template == "code_wrong"
    assert await json_mails(store) == []
    [sent] = await desk.handle(inbound(sender, code, clock=desk.clock))
    assert sent.template == "privacy_mydata_sent"
    assert [m.recipient for m in await json_mails(store)] == [KIM_EMAIL]


async def test_a_forged_sender_gets_only_a_code_mailed_to_the_real_mailbox(desk, store):
    await customer(desk, store, KIM, KIM_EMAIL)
    # Anyone can write From: a stranger's or Kim's address: the answer is a code, to that mailbox.
    for forged in ("email:nobody.yet@example.org", f"email:{KIM_EMAIL}"):
        [asked] = await desk.handle(inbound(forged, "meinedaten", clock=desk.clock))
        assert asked.template == "mail_command_code" and asked.recipient is None  # answers go to the From: only
    assert await json_mails(store) == []


# ---- forget -------------------------------------------------------------------------------------


async def traces_left(store) -> list[tuple[str, str, str | None]]:
    """Every (table, column, outbox status) where anything naming Kim is still stored, in any column."""
    found = []
    async with store.uow() as uow:
        for table in Base.metadata.sorted_tables:
            for row in (await uow.session.execute(select(table))).mappings():
                for column in table.columns:
                    text = readable(row[column.name])
                    if any(needle.casefold() in text.casefold() for needle in NEEDLES):
                        found.append((table.name, column.name, row.get("status") if table.name == "outbox" else None))
    return found


def readable(value) -> str:
    """A stored value as text: bytes decoded, JSON written out, attached files decoded."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | dict):
        files = [base64.b64decode(a["data"]).decode("utf-8", "replace") for a in value
                 if isinstance(a, dict) and "data" in a] if isinstance(value, list) else []
        return json.dumps(value, ensure_ascii=False) + "".join(files)
    return str(value)


async def test_forget_asks_first_and_shows_what_goes_and_what_stays(desk, store):
    pid, booked = await rich_kim(desk, store)
    [question] = await chat(desk, ADMIN).send(f"/forget {pid}")
    assert question.template == "privacy_forget_ask"
    assert [c.label for c in question.choices] == ["Erase", "Keep"]
    for shown in (KIM_NAME, KIM, f"email:{KIM_EMAIL}", f"#{booked}", "notes on them: 1", "support tickets: 1",
                  "invoices: 1", "Kept under a pseudonym"):
        assert shown in question.text, shown
    async with store.uow() as uow:
        person = await uow.session.get(Person, pid)
        assert person.name == KIM_NAME and person.erased_at is None
    assert await count(store, Appointment, Appointment.status == "confirmed") == 1


async def test_forget_after_the_question_erases_the_person_from_every_table(desk, store):
    pid, booked = await rich_kim(desk, store)
    await deliver(desk)  # what went out long ago
    assert {"person", "address", "appointment", "customer_note", "member", "seat_order", "ticket", "ticket_message",
            "mail_intake", "code", "outbox", "audit"} <= {table for table, _, _ in await traces_left(store)}
    audit_before = {a.id: a for a in await rows(store, Audit)}
    ada = Chat(desk, desk.clock, ADMIN)
    [question] = await ada.send(f"/vergessen {KIM_EMAIL.upper()}")  # German word, any case of the address
    [done] = await ada.tap(question, "Erase")
    alias = pseudonym(SECRET, pid)
    assert done.template == "privacy_forgotten" and alias in done.text and "1 upcoming appointment" in done.text

    # the booking is cancelled with notices, as a normal cancel does: they go out as written first
    [massage] = await rows(store, Appointment, Appointment.id == booked)
    assert massage.status == "cancelled" and massage.closed_by == ADMIN
    cancel = [m for m in await mails_to(store, KIM_EMAIL) if m.status == "pending"]
    assert [m.subject.startswith("Storniert: Massage") for m in cancel] == [True]  # in the business's language
    assert "METHOD:CANCEL" in base64.b64decode(cancel[0].attachments[0]["data"]).decode()
    assert (await mails_to(store, LUKAS))[-1].text.startswith(f"Storniert #{booked}:")
    assert {status for _, _, status in await traces_left(store)} == {"pending"}

    # once delivered, the scrub job empties them too: nothing names Kim anywhere any more
    assert await deliver(desk) >= 3
    desk.clock.advance(hours=1)
    assert await JobRunner(desk, desk.jobs).run_due() == 1
    assert await traces_left(store) == []

    # what the law keeps stays, under the pseudonym
    [person] = await rows(store, Person, Person.id == pid)
    assert person.name == alias and person.erased_at == desk.clock.now() - timedelta(hours=1)
    [invoice] = await rows(store, SeatOrder)
    assert invoice.buyer_id == pid and invoice.lines[0]["text"] == f"5 seats Yoga Tuesday for {alias}"
    audit_after = {a.id: a for a in await rows(store, Audit)}
    assert set(audit_before) <= set(audit_after)
    assert [audit_after[i].actor for i, a in audit_before.items() if a.actor == KIM] == [alias] * sum(
        a.actor == KIM for a in audit_before.values())
    [forgotten] = [a for a in audit_after.values() if a.action == "person_forgotten"]
    assert forgotten.actor == ADMIN and forgotten.subject == alias and forgotten.detail["cancelled"] == 1
    assert await count(store, Address, Address.person_id == pid) == 0
    assert await count(store, Credential) == 0 and await count(store, Membership) == 1
    [ticket] = await rows(store, Ticket)
    assert ticket.customer_id == pid and {m.text for m in await rows(store, TicketMessage)} <= {""}
    [raw] = await rows(store, MailIntake)
    assert raw.raw is None and raw.sender == alias


async def test_forget_refuses_oneself_the_owner_and_someone_unknown(desk, store):
    await rich_kim(desk, store)
    admin_id = (await rows(store, Address, Address.address == ADMIN))[0].person_id
    ada = chat(desk, ADMIN)
    answers = {typed: (await ada.send(typed))[0] for typed in (
        f"/forget {admin_id}", f"/forget {ADMIN} confirm", f"/forget {OWNER}", "/forget anna@physio-am-park.example",
        "/forget 99999", "/forget nobody@example.org", "/forget telegram:424242", "/forget Nobody Atall",
        "/forget")}
    assert {typed: a.template for typed, a in answers.items()} == {
        f"/forget {admin_id}": "privacy_forget_self", f"/forget {ADMIN} confirm": "privacy_forget_self",
        f"/forget {OWNER}": "privacy_forget_owner", "/forget anna@physio-am-park.example": "privacy_forget_owner",
        "/forget 99999": "privacy_forget_unknown", "/forget nobody@example.org": "privacy_forget_unknown",
        "/forget telegram:424242": "privacy_forget_unknown", "/forget Nobody Atall": "privacy_forget_unknown",
        "/forget": "privacy_forget_usage"}
    assert "Anna Berger" in answers[f"/forget {OWNER}"].text
    [denied] = await chat(desk, "telegram:77").send(f"/forget {KIM}")
    assert denied.template == "not_allowed"
    assert await count(store, Person, Person.erased_at.is_not(None)) == 0
    assert await count(store, Audit, Audit.action == "person_forgotten") == 0


async def test_confirm_without_the_question_or_after_a_change_shows_the_question_again(desk, store):
    pid, _ = await rich_kim(desk, store)
    ada = chat(desk, ADMIN)
    [first] = await ada.send(f"/forget {pid} confirm")
    assert first.template == "privacy_forget_ask" and "nothing was erased yet" in first.text
    await chat(desk, KIM).send("/book Massage 2026-12-10 09:00 Lukas Huber")  # a new hold meanwhile
    [again] = await ada.send(f"/forget {pid} confirm")
    assert again.template == "privacy_forget_ask" and "changed since the question" in again.text
    assert await count(store, Person, Person.erased_at.is_not(None)) == 0
    [kept] = await ada.send(f"/forget {pid} keep")
    assert kept.template == "privacy_forget_kept"
    [unasked] = await ada.send(f"/forget {pid} confirm")
    assert unasked.template == "privacy_forget_ask"
    [done] = await ada.send(f"/forget {pid} confirm")
    assert done.template == "privacy_forgotten" and "2 upcoming appointment" in done.text
    [twice] = await ada.send(f"/forget {pid} confirm")
    assert twice.template == "privacy_forget_done"


async def test_forget_finds_a_person_by_a_name_only_they_have(desk, store):
    pid, _ = await rich_kim(desk, store)
    ada = chat(desk, ADMIN)
    [question] = await ada.send("/forget kimberly forgetmenot")
    assert question.template == "privacy_forget_ask" and f"#{pid}" in question.text
    await chat(desk, "telegram:61").send("/name Sam Doe")
    await chat(desk, "telegram:62").send("/name Sam Doe")
    [ambiguous] = await ada.send("/forget Sam Doe")
    assert ambiguous.template == "privacy_forget_ambiguous" and ambiguous.text.count("Sam Doe (#") == 2


# ---- retention ----------------------------------------------------------------------------------


async def with_retention(desk, days: int | None) -> list[str]:
    # The scenarios run on 8 December, a holiday there; and only the retention job is looked at here.
    text = EXAMPLE.read_text().replace('holidays = "AT-4"', "", 1).replace('agenda = "07:30"', "", 1)
    text = text.replace("[[locations]]", (f"retention_days = {days}\n\n" if days else "")
                                       + "[[locations]]", 1)
    async with desk.store.uow() as uow:
        changes = await apply_setup(uow, parse_setup(text, "practice.toml"), desk.clock.now())
        await uow.commit()
    return changes


async def test_setup_starts_one_daily_retention_job(desk, store):
    changes = await with_retention(desk, 30)
    assert "~ business: retention_days (none) → 30" in changes
    assert any(c.startswith("+ retention:") and "2026-12-08T02:00:00+00:00" in c for c in changes)
    assert await with_retention(desk, 30) == []
    [job] = await rows(store, Job)
    assert (job.kind, job.key, job.due_at.isoformat()) == ("privacy_retention", "2026-12-08",
                                                           "2026-12-08T02:00:00+00:00")


async def test_the_retention_job_deletes_only_old_processed_mails_and_old_closed_tickets(desk, store, caplog):
    await with_retention(desk, 30)
    now = desk.clock.now()
    old, recent = now - timedelta(days=40), now - timedelta(days=10)
    async with store.uow() as uow:
        for n, (status, at) in enumerate([("processed", old), ("ignored", old), ("failed", old),
                                          ("processed", recent)]):
            uow.session.add(MailIntake(message_id=f"<m{n}@example.org>", mailbox="INBOX", status=status,
                                       raw=b"raw" if status == "failed" else None, received_at=at))
        someone = Person(name="Sam", created_at=old)
        uow.session.add(someone)
        await uow.session.flush()
        for subject, status, at in [("old closed", "closed", old), ("old open", "open", old),
                                    ("new closed", "closed", recent)]:
            ticket = Ticket(customer_id=someone.id, email="sam@example.org", subject=subject, status=status,
                            created_at=at, updated_at=at)
            uow.session.add(ticket)
            await uow.session.flush()
            uow.session.add(TicketMessage(ticket_id=ticket.id, direction="in", author="email:sam@example.org",
                                          text=f"about {subject}", created_at=at))
        await uow.commit()
    desk.clock.current = (await rows(store, Job))[0].due_at
    with caplog.at_level(logging.INFO, logger="handlers.privacy.retention"):
        assert await JobRunner(desk, desk.jobs).run_due() == 1
    assert sorted((m.status, m.received_at == recent) for m in await rows(store, MailIntake)) == [
        ("failed", False), ("processed", True)]
    assert sorted(t.subject for t in await rows(store, Ticket)) == ["new closed", "old open"]
    assert sorted(m.text for m in await rows(store, TicketMessage)) == ["about new closed", "about old open"]
    [said] = await rows(store, Audit, Audit.action == "retention_deleted")
    assert (said.detail["mails"], said.detail["tickets"], said.detail["days"]) == (2, 1, 30)
    assert "2 mail(s) and 1 closed ticket(s) older than 30 days deleted" in caplog.text
    assert sorted((j.key, j.done_at is None) for j in await rows(store, Job)) == [("2026-12-08", False),
                                                                                 ("2026-12-09", True)]


async def test_the_retention_chain_goes_on_daily_and_stops_when_turned_off(desk, store):
    await with_retention(desk, 30)
    runner = JobRunner(desk, desk.jobs)
    desk.clock.current = (await rows(store, Job))[0].due_at
    assert await runner.run_due() == 1
    keys = sorted((j.key, j.done_at is not None) for j in await rows(store, Job))
    assert keys == [("2026-12-08", True), ("2026-12-09", False)]
    async with store.uow() as uow:
        await uow.session.execute(update(Business).values(retention_days=None))
        await uow.commit()
    desk.clock.advance(days=1)
    assert await runner.run_due() == 1
    jobs = {j.key: j for j in await rows(store, Job)}
    assert set(jobs) == {"2026-12-08", "2026-12-09"} and jobs["2026-12-09"].outcome == "skipped: retention_days is off"
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(Audit)
                                        .where(Audit.action == "retention_deleted")) == 1


async def test_help_lists_mydata_for_everyone_and_forget_for_admins_only(desk, store):
    await add_admin(store, ADMIN, desk.clock.now())
    customer_help = await chat(desk, "telegram:77").send("/help")
    admin_help = await chat(desk, ADMIN, lang="de").send("/hilfe")
    assert "/mydata — everything we store about you" in customer_help[0].text and "/forget" not in customer_help[0].text
    assert "/mydata — alles, was wir über Sie speichern" in admin_help[0].text
    assert "/forget — eine Person löschen" in admin_help[0].text


async def test_mydata_goes_out_at_most_three_times_an_hour(desk, store):
    await customer(desk, store, KIM, KIM_EMAIL)
    kim = chat(desk, KIM)
    for _ in range(3):
        assert (await kim.send("/mydata"))[0].template == "privacy_mydata_sent"
        desk.clock.advance(minutes=10)
    [refused] = await kim.send("/mydata")
    assert refused.template == "privacy_mydata_too_often" and "at 9:00 AM" in refused.text
    assert len(await json_mails(store)) == 3
    desk.clock.advance(minutes=30)
    assert (await kim.send("/mydata"))[0].template == "privacy_mydata_sent"


async def test_forget_by_email_runs_each_step_after_its_code(desk, store):
    pid, _ = await rich_kim(desk, store)
    ada = "email:ada.admin@example.org"
    await add_admin(store, ada, desk.clock.now(), name="Ada Mail")

    async def by_mail(text: str):
        [asked] = await desk.handle(inbound(ada, text, clock=desk.clock))
        assert asked.template == "mail_command_code"
        return await desk.handle(inbound(ada, asked.subject.split()[0], clock=desk.clock))

    [question] = await by_mail(f"FORGET {pid}")
    assert question.template == "privacy_forget_ask" and [c.command for c in question.choices] == [
        f"forget {pid} confirm", f"forget {pid} keep"]
    assert await count(store, Person, Person.erased_at.is_not(None)) == 0
    [done] = await by_mail(f"VERGESSEN {pid} BESTÄTIGEN")
    assert done.template == "privacy_forgotten"
    assert await count(store, Person, Person.id == pid, Person.erased_at.is_not(None)) == 1


async def test_forgetting_a_staff_member_cancels_their_calendar_and_ends_their_staff_rows(desk, store):
    pid, booked = await rich_kim(desk, store)
    ada = chat(desk, ADMIN)
    await ada.send(f"/forget {LUKAS}")
    [done] = await ada.send(f"/forget {LUKAS} confirm")
    assert done.template == "privacy_forgotten" and "1 upcoming appointment" in done.text
    [massage] = await rows(store, Appointment, Appointment.id == booked)
    assert massage.status == "cancelled"
    assert [m.subject.startswith("Storniert: Massage") for m in await mails_to(store, KIM_EMAIL)][-1]
    async with store.uow() as uow:
        lukas = await uow.session.scalar(select(Appointment.staff_id).where(Appointment.id == booked))
        staff = await uow.session.get(Person, lukas)
        assert staff.name.startswith("erased-")
    assert await count(store, Address, Address.address == LUKAS) == 0
    [days] = await chat(desk, "telegram:88").send("/book Massage at Linz")  # only Anna is left: her days
    assert days.choices and {c.label.split()[0] for c in days.choices} <= {"Mon", "Wed"}  # Lukas: Tue, Thu, Fri


def file_texts(mail: Outbox) -> list[str]:
    """Each file of a mail as text: a CSV as it is, an XLSX as the text of every part of its zip."""
    texts = []
    for attachment in mail.attachments:
        data = base64.b64decode(attachment["data"])
        if data.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(data)) as book:
                data = b"".join(book.read(name) for name in book.namelist())
        texts.append(data.decode("utf-8", "replace"))
    return texts


async def test_forget_leaves_nothing_in_files_mailed_to_someone_else(desk, store):
    pid, _ = await rich_kim(desk, store)
    boss = "email:boss@example.org"
    await add_admin(store, boss, desk.clock.now(), name="Boss")
    async with store.uow() as uow:  # the export answers, as the mail intake queues them
        for line in ("export customers", "export customers xlsx", "export bookings"):
            [reply] = await desk.handle(inbound(boss, line, clock=desk.clock))
            assert reply.attachments, reply.text
            uow.session.add(Outbox(**mail_row(desk.clock.now(), "frontdesk.test", "boss@example.org",
                                              Rendered("Export", reply.text, None), None, reply.attachments)))
        await uow.commit()
    await deliver(desk)
    exports = [m for m in await mails_to(store, "boss@example.org") if m.subject == "Export"]
    files = [text for mail in exports for text in file_texts(mail)]
    assert len(files) == 3 and all(KIM_NAME in text for text in files)
    ada = Chat(desk, desk.clock, ADMIN)
    [question] = await ada.send(f"/forget {pid}")
    assert (await ada.tap(question, "Erase"))[0].template == "privacy_forgotten"
    mails = [m for m in await mails_to(store, "boss@example.org") if m.subject == "Export"]
    assert len(mails) == 3 and [file_texts(mail) for mail in mails] == [[], [], []]  # the files named Kim
