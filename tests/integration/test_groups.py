"""Group bookings against a real store (SQLite and PostgreSQL): orders, managers, seats, invitations, imports."""
from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import replace

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from handlers import admin, identity, members, welcome
from handlers.bootstrap import ensure_owners
from handlers.members import membership
from handlers.members import rules as group_rules
from handlers.messages import Attachment
from handlers.registry import Handlers
from handlers.router import Desk
from storage.models import (
    Address,
    Audit,
    BillingAddress,
    Code,
    ImportBatch,
    Member,
    Membership,
    Outbox,
    Person,
    Role,
    SeatGroup,
    SeatOrder,
    Service,
)
from tests.conftest import inbound
from tests.helpers import add_admin, count, rows, set_business

OWNER = "telegram:1001"
BUYER = "telegram:2001"
BUYER_EMAIL = "buyer@example.com"
CSV_TYPE = "text/csv"


def make_desk(store, config, clock) -> Desk:
    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                members.group_handlers()), clock)


@pytest.fixture
async def desk(store, config, clock) -> Desk:
    """A desk with an owner, a course "First Aid" at 49.90, and a buyer whose email is verified."""
    async with store.uow() as uow:
        await ensure_owners(uow, [OWNER], clock.now())
        uow.session.add(Service(name="First Aid", minutes=480, price="49.90", kind="course"))
        await uow.commit()
    await set_business(store)  # what every invoice needs of the seller
    desk = make_desk(store, config, clock)
    await desk.handle(inbound(BUYER, "/start", clock=clock))
    await add_address(store, BUYER, f"email:{BUYER_EMAIL}", clock)
    await add_billing(store, BUYER, clock)  # an invoice over 250 € names the buyer's address
    return desk


async def add_billing(store, sender: str, clock) -> None:
    async with store.uow() as uow:
        person_id = await uow.session.scalar(select(Address.person_id).where(Address.address == sender))
        uow.session.add(BillingAddress(person_id=person_id, name="Nord GmbH", address="Weg 2\n20095 Hamburg",
                                       updated_at=clock.now()))
        await uow.commit()


async def add_address(store, sender: str, address: str, clock, verified: bool = True) -> None:
    async with store.uow() as uow:
        person_id = await uow.session.scalar(select(Address.person_id).where(Address.address == sender))
        uow.session.add(Address(address=address, kind=address.split(":")[0], person_id=person_id, verified=verified,
                                created_at=clock.now()))
        await uow.commit()


async def say(desk: Desk, sender: str, text: str = "", clock=None, **extra) -> list:
    message = inbound(sender, text, clock=clock or desk.clock)
    return await desk.handle(replace(message, **extra) if extra else message)


async def click(desk: Desk, sender: str, reply, label: str, lang: str = "en") -> list:
    """Press the button labelled `label`."""
    key = next(c.key for c in reply.choices if c.label == label)
    return await desk.handle(inbound(sender, choice=key, clock=desk.clock, lang=lang))


async def the_group(store, name: str) -> SeatGroup:
    [group] = await rows(store, SeatGroup, SeatGroup.name == name)
    return group


async def buy(desk: Desk, name: str, seats: int, option: str = "group", sender: str = BUYER) -> str:
    return (await say(desk, sender, f'/group new "{name}" {seats} {option}'))[0].text


async def approve_orders(desk: Desk) -> None:
    """The owner approves every seat order waiting (above the limit of 20), by its button."""
    [listing] = await say(desk, OWNER, "/orders")
    for choice in [c for c in listing.choices if c.label.startswith("Approve")]:
        assert "is approved" in (await desk.handle(inbound(OWNER, choice=choice.key, clock=desk.clock)))[0].text


async def invitation(store, email: str) -> tuple[str, str]:
    """The deep-link payload and the code of the newest invitation mailed to `email`."""
    [mail] = (await rows(store, Outbox, Outbox.recipient == email))[-1:]
    payload = re.search(r"/start (inv-[A-Za-z0-9_-]+)", mail.text).group(1)
    return payload, mail.subject.split(":")[0]


def csv_file(text: str, name: str = "members.csv") -> Attachment:
    return Attachment(name, CSV_TYPE, text.encode("utf-8"))


# ---- buying -------------------------------------------------------------------------------------

async def test_group_new_quotes_then_buys_one_order_with_one_invoice(desk, store):
    [quote] = await say(desk, BUYER, "/group new Team Nord 3")
    assert "3 × €49.90 = €149.70" in quote.text
    assert [c.label for c in quote.choices] == ["Buy for the group", "Buy and enrol me"]
    [done] = await click(desk, BUYER, quote, "Buy for the group")
    assert "R-2026-000001" in done.text and "€149.70" in done.text and BUYER_EMAIL in done.text
    group = await the_group(store, "Team Nord")
    assert (group.seats_bought, group.seats_taken) == (3, 0)
    [order] = await rows(store, SeatOrder)
    assert (order.invoice_number, order.seats, order.total, order.group_id) == ("R-2026-000001", 3, "149.70", group.id)
    assert order.lines == [{"text": "Course seat: First Aid (group Team Nord)", "quantity": 3,
                            "unit_price": "49.90", "amount": "149.70"}]
    buyer_id = order.buyer_id
    assert await rows(store, Role, Role.person_id == buyer_id, Role.role == "manager", Role.scope == str(group.id))
    assert await count(store, Membership) == 0  # "group" only: the buyer takes no seat


async def test_the_buyer_is_mailed_the_invoice_and_the_deep_link_into_the_group(desk, store):
    await buy(desk, "Team Nord", 2)
    [mail] = await rows(store, Outbox, Outbox.recipient == BUYER_EMAIL)
    assert "R-2026-000001" in mail.subject and 'group "Team Nord"' in mail.subject
    assert re.search(r'send "/start g-[A-Za-z0-9_-]{24}" to the bot', mail.text)
    assert "Total: €99.80" in mail.text


async def test_invoice_numbers_follow_each_other_and_every_order_has_its_own(desk, store):
    await buy(desk, "A", 1)
    await buy(desk, "B", 2)
    assert "R-2026-000003" in (await say(desk, BUYER, '/seats "A" +4'))[0].text
    orders = await rows(store, SeatOrder)
    assert [(o.invoice_number, o.seats, o.total) for o in orders] == [
        ("R-2026-000001", 1, "49.90"), ("R-2026-000002", 2, "99.80"), ("R-2026-000003", 4, "199.60")]
    assert (await the_group(store, "A")).seats_bought == 5
    assert await count(store, Outbox, Outbox.subject.like("Invoice R-2026-000003%")) == 1


async def test_enroll_me_puts_the_buyer_on_a_used_seat(desk, store):
    text = await buy(desk, "Team Süd", 2, "enroll-me")
    assert "You took one of the seats yourself" in text
    group = await the_group(store, "Team Süd")
    assert group.seats_taken == 1
    [membership] = await rows(store, Membership)
    assert membership.seat_used and membership.holds_seat
    assert (await rows(store, Member, Member.person_id == membership.person_id))[0].status == "activated"


async def test_a_taken_name_a_bad_seat_count_and_an_unknown_course_are_refused(desk, store):
    await buy(desk, "Team Nord", 2)
    assert "already a group called" in await buy(desk, "team nord", 2)
    assert "is not a number of seats" in (await say(desk, BUYER, "/group new X 0 group"))[0].text
    assert "no course called" in (await say(desk, BUYER, "/group new X 2 Yoga"))[0].text
    assert await count(store, SeatOrder) == 1


async def test_several_courses_are_offered_as_buttons(desk, store):
    async with store.uow() as uow:
        uow.session.add(Service(name="Yoga", minutes=60, price="10", kind="course"))
        await uow.commit()
    [question] = await say(desk, BUYER, "/group new Team 2")
    assert [c.label for c in question.choices] == ["First Aid", "Yoga"]
    [quote] = await click(desk, BUYER, question, "Yoga")
    assert "2 × €10.00 = €20.00" in quote.text


async def test_groups_lists_the_managed_groups_with_their_seats_and_all_for_the_owner(desk, store):
    await buy(desk, "Mine", 3)
    await buy(desk, "Theirs", 1, sender=OWNER)
    await say(desk, BUYER, '/enroll Mine Kim kim@example.com')
    text = (await say(desk, BUYER, "/groups"))[0].text
    assert "Mine (First Aid): 3 bought, 1 taken, 2 free" in text and "Theirs" not in text
    owner = (await say(desk, OWNER, "/groups"))[0].text
    assert "Mine" in owner and "Theirs" in owner


# ---- the buyer's deep link ----------------------------------------------------------------------

async def test_the_group_link_binds_a_new_telegram_chat_to_the_buyer_once(desk, store):
    await buy(desk, "Team Nord", 2)
    [mail] = await rows(store, Outbox, Outbox.recipient == BUYER_EMAIL)
    payload = re.search(r"/start (g-[A-Za-z0-9_-]+)", mail.text).group(1)
    opened = (await say(desk, "telegram:3001", f"/start {payload}"))[0]
    assert 'You manage the group "Team Nord"' in opened.text
    [buyer] = await rows(store, Address, Address.address == BUYER)
    [bound] = await rows(store, Address, Address.address == "telegram:3001")
    assert bound.person_id == buyer.person_id
    assert "Team Nord" in (await say(desk, "telegram:3001", "/groups"))[0].text
    assert "not valid" in (await say(desk, "telegram:3002", f"/start {payload}"))[0].text
    assert 'You manage the group "Team Nord"' in (await say(desk, BUYER, f"/start {payload}"))[0].text


async def test_a_forged_group_link_is_not_valid(desk):
    assert "not valid" in (await say(desk, "telegram:3003", "/start g-forged0000000000000000000"))[0].text


# ---- enrolling and accepting --------------------------------------------------------------------

async def test_enroll_takes_a_seat_and_invites_a_pending_member(desk, store):
    await buy(desk, "Team Nord", 2)
    text = (await say(desk, BUYER, "/enroll Team Nord Kim Meyer Kim@Example.com"))[0].text
    assert "Kim Meyer <kim@example.com> is enrolled" in text and "2 bought, 1 taken, 1 free" in text
    [address] = await rows(store, Address, Address.address == "email:kim@example.com")
    assert not address.verified
    [member] = await rows(store, Member, Member.person_id == address.person_id)
    assert member.status == "pending" and len(member.invitation_token) == 64
    [membership] = await rows(store, Membership, Membership.person_id == address.person_id)
    assert membership.holds_seat and not membership.seat_used
    payload, code = await invitation(store, "kim@example.com")
    assert re.fullmatch(r"\d{6}", code)
    assert payload[4:] not in member.invitation_token  # only an HMAC of the link is kept
    [mail] = await rows(store, Outbox, Outbox.recipient == "kim@example.com")
    assert "or simply reply to this mail with the code" in mail.text


async def test_an_invitation_is_accepted_by_its_deep_link(desk, store):
    await buy(desk, "Team Nord", 2)
    await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com")
    payload, _ = await invitation(store, "kim@example.com")
    reply = (await say(desk, "telegram:4001", f"/start {payload}"))[0]
    assert "invitation is accepted" in reply.text and "Team Nord" in reply.text
    [address] = await rows(store, Address, Address.address == "email:kim@example.com")
    assert address.verified
    [member] = await rows(store, Member, Member.person_id == address.person_id)
    assert member.status == "activated" and member.activated_at is not None and member.invitation_token is None
    assert (await rows(store, Membership, Membership.person_id == address.person_id))[0].seat_used
    [chat] = await rows(store, Address, Address.address == "telegram:4001")
    assert chat.person_id == address.person_id  # the Telegram account now belongs to the member
    assert "not valid" in (await say(desk, "telegram:4002", f"/start {payload}"))[0].text  # single use


async def test_an_invitation_is_accepted_by_replying_with_its_code(desk, store):
    await buy(desk, "Team Nord", 2)
    await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com")
    _, code = await invitation(store, "kim@example.com")
    reply = (await say(desk, "email:kim@example.com", code))[0]
    assert "invitation is accepted" in reply.text
    [address] = await rows(store, Address, Address.address == "email:kim@example.com")
    assert address.verified
    assert (await rows(store, Member, Member.person_id == address.person_id))[0].status == "activated"
    assert (await rows(store, Membership, Membership.person_id == address.person_id))[0].seat_used


async def test_an_expired_invitation_fails_the_member_with_the_reason(desk, store, clock):
    await buy(desk, "Team Nord", 2)
    await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com")
    payload, code = await invitation(store, "kim@example.com")
    clock.advance(days=15)
    listing = (await say(desk, BUYER, "/members Team Nord"))[0].text
    assert "Kim <kim@example.com> · failed: the invitation expired" in listing and "seat not used" in listing
    [member] = await rows(store, Member)
    assert (member.status, member.failure_reason) == ("failed", "invitation_expired")
    assert "has expired" in (await say(desk, "telegram:4001", f"/start {payload}"))[0].text
    assert "has expired" in (await say(desk, "email:kim@example.com", code))[0].text
    assert (await rows(store, Member))[0].status == "failed"
    # enrolling again sends a new invitation on the same seat
    again = (await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com"))[0].text
    assert "I sent a new invitation" in again and "2 bought, 1 taken" in again
    assert (await rows(store, Member))[0].status == "pending"


async def test_an_active_member_enrolled_in_another_group_uses_the_seat_at_once(desk, store):
    await buy(desk, "A", 1)
    await buy(desk, "B", 1)
    await say(desk, BUYER, "/enroll A Kim kim@example.com")
    payload, _ = await invitation(store, "kim@example.com")
    await say(desk, "telegram:4001", f"/start {payload}")
    text = (await say(desk, BUYER, "/enroll B Kim kim@example.com"))[0].text
    assert "already active" in text
    assert all(m.seat_used for m in await rows(store, Membership))
    assert (await rows(store, Outbox, Outbox.recipient == "kim@example.com"))[-1].subject.startswith("You are now in")
    assert "already an active member" in (await say(desk, BUYER, "/enroll B Kim kim@example.com"))[0].text


async def test_enroll_without_a_free_seat_says_how_many_are_missing_and_how_to_buy(desk, store):
    await buy(desk, "Team Nord", 1)
    await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com")
    text = (await say(desk, BUYER, "/enroll Team Nord Lu lu@example.com"))[0].text
    assert "1 needed, 0 free, 1 missing" in text and 'seats "Team Nord" +1' in text
    assert await count(store, Address, Address.address == "email:lu@example.com") == 0


async def test_members_lists_name_email_status_enrolment_and_seat(desk, store, clock):
    await buy(desk, "Team Nord", 3, "enroll-me")
    await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com")
    text = (await say(desk, BUYER, "/members Team Nord"))[0].text
    assert "3 seats bought, 2 taken, 1 free" in text
    assert "Kim <kim@example.com> · invited, pending · enrolled Dec 1, 2026 · seat not used" in text
    assert f"<{BUYER_EMAIL}> · active" in text and "seat used" in text


async def test_a_long_member_list_also_comes_as_a_csv_file_with_formulas_neutralised(desk, store):
    await buy(desk, "Big", 40)
    await approve_orders(desk)  # 40 seats are above the limit of 20
    lines = "".join(f"=cmd{i};m{i}@example.com\n" for i in range(35))
    [checked] = await say(desk, BUYER, "/import Big", attachments=(csv_file("name;email\n" + lines),))
    await click(desk, BUYER, checked, "Import 35")
    [reply] = await say(desk, BUYER, "/members Big")
    assert "… and 5 more" in reply.text
    [file] = reply.attachments
    table = list(csv.reader(io.StringIO(file.data.decode("utf-8-sig")), delimiter=";"))
    assert table[0] == ["name", "email", "status", "enrolled at", "seat used"] and len(table) == 36
    assert table[1][:3] == ["'=cmd0", "m0@example.com", "invited, pending"]


# ---- removing and refunds -----------------------------------------------------------------------

async def test_remove_never_gives_a_seat_back_not_even_an_unused_one(desk, store):
    # Seed 000: "versehentlich hinzugefügt … gar nicht nutzen … Erstattung über den Support".
    await buy(desk, "Team Nord", 3)
    await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com")
    await say(desk, BUYER, "/enroll Team Nord Lu lu@example.com")
    payload, _ = await invitation(store, "lu@example.com")
    await say(desk, "telegram:4001", f"/start {payload}")  # Lu accepts: her seat is used
    unused = (await say(desk, BUYER, "/remove Team Nord kim@example.com"))[0].text
    assert "seat stays taken" in unused and "contact support" in unused and "3 bought, 2 taken" in unused
    used = (await say(desk, BUYER, "/remove Team Nord lu@example.com"))[0].text
    assert "already used and is not refunded" in used and "3 bought, 2 taken" in used
    listing = (await say(desk, BUYER, "/members Team Nord"))[0].text
    assert "3 seats bought, 2 taken (2 by removed members), 1 free" in listing
    assert await count(store, Membership) == 0
    assert "not a member" in (await say(desk, BUYER, "/remove Team Nord lu@example.com"))[0].text
    _, code = await invitation(store, "kim@example.com")
    assert "no code waiting" in (await say(desk, "email:kim@example.com", code))[0].text  # the invitation is void


async def test_refund_puts_seats_back_by_hand_with_a_reason_in_the_audit_log(desk, store):
    await buy(desk, "Team Nord", 3)
    for name in ("kim", "lu"):
        await say(desk, BUYER, f"/enroll Team Nord {name} {name}@example.com")
        payload, _ = await invitation(store, f"{name}@example.com")
        await say(desk, f"telegram:4{len(name)}", f"/start {payload}")
    await say(desk, BUYER, "/remove Team Nord kim@example.com")  # used seat: stays taken
    assert (await the_group(store, "Team Nord")).seats_taken == 2
    assert "at most 1 can be refunded" in (await say(desk, OWNER, '/refund "Team Nord" 2 mistake'))[0].text
    assert "Please give a reason" in (await say(desk, OWNER, '/refund "Team Nord" 1'))[0].text
    done = (await say(desk, OWNER, '/refund Team Nord 1 added by mistake, never attended'))[0].text
    assert "put back (added by mistake, never attended)" in done and "3 bought, 1 taken, 2 free" in done
    [entry] = await rows(store, Audit, Audit.action == "seats_refunded")
    assert entry.actor == OWNER and entry.detail["reason"] == "added by mistake, never attended"
    assert entry.detail["seats"] == 1
    # Lu still holds her seat: nothing more can go back
    assert "at most 0 can be refunded" in (await say(desk, OWNER, '/refund "Team Nord" 1 again'))[0].text


async def test_refund_is_for_support_admins_and_owners_only(desk, store, clock):
    await buy(desk, "Team Nord", 3)
    assert (await say(desk, BUYER, '/refund "Team Nord" 1 please'))[0].template == "not_allowed"
    async with store.uow() as uow:
        person = Person(name="Sam", created_at=clock.now())
        uow.session.add(person)
        await uow.session.flush()
        uow.session.add_all([Address(address="telegram:5001", kind="telegram", person_id=person.id, verified=True,
                                     created_at=clock.now()),
                             Role(person_id=person.id, role="support", scope="")])
        await uow.commit()
    assert "at most 0 can be refunded" in (await say(desk, "telegram:5001", '/refund "Team Nord" 1 x'))[0].text
    assert (await say(desk, "telegram:5001", '/members "Team Nord"'))[0].template == "not_allowed"


async def test_customers_and_managers_of_other_groups_are_refused(desk, store):
    await buy(desk, "Team Nord", 3)
    await buy(desk, "Other", 1, sender="telegram:6001")
    for text in ("/members Team Nord", "/enroll Team Nord Kim kim@example.com", "/remove Team Nord k@example.com",
                 "/import Team Nord", '/seats "Team Nord" +1', "/groups"):
        assert (await say(desk, "telegram:6002", text))[0].template == "not_allowed", text
    for text in ("/members Team Nord", "/enroll Team Nord Kim kim@example.com", '/seats "Team Nord" +1'):
        assert 'no group called "Team Nord' in (await say(desk, "telegram:6001", text))[0].text, text
    assert await count(store, Audit, Audit.action == "denied") == 6
    assert (await the_group(store, "Team Nord")).seats_taken == 0


async def test_an_admin_may_manage_but_not_buy_seats_for_a_group(desk, store, clock):
    await buy(desk, "Team Nord", 1)
    await add_admin(store, "telegram:5002", clock.now())
    assert "is enrolled" in (await say(desk, "telegram:5002", "/enroll Team Nord Kim kim@example.com"))[0].text
    assert (await say(desk, "telegram:5002", '/seats "Team Nord" +1'))[0].template == "not_allowed"
    assert "R-2026-000002" in (await say(desk, OWNER, '/seats "Team Nord" +1'))[0].text


# ---- seat arithmetic under concurrency ----------------------------------------------------------

async def test_racing_enrolments_for_the_last_seat_let_exactly_one_win(desk, store):
    await buy(desk, "Race", 3)
    await say(desk, BUYER, "/enroll Race A a@example.com")
    await say(desk, BUYER, "/enroll Race B b@example.com")
    managers = [BUYER, OWNER] * 4
    results = await asyncio.gather(*(say(desk, who, f"/enroll Race P{i} p{i}@example.com")
                                     for i, who in enumerate(managers)))
    texts = [r[0].text for r in results]
    assert sum("is enrolled" in t for t in texts) == 1
    assert sum("1 missing" in t for t in texts) == len(managers) - 1
    group = await the_group(store, "Race")
    assert (group.seats_bought, group.seats_taken) == (3, 3)
    assert await count(store, Membership) == 3
    assert await count(store, Person, Person.name.like("P%")) == 1  # the losers left nothing behind


async def test_two_removes_of_the_same_member_at_once_remove_it_once(desk, store):
    await buy(desk, "Race", 3)
    await say(desk, BUYER, "/enroll Race Kim kim@example.com")
    assert (await the_group(store, "Race")).seats_taken == 1
    results = await asyncio.gather(*(say(desk, who, "/remove Race kim@example.com") for who in (BUYER, OWNER)))
    texts = [r[0].text for r in results]
    assert sum("is no longer a member" in t for t in texts) == 1
    assert sum("not a member" in t for t in texts) == 1
    assert (await the_group(store, "Race")).seats_taken == 1  # removing never gives the seat back (seed 000)
    assert await count(store, Membership) == 0
    assert await count(store, Audit, Audit.action == "member_removed") == 1


async def test_a_remove_racing_an_accept_never_gives_a_used_seat_back(desk, store):
    await buy(desk, "Race", 3)
    await say(desk, BUYER, "/enroll Race Kim kim@example.com")
    payload, _ = await invitation(store, "kim@example.com")
    removed, accepted = await asyncio.gather(say(desk, BUYER, "/remove Race kim@example.com"),
                                             say(desk, "telegram:4001", f"/start {payload}"))
    seats = (await the_group(store, "Race")).seats_taken
    assert seats == 1  # used or not, a removed member's seat stays taken (seed 000)
    assert "is no longer a member" in removed[0].text
    assert await count(store, Membership) == 0
    assert "wrong on my side" not in accepted[0].text


async def test_two_chats_opening_the_group_link_at_once_bind_only_one(desk, store):
    await buy(desk, "Team Nord", 2)
    [mail] = await rows(store, Outbox, Outbox.recipient == BUYER_EMAIL)
    payload = re.search(r"/start (g-[A-Za-z0-9_-]+)", mail.text).group(1)
    chats = ("telegram:3001", "telegram:3002")
    results = await asyncio.gather(*(say(desk, chat, f"/start {payload}") for chat in chats))
    texts = [r[0].text for r in results]
    assert sum("You manage the group" in t for t in texts) == 1 and sum("not valid" in t for t in texts) == 1
    [buyer] = await rows(store, Address, Address.address == BUYER)
    bound = await rows(store, Address, Address.address.in_(chats), Address.person_id == buyer.person_id)
    assert len(bound) == 1


async def test_two_chats_accepting_one_invitation_at_once_activate_it_once(desk, store):
    await buy(desk, "Team Nord", 2)
    await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com")
    payload, _ = await invitation(store, "kim@example.com")
    chats = ("telegram:4001", "telegram:4002")
    results = await asyncio.gather(*(say(desk, chat, f"/start {payload}") for chat in chats))
    texts = [r[0].text for r in results]
    assert sum("invitation is accepted" in t for t in texts) == 1 and sum("not valid" in t for t in texts) == 1
    assert await count(store, Audit, Audit.action == "invitation_accepted") == 1
    [kim] = await rows(store, Address, Address.address == "email:kim@example.com")
    assert len(await rows(store, Address, Address.address.in_(chats), Address.person_id == kim.person_id)) == 1


async def test_the_database_refuses_seats_below_zero_or_above_what_was_bought(desk, store):
    await buy(desk, "Check", 2)
    for value in (3, -1):
        async with store.uow() as uow:
            with pytest.raises(IntegrityError):
                await uow.session.execute(update(SeatGroup).where(SeatGroup.name == "Check").values(seats_taken=value))
    assert (await the_group(store, "Check")).seats_taken == 0


async def test_odd_or_huge_seat_numbers_get_the_clear_refusal_not_an_error(desk, store):
    await buy(desk, "Team Nord", 2)
    huge = "9" * 5000  # more digits than int() takes from a string
    for text in (f"/group new X {huge} group", '/seats "Team Nord" +²', f'/seats "Team Nord" {huge}',
                 f'/refund "Team Nord" {huge} mistake'):
        assert "is not a number of seats" in (await say(desk, OWNER, text))[0].text, text
    assert "To buy seats for a group" in (await say(desk, BUYER, "/group new X ² group"))[0].text
    assert "To put seats back by hand" in (await say(desk, OWNER, '/refund "Team Nord" ² mistake'))[0].text
    assert (await the_group(store, "Team Nord")).seats_bought == 2 and await count(store, SeatGroup) == 1


# ---- bulk import --------------------------------------------------------------------------------

MEMBERS = ("Name;E-Mail;Telefon\n"
           "Kim Meyer;kim@example.com;+49 30 1234567\n"
           "Lu Li;lu@example.com;\n"
           "Bo;not-an-email;\n"
           "Al;al@example.com;\n"
           "Kim again;KIM@example.com;\n")


async def test_import_dry_run_then_confirm_creates_members_with_invitations(desk, store):
    await buy(desk, "Team", 5)
    await say(desk, BUYER, "/enroll Team Al al@example.com")  # already a member: skipped, not charged twice
    [checked] = await say(desk, BUYER, "/import Team", attachments=(csv_file(MEMBERS),))
    assert "2 new members" in checked.text and "1 already in the group" in checked.text
    assert "2 invalid rows" in checked.text and "seats needed 2, free 4" in checked.text
    assert [c.label for c in checked.choices] == ["Import 2"]
    [errors] = checked.attachments
    assert errors.name == "import-errors-Team.csv"
    table = list(csv.reader(io.StringIO(errors.data.decode("utf-8-sig")), delimiter=";"))
    assert table == [["row", "value", "reason"], ["4", "not-an-email", "not an email address"],
                     ["5", "al@example.com", "already in the group (skipped, not charged)"],
                     ["6", "kim@example.com", "the same email address as row 2"]]
    assert await count(store, Membership) == 1  # a dry run imports nothing
    [batch] = await rows(store, ImportBatch)
    assert batch.status == "dry_run" and len(batch.rows) == 3
    [done] = await click(desk, BUYER, checked, "Import 2")
    assert "Imported 2 members" in done.text and "1 already in the group were skipped" in done.text
    assert "5 bought, 3 taken, 2 free" in done.text
    kim = (await rows(store, Address, Address.address == "email:kim@example.com"))[0]
    [member] = await rows(store, Member, Member.person_id == kim.person_id)
    assert (member.status, member.phone) == ("pending", "+49301234567")
    assert await count(store, Outbox, Outbox.subject.like("%your invitation to \"Team\"%")) == 3
    assert await count(store, Code, Code.purpose == "invitation") == 3
    payload, _ = await invitation(store, "lu@example.com")
    assert "invitation is accepted" in (await say(desk, "telegram:4001", f"/start {payload}"))[0].text


async def test_an_import_with_too_few_seats_imports_nothing_and_says_how_many_are_missing(desk, store):
    await buy(desk, "Small", 1)
    [checked] = await say(desk, BUYER, "/import Small", attachments=(csv_file(MEMBERS),))
    assert "seats needed 3, free 1" in checked.text
    assert '2 seats missing: buy them with seats "Small" +2' in checked.text
    assert [c.label for c in checked.choices] == ["Import 3", "Buy 2 seats"]
    refused = (await click(desk, BUYER, checked, "Import 3"))[0].text
    assert "3 needed, 1 free, 2 missing" in refused and 'seats "Small" +2' in refused
    assert await count(store, Membership) == 0 and await count(store, Member) == 0
    assert await count(store, Address, Address.kind == "email") == 1  # the buyer's only
    bought = (await click(desk, BUYER, checked, "Buy 2 seats"))[0].text
    assert "R-2026-000002" in bought
    assert "Imported 3 members" in (await say(desk, BUYER, '/import "Small" confirm'))[0].text
    group = await the_group(store, "Small")
    assert (group.seats_bought, group.seats_taken) == (3, 3)


async def test_confirming_twice_imports_once(desk, store):
    await buy(desk, "Team", 9)
    [checked] = await say(desk, BUYER, "/import Team", attachments=(csv_file(MEMBERS),))
    first = await click(desk, BUYER, checked, "Import 3")
    second = await click(desk, BUYER, checked, "Import 3")
    assert "Imported 3" in first[0].text and "no checked list waiting" in second[0].text
    assert (await the_group(store, "Team")).seats_taken == 3


async def test_a_file_that_cannot_be_read_is_refused_clearly(desk, store):
    await buy(desk, "Team", 3)
    tab = (await say(desk, BUYER, "/import Team", attachments=(csv_file("Name\tE-Mail\nKim\tk@example.com\n"),)))
    assert "separated by tabs" in tab[0].text
    bomb = Attachment("list.xlsx", "application/octet-stream", b"not a zip at all")
    assert "not a real .xlsx" in (await say(desk, BUYER, "/import Team", attachments=(bomb,)))[0].text
    assert "Please attach the member list" in (await say(desk, BUYER, "/import Team"))[0].text
    assert await count(store, ImportBatch) == 0


async def test_an_import_by_email_runs_when_the_code_of_the_check_comes_back(desk, store):
    await buy(desk, "Team", 5)
    mail_sender = f"email:{BUYER_EMAIL}"
    [kept] = await say(desk, mail_sender, "import Team", attachments=(csv_file(MEMBERS),))
    code = kept.subject.split()[0]
    assert "I read the list only when you reply to this mail with the code" in kept.text
    [checked] = await say(desk, mail_sender, code)  # the round trip: now the list is read and checked
    code = checked.subject.split()[0]
    assert re.fullmatch(r"\d{6}", code) and f"reply to this mail with the code {code}" in checked.text
    assert await count(store, Membership) == 0
    [typed] = await say(desk, mail_sender, "import Team confirm")  # typed by email: a fresh code, sent back
    code = typed.subject.split()[0]
    assert f"reply to this mail with the code {code}" in typed.text
    [done] = await say(desk, mail_sender, code)
    assert "Imported 3 members" in done.text
    assert (await the_group(store, "Team")).seats_taken == 3


async def test_a_list_mailed_in_is_not_read_before_its_code_comes_back(desk, store):
    await buy(desk, "Team", 5)
    mail_sender = f"email:{BUYER_EMAIL}"
    broken = Attachment("list.xlsx", "application/octet-stream", b"not a zip at all")
    [kept] = await say(desk, mail_sender, "import Team", attachments=(broken,))
    assert "I read the list only when you reply" in kept.text and "not a real .xlsx" not in kept.text
    [batch] = await rows(store, ImportBatch)
    assert (batch.status, batch.upload, batch.rows) == ("uploaded", b"not a zip at all", [])
    code = kept.subject.split()[0]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert "not a real .xlsx" not in (await say(desk, mail_sender, wrong))[0].text  # a wrong code reads nothing
    assert "not a real .xlsx" in (await say(desk, mail_sender, code))[0].text
    [batch] = await rows(store, ImportBatch)
    assert batch.upload is None  # read once, kept no longer
    huge = Attachment("list.csv", CSV_TYPE, b"x" * (5 * 1024 * 1024 + 1))  # its size is checked at once
    assert "The file is too big" in (await say(desk, mail_sender, "import Team", attachments=(huge,)))[0].text


# ---- German, setup file, templates --------------------------------------------------------------

async def test_german_speakers_get_the_whole_flow_in_german(desk, store):
    await set_business(store, language="de")
    de = {"language_hint": "de"}
    [quote] = await say(desk, "telegram:7001", "/gruppe neu Kurs 2", **de)
    assert "2 × 49,90\xa0€ = 99,80\xa0€" in quote.text
    [done] = await click(desk, "telegram:7001", quote, "Für die Gruppe buchen", "de")
    assert "Rechnung R-2026-000001" in done.text and "keine bestätigte E-Mail-Adresse" in done.text
    enrolled = (await say(desk, "telegram:7001", "/einschreiben Kurs Kim kim@example.com", **de))[0].text
    assert "ist in „Kurs“ eingeschrieben" in enrolled
    listing = (await say(desk, "telegram:7001", "/mitglieder Kurs", **de))[0].text
    assert "eingeladen, ausstehend" in listing and "Platz nicht genutzt" in listing
    data = "Vorname;Nachname;E-Mail\nJürgen;Müller;j@example.com\nKäthe;Kruse;kaputt\n".encode("cp1252")
    [checked] = await say(desk, "telegram:7001", "/importieren Kurs",
                          attachments=(Attachment("liste.csv", CSV_TYPE, data),), **de)
    assert "1 neues Mitglied" in checked.text and "1 Platz fehlt" not in checked.text
    table = checked.attachments[0].data.decode("utf-8-sig")
    assert table.splitlines() == ["Zeile;Wert;Grund", "3;kaputt;keine E-Mail-Adresse"]
    [imported] = await click(desk, "telegram:7001", checked, "1 importieren", "de")
    assert "1 Mitglied in „Kurs“ importiert" in imported.text
    [removed] = await say(desk, "telegram:7001", "/entfernen Kurs j@example.com", **de)
    assert "Der Platz bleibt belegt" in removed.text
    [mail] = await rows(store, Outbox, Outbox.recipient == "kim@example.com")
    assert mail.subject.endswith("Ihre Einladung in „Kurs“ bei Akademie")  # invitees: the business's language


async def test_a_setup_file_marks_a_service_as_a_course(store, clock):
    from handlers.setup import SetupError, apply_setup, parse_setup

    text = ('[business]\nname = "Akademie"\ntimezone = "Europe/Berlin"\nlanguage = "de"\n\n'
            '[[services]]\nname = "Erste Hilfe"\nminutes = 480\nprice = "49.90"\nkind = "course"\n\n'
            '[[services]]\nname = "Beratung"\nminutes = 30\n')
    spec = parse_setup(text, "academy.toml")
    assert [s.kind for s in spec.services] == ["course", "appointment"]
    async with store.uow() as uow:
        await apply_setup(uow, spec, clock.now())
        await uow.commit()
    services = [(s.name, s.kind) for s in await rows(store, Service)]
    assert services == [("Erste Hilfe", "course"), ("Beratung", "appointment")]
    with pytest.raises(SetupError, match='services "Erste Hilfe" kind: "kurs" must be one of appointment, course'):
        parse_setup(text.replace('"course"', '"kurs"'), "academy.toml")


# ---- trust: what a manager may do ---------------------------------------------------------------

def accounts_desk(store, config, clock) -> Desk:

    return Desk(store, config, Handlers.combine(welcome.handlers(), identity.handlers(), admin.handlers(),
                                                members.group_handlers(), members.account_handlers()), clock)


async def test_a_manager_enrolling_known_addresses_changes_neither_their_record_nor_their_invitation(
        desk, store, config, clock):
    full = accounts_desk(store, config, clock)
    [added] = await full.handle(inbound(OWNER, "/member add Vera Opfer victim@example.com phone=+49 30 1234567 "
                                               "contract=K-1", clock=clock))
    assert "is added" in added.text, added.text
    [victim] = await rows(store, Member)
    token, expires = victim.invitation_token, victim.invitation_expires_at
    await add_address(store, OWNER, "email:boss@example.com", clock)
    owner_id = (await rows(store, Address, Address.address == OWNER))[0].person_id
    owner_name = (await rows(store, Person, Person.id == owner_id))[0].name
    await buy(desk, "Mine", 5)

    text = (await say(full, BUYER, "/enroll Mine Call +1-900-SCAM victim@example.com"))[0].text
    assert "open invitation already; it stays as it is" in text
    await say(full, BUYER, "/enroll Mine Call +1-900-SCAM boss@example.com")
    await say(full, BUYER, "/import Mine", attachments=(csv_file(
        "name;email;phone\nMal Lory;victim@example.com;+49 30 9999999\nMal Lory;boss@example.com;+49 30 8888888\n"),))

    [after] = await rows(store, Member, Member.person_id == victim.person_id)
    assert (after.invitation_token, after.invitation_expires_at, after.status) == (token, expires, "pending")
    assert (after.first_name, after.last_name, after.phone, after.contract_number) == (
        "Vera", "Opfer", "+49301234567", "K-1")
    assert (await rows(store, Person, Person.id == owner_id))[0].name == owner_name
    [owner_member] = await rows(store, Member, Member.person_id == owner_id)
    assert (owner_member.first_name, owner_member.last_name, owner_member.phone) == (None, None, None)
    # the admin's invitation still works
    [mail] = await rows(store, Outbox, Outbox.recipient == "victim@example.com", Outbox.text.contains("acc-"))
    payload = re.search(r"/start (acc-\S+)", mail.text).group(1)
    assert "activated" in (await say(full, "telegram:4401", f"/start {payload}"))[0].text
    for text in (f"/member {victim.person_id}", "/member victim@example.com", f"/member {owner_id}",
                 f"/member set {victim.person_id} first=Call last=SCAM", f"/member set {owner_id} mobile=+19005550100",
                 "/member list", "/credentials Mine", f"/credentials {victim.person_id}"):
        [refused] = await say(full, BUYER, text)
        reply = refused.text
        assert refused.template == "not_allowed" and "Vera" not in reply and "1234567" not in reply, text
    [final] = await rows(store, Member, Member.person_id == victim.person_id)
    assert (final.first_name, final.mobile) == ("Vera", None)


async def test_only_support_or_the_owner_refund_the_seat_of_a_removed_member(desk, store, clock):
    await buy(desk, "Team Nord", 2)
    await say(desk, BUYER, "/enroll Team Nord Kim kim@example.com")
    await say(desk, BUYER, "/remove Team Nord kim@example.com")
    assert (await the_group(store, "Team Nord")).seats_taken == 1
    await add_admin(store, "telegram:5002", clock.now())
    for who in (BUYER, "telegram:5002"):
        assert (await say(desk, who, '/refund "Team Nord" 1 mistake'))[0].template == "not_allowed"
    done = (await say(desk, OWNER, '/refund "Team Nord" 1 enrolled by mistake'))[0].text
    assert "2 bought, 0 taken, 2 free" in done


# ---- trust: seat orders, invitations, names -----------------------------------------------------

async def test_a_big_order_waits_for_an_admin_and_buys_nothing_until_approved(desk, store):
    text = await buy(desk, "Big", 50)
    assert "order #1" in text and "more than 20 seats wait for our approval" in text
    group = await the_group(store, "Big")
    assert (group.seats_bought, group.seats_taken) == (0, 0)
    [order] = await rows(store, SeatOrder)
    assert (order.status, order.invoice_number) == ("pending", None)
    assert "1 needed, 0 free" in (await say(desk, BUYER, "/enroll Big Kim kim@example.com"))[0].text
    assert await count(store, Outbox, Outbox.recipient == BUYER_EMAIL) == 0
    assert (await say(desk, BUYER, "/orders"))[0].template == "not_allowed"
    assert (await say(desk, BUYER, "/order approve 1"))[0].template == "not_allowed"

    [listing] = await say(desk, OWNER, "/orders")
    assert '#1 · "Big" · 50 seats · €2,495.00' in listing.text
    assert [c.label for c in listing.choices] == ["Approve #1", "Reject #1"]
    done = (await click(desk, OWNER, listing, "Approve #1"))[0].text
    assert "Order #1 is approved" in done and "50 seats" in done and "R-2026-000001" in done and BUYER_EMAIL in done
    assert (await the_group(store, "Big")).seats_bought == 50
    [mail] = await rows(store, Outbox, Outbox.recipient == BUYER_EMAIL)
    assert "R-2026-000001" in mail.subject and re.search(r'send "/start g-[A-Za-z0-9_-]{24}"', mail.text)
    [notice] = await rows(store, Outbox, Outbox.recipient == BUYER)
    assert "approved" in notice.text
    assert "no seat order #1 waiting" in (await say(desk, OWNER, "/order approve 1"))[0].text
    assert "is enrolled" in (await say(desk, BUYER, "/enroll Big Kim kim@example.com"))[0].text


async def test_more_seats_above_the_limit_wait_too_and_a_rejected_order_buys_nothing(desk, store):
    await set_business(store, max_seats_without_approval=5)
    assert "Done" in await buy(desk, "Team", 5)
    assert "more than 5 seats wait" in (await say(desk, BUYER, '/seats "Team" +6'))[0].text
    assert (await the_group(store, "Team")).seats_bought == 5
    rejected = (await say(desk, OWNER, "/order reject 2 not paid"))[0].text
    assert "is rejected (not paid)" in rejected
    assert (await the_group(store, "Team")).seats_bought == 5
    [notice] = await rows(store, Outbox, Outbox.recipient == BUYER)
    assert "was not approved: not paid" in notice.text
    assert [o.invoice_number for o in await rows(store, SeatOrder)] == ["R-2026-000001", None]
    await add_billing(store, OWNER, desk.clock)  # 30 seats cost more than 250 €: the invoice names the buyer
    assert "R-2026-000002" in (await say(desk, OWNER, '/seats "Team" +30'))[0].text  # the owner's own order


async def test_invitations_per_buyer_and_day_are_capped(desk, store, clock):
    await buy(desk, "Many", 20)
    await buy(desk, "More", 20)
    async with store.uow() as uow:  # as if approved: enough seats to try
        await uow.session.execute(update(SeatGroup).values(seats_bought=250))
        await uow.commit()
    people = [f"P{i};p{i}@example.com\n" for i in range(membership.INVITATIONS_PER_DAY + 1)]
    [checked] = await say(desk, BUYER, "/import Many", attachments=(csv_file("name;email\n" + "".join(people)),))
    refused = (await click(desk, BUYER, checked, f"Import {membership.INVITATIONS_PER_DAY + 1}"))[0].text
    assert "at most 200 a day (200 left today)" in refused
    assert await count(store, Membership) == 0 and await count(store, Outbox, Outbox.subject.contains("invit")) == 0
    [checked] = await say(desk, BUYER, "/import Many", attachments=(csv_file("name;email\n" + "".join(people[:199])),))
    assert "Imported 199 members" in (await click(desk, BUYER, checked, "Import 199"))[0].text
    assert "is enrolled" in (await say(desk, BUYER, "/enroll More Al al@example.com"))[0].text
    assert "(0 left today)" in (await say(desk, BUYER, "/enroll More Bo bo@example.com"))[0].text
    assert "is enrolled" in (await say(desk, OWNER, "/enroll More Bo bo@example.com"))[0].text  # admins: no cap
    clock.advance(days=1, seconds=1)
    assert "is enrolled" in (await say(desk, BUYER, "/enroll More Cy cy@example.com"))[0].text


@pytest.mark.parametrize("name, problem", [
    ("paypal.com-verify", "looks like a web or mail address"), ("https://x.example", "web or mail address"),
    ("Team\u202eNord", "invisible or control characters"), ("Team\u200bNord", "invisible or control characters"),
    ("Kurs\x07", "invisible or control characters"), ("x" * 61, "longer than 60 characters"),
    ('Team"Nord', "quotation marks"),
])
async def test_group_names_are_short_printable_text_without_addresses(desk, store, name, problem):
    text = (await say(desk, BUYER, f"/group new {group_rules.quote(name) if ' ' in name else name} 2 group"))[0].text
    assert "cannot be a group name" in text and problem in text
    assert await count(store, SeatGroup) == 0


async def test_a_name_that_looks_like_an_existing_group_is_refused(desk, store):
    await buy(desk, "Team Nord", 2)
    for name in ("Теам Nord", "team-nord", "TEAM  NORD", "Team Nörd", "Tearn Nord"):
        text = await buy(desk, name, 2)
        assert 'looks too much like the group "Team Nord"' in text or "already a group" in text, name
    assert await count(store, SeatGroup) == 1
    assert "Done" in await buy(desk, "Team Süd", 2)


async def test_every_word_that_takes_a_group_reads_the_same_quoted_names(desk, store, config, clock):
    await buy(desk, "Rückenfit Süd", 3, sender=OWNER)
    for quoted in ('"Rückenfit Süd"', "„Rückenfit Süd“", "“Rückenfit Süd”", "'Rückenfit Süd'", "«Rückenfit Süd»"):
        assert '"Rückenfit Süd": 3 seats bought' in (await say(desk, OWNER, f"/members {quoted}"))[0].text, quoted
    assert "is enrolled" in (await say(desk, OWNER, "/enroll „Rückenfit Süd“ Kim O'Brien kim@example.com"))[0].text
    payload, _ = await invitation(store, "kim@example.com")
    await say(desk, "telegram:4001", f"/start {payload}")
    full = accounts_desk(store, config, clock)
    [summary, *_] = await full.handle(inbound(OWNER, "/credentials „Rückenfit Süd“", clock=clock))
    assert "Rückenfit Süd" in summary.text and "1" in summary.text and "not available" not in summary.text
    [summary, *_] = await full.handle(inbound(OWNER, "/credentials 'rückenfit süd' code", clock=clock))
    assert "Rückenfit Süd" in summary.text
    assert "no longer a member" in (await say(desk, OWNER, "/remove «Rückenfit Süd» kim@example.com"))[0].text


async def test_the_database_refuses_group_names_that_differ_only_in_case(desk, store):
    from storage.models import CustomerGroup

    for model, extra in ((SeatGroup, {"created_by": OWNER, "created_at": desk.clock.now()}), (CustomerGroup, {})):
        async with store.uow() as uow:
            uow.session.add(model(name="VIP", **extra))
            await uow.commit()
        async with store.uow() as uow:
            with pytest.raises(IntegrityError):
                uow.session.add(model(name="vip", **extra))
                await uow.session.flush()


async def test_vip_and_vip_bought_at_once_give_one_group(desk, store):
    other = "telegram:2002"
    await say(desk, other, "/start")
    results = await asyncio.gather(buy(desk, "VIP", 2, sender=BUYER), buy(desk, "vip", 2, sender=other))
    assert sum("Done" in t for t in results) == 1 and sum("already a group" in t for t in results) == 1, results
    assert await count(store, SeatGroup) == 1 and await count(store, SeatOrder) == 1
