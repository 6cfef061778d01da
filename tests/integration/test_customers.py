"""Customers through the router against a real store (SQLite and PostgreSQL): finding, the card,
the admin's record (pseudonyms, notes, groups, offline customers) and customers' own changes."""
import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, insert, select

from handlers import admin, customers, identity, welcome
from handlers.appointments import claim
from handlers.registry import Handlers
from handlers.router import Desk
from handlers.setup import apply_setup
from storage.models import (
    Address,
    Appointment,
    Audit,
    CustomerGroup,
    Location,
    Outbox,
    Person,
    ProfileChange,
    Service,
)
from tests.conftest import inbound
from tests.helpers import practice_setup

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "practice.toml"
OWNER, LUKAS = "telegram:1001", "telegram:1002"


def make_desk(store, config, clock) -> Desk:
    parts = (welcome.handlers(), identity.handlers(), admin.handlers(), customers.handlers())
    return Desk(store, config, Handlers.combine(*parts), clock)


async def practice(store, config, clock) -> Desk:
    """The demo practice: Anna (owner, 1001), Lukas (provider, 1002), Eva (assistant, 1003)."""
    async with store.uow() as uow:
        await apply_setup(uow, practice_setup(), clock.now())
        await uow.commit()
    return make_desk(store, config, clock)


async def say(desk, sender, text, *, clock, lang="en"):
    return (await desk.handle(inbound(sender, text, clock=clock, lang=lang)))[0]


async def text_of(desk, sender, text, *, clock, lang="en") -> str:
    return (await say(desk, sender, text, clock=clock, lang=lang)).text


async def person_id(store, address: str) -> int:
    async with store.uow() as uow:
        return await uow.session.scalar(select(Address.person_id).where(Address.address == address))


async def customer_with(store, desk, clock, address: str, name: str, email: str | None = None) -> int:
    """A customer who wrote in from `address` and gave a name (and optionally proved an email)."""
    await desk.handle(inbound(address, f"/name {name}", clock=clock))
    if email:
        await verify(store, desk, clock, address, email)
    return await person_id(store, address)


async def verify(store, desk, clock, address: str, email: str) -> str:
    await desk.handle(inbound(address, f"/email {email}", clock=clock))
    async with store.uow() as uow:
        code = (await uow.session.scalar(select(Outbox.subject).order_by(Outbox.id.desc()).limit(1))).split()[0]
    return (await desk.handle(inbound(address, code, clock=clock)))[0].text


async def appointment(store, clock, customer: int, start: datetime, *, status="confirmed", note=None,
                      minutes=60) -> int:
    """An appointment with Lukas (Massage, Linz), claimed like any booking."""
    async with store.uow() as uow:
        staff = await uow.session.scalar(select(Address.person_id).where(Address.address == LUKAS))
        service = await uow.session.scalar(select(Service.id).where(Service.name == "Massage"))
        location = await uow.session.scalar(select(Location.id).where(Location.name == "Linz"))
        row = Appointment(service_id=service, location_id=location, staff_id=staff, customer_id=customer,
                          start_at=start, end_at=start + timedelta(minutes=minutes), status=status,
                          hold_expires_at=clock.now() + timedelta(minutes=10) if status == "held" else None,
                          sequence=0, channel="telegram", created_by="test", created_at=clock.now(), note=note)
        await claim(uow, row, clock.now())
        await uow.commit()
        return row.id


async def actions(store) -> list[tuple[str, str, str | None]]:
    async with store.uow() as uow:
        rows = await uow.session.execute(select(Audit.actor, Audit.action, Audit.subject).order_by(Audit.id))
        return [tuple(r) for r in rows]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# ---- finding ------------------------------------------------------------------------------------

async def test_admin_finds_customers_by_name_email_or_group_but_not_the_team(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim Novak", "kim@example.com")
    max_ = await customer_with(store, desk, clock, "telegram:6", "Max Muster")
    await appointment(store, clock, kim, utc(2026, 12, 7, 8))
    await text_of(desk, OWNER, f"/customer group {max_} Privat versichert", clock=clock)

    listing = await text_of(desk, OWNER, "/customers", clock=clock)
    assert f"#{kim} Kim Novak · kim@example.com · 1 upcoming" in listing
    assert f"#{max_} Max Muster · groups: Privat versichert · 0 upcoming" in listing
    assert "Anna Berger" not in listing and "Lukas" not in listing  # staff are not customers
    assert "Groups: Privat versichert (1)" in listing
    assert "Kim" in await text_of(desk, OWNER, "/customers NOVAK", clock=clock)
    assert "Kim" in await text_of(desk, OWNER, "/kunden EXAMPLE.com", clock=clock)
    by_group = await text_of(desk, OWNER, "/customers privat VERSICHERT", clock=clock)
    assert "Max Muster" in by_group and "Kim" not in by_group
    assert 'No customer matches "Anna"' in await text_of(desk, OWNER, "/customers Anna", clock=clock)


async def test_search_ignores_case_beyond_ascii(store, config, clock):
    desk = await practice(store, config, clock)
    zoe = await customer_with(store, desk, clock, "telegram:5", "Zoë Özdemir-Müller")
    await text_of(desk, OWNER, f"/customer group {zoe} Ärztekammer", clock=clock)
    for query in ("özdemir", "ÖZDEMIR", "MÜLLER", "zoË"):
        assert "Zoë Özdemir-Müller" in await text_of(desk, OWNER, f"/customers {query}", clock=clock), query
    assert "Zoë" in await text_of(desk, OWNER, "/customers ärztekammer", clock=clock)


async def test_typed_wildcards_match_literally(store, config, clock):
    desk = await practice(store, config, clock)
    await customer_with(store, desk, clock, "telegram:5", "Kim Novak")
    assert "No customer matches" in await text_of(desk, OWNER, "/customers %", clock=clock)
    assert "No customer matches" in await text_of(desk, OWNER, "/customers K_m", clock=clock)


async def test_long_lists_stop_at_twenty_with_a_hint_and_buttons_open_cards(store, config, clock):
    desk = await practice(store, config, clock)
    async with store.uow() as uow:
        await uow.session.execute(insert(Person), [{"name": f"Kunde {i:02d}", "created_at": clock.now()}
                                                   for i in range(25)])
        await uow.commit()
    reply = await say(desk, OWNER, "/customers kunde", clock=clock)
    assert "Kunde 19" in reply.text and "Kunde 20" not in reply.text
    assert "Only the first 20 are shown" in reply.text
    assert len(reply.choices) == 20
    card = (await desk.handle(inbound(OWNER, choice=reply.choices[0].key, clock=clock)))[0].text
    assert card.startswith("Customer #") and "Kunde 00" in card


# ---- the card -----------------------------------------------------------------------------------

async def test_card_shows_addresses_groups_notes_and_appointments_with_their_notes(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim Novak", "kim@example.com")
    coming = await appointment(store, clock, kim, utc(2026, 12, 7, 8), note="bring the X-ray")
    old = await appointment(store, clock, kim, utc(2026, 11, 3, 8))
    await appointment(store, clock, kim, utc(2026, 11, 10, 8), status="cancelled")
    await text_of(desk, OWNER, f"/customer note {kim} prefers mornings", clock=clock)
    await text_of(desk, OWNER, f"/customer group {kim} Stammkunden", clock=clock)
    await text_of(desk, OWNER, f"/booking note {old} knee much better", clock=clock)

    card = await text_of(desk, OWNER, f"/customer {kim}", clock=clock)
    assert card.startswith(f"Customer #{kim}: Kim Novak")
    assert "Telegram: 5" in card and "Email: kim@example.com (verified)" in card
    assert "Groups: Stammkunden" in card
    assert "Anna Berger: prefers mornings" in card  # the author by name
    upcoming, past = card.split("Past appointments:")
    # 08:00 UTC is 09:00 in Vienna (winter time); the card shows the business's time
    assert f"#{coming} Dec 7, 2026 9:00\u202fAM–10:00\u202fAM · Massage · Lukas Huber · Linz · confirmed" in upcoming
    assert "Note: bring the X-ray" in upcoming
    assert f"#{old} Nov 3, 2026" in past and "Note: knee much better" in past and "cancelled" in past


async def test_card_speaks_german(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim Novak")
    await appointment(store, clock, kim, utc(2026, 12, 7, 8))
    await text_of(desk, OWNER, "/language de", clock=clock)
    card = await text_of(desk, OWNER, f"/kunde {kim}", clock=clock)
    assert f"Kunde #{kim}: Kim Novak" in card and "07.12.2026 09:00–10:00" in card and "bestätigt" in card
    assert "Vergangene Termine: keine" in card


async def test_staff_see_customers_but_only_admins_change_them(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim Novak")
    assert "Kim Novak" in await text_of(desk, LUKAS, "/customers", clock=clock)
    assert "Kim Novak" in await text_of(desk, LUKAS, f"/customer {kim}", clock=clock)
    refused = await say(desk, LUKAS, f"/customer rename {kim} Someone", clock=clock)
    assert refused.template == "not_allowed" and '"customer rename"' in refused.text
    refused = await say(desk, LUKAS, "/booking note 1 x", clock=clock)
    assert refused.template == "not_allowed" and '"booking"' in refused.text
    assert ("telegram:1002", "denied", "customer rename") in await actions(store)
    customer_help = await text_of(desk, "telegram:5", "/help", clock=clock)
    assert "/customers" not in customer_help and "/name" in customer_help
    assert (await say(desk, "telegram:5", "/customers", clock=clock)).template == "not_allowed"


async def test_by_email_reading_answers_at_once_but_a_change_waits_for_the_code(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim Novak")
    anna = "email:anna@physio-am-park.example"
    assert f"#{kim} Kim Novak" in await text_of(desk, anna, "customers kim", clock=clock)
    asked = await say(desk, anna, f"customer rename {kim} Spoofed Name", clock=clock)
    assert asked.subject.split()[0].isdigit() and f"CUSTOMER rename {kim} Spoofed Name" in asked.subject
    async with store.uow() as uow:
        assert (await uow.session.get(Person, kim)).name == "Kim Novak"  # nothing changes before the code returns
    done = await text_of(desk, anna, asked.subject.split()[0], clock=clock)
    assert 'is now called "Spoofed Name"' in done


# ---- the admin's record -------------------------------------------------------------------------

async def test_admin_fixes_a_pseudonym_and_the_log_says_who(store, config, clock):
    desk = await practice(store, config, clock)
    duck = await customer_with(store, desk, clock, "telegram:5", "Donald Duck")
    reply = await text_of(desk, OWNER, f"/customer rename {duck}   Max   Mustermann ", clock=clock)
    assert 'is now called "Max Mustermann" (was "Donald Duck")' in reply
    assert f"#{duck} Max Mustermann" in await text_of(desk, OWNER, "/customers muster", clock=clock)
    assert (OWNER, "customer_renamed", f"customer:{duck}") in await actions(store)


async def test_a_customer_can_be_in_several_groups_and_leave_one(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim Novak")
    assert 'New group "Privat" created' in await text_of(desk, OWNER, f"/customer group {kim} Privat", clock=clock)
    assert 'New group "Rücken"' in await text_of(desk, OWNER, f"/customer group #{kim} Rücken", clock=clock)
    max_ = await customer_with(store, desk, clock, "telegram:6", "Max")
    assert "New group" not in await text_of(desk, OWNER, f"/customer group {max_} privat", clock=clock)
    assert 'already in "Privat"' in await text_of(desk, OWNER, f"/customer group {kim} privat", clock=clock)
    assert "Groups: Privat, Rücken" in await text_of(desk, OWNER, f"/customer {kim}", clock=clock)
    assert 'no longer in "Privat"' in await text_of(desk, OWNER, f"/customer ungroup {kim} PRIVAT", clock=clock)
    assert 'is not in "Privat"' in await text_of(desk, OWNER, f"/customer ungroup {kim} Privat", clock=clock)
    assert "Groups: Privat (1), Rücken (1)" in await text_of(desk, OWNER, "/customers", clock=clock)
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(CustomerGroup)) == 2


async def test_vip_and_vip_created_at_once_are_one_group(store, config, clock):
    """Group names are unique regardless of case in the database itself (PostgreSQL runs these in parallel)."""
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim Novak")
    max_ = await customer_with(store, desk, clock, "telegram:6", "Max")
    texts = await asyncio.gather(text_of(desk, OWNER, f"/customer group {kim} VIP", clock=clock),
                                 text_of(desk, OWNER, f"/customer group {max_} vip", clock=clock))
    assert sum("New group" in t for t in texts) == 1, texts
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(CustomerGroup)) == 1
    listing = await text_of(desk, OWNER, '/customers "VIP"', clock=clock)
    assert "Kim Novak" in listing and "Max" in listing
    assert 'New group "Privat versichert"' in await text_of(desk, OWNER, f'/customer group {kim} „Privat versichert“',
                                                           clock=clock)
    assert 'no longer in "Privat versichert"' in await text_of(desk, OWNER,
                                                               f'/customer ungroup {kim} "privat versichert"',
                                                               clock=clock)


async def test_booking_note_is_set_replaced_and_removed(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim Novak")
    booked = await appointment(store, clock, kim, utc(2026, 12, 7, 8))
    assert "Note saved" in await text_of(desk, OWNER, f"/booking note {booked} first", clock=clock)
    await text_of(desk, OWNER, f"/buchung notiz {booked} second", clock=clock)
    assert "Note: second" in await text_of(desk, OWNER, f"/customer {kim}", clock=clock)
    assert "Note removed" in await text_of(desk, OWNER, f"/booking note {booked} -", clock=clock)
    async with store.uow() as uow:
        assert (await uow.session.get(Appointment, booked)).note is None
        olds = (await uow.session.scalars(select(Audit.detail).where(Audit.action == "booking_noted")
                                          .order_by(Audit.id))).all()
    assert [d["old"] for d in olds] == [None, "first", "second"]


async def test_offline_customer_email_gives_nobody_access_to_the_record(store, config, clock):
    desk = await practice(store, config, clock)
    created = await text_of(desk, OWNER, "/customer new Max Muster max@Example.com", clock=clock)
    assert 'added with max@example.com' in created and "not verified" in created
    async with store.uow() as uow:
        row = await uow.session.scalar(select(Address).where(Address.address == "email:max@example.com"))
        max_ = row.person_id
    assert not row.verified
    assert "namesake" not in created
    again = await text_of(desk, OWNER, "/customer new Max Muster", clock=clock)
    assert f"there is already #{max_} with the same name" in again
    taken = await text_of(desk, OWNER, "/customer new Other Person MAX@example.com", clock=clock)
    assert f"already in use by customer #{max_}" in taken
    staff_mail = await text_of(desk, OWNER, "/customer new X lukas@physio-am-park.example", clock=clock)
    assert "already in use, so it stays there" in staff_mail  # a team address is not shown as a customer

    # Someone proves the mailbox from a chat: they get the address for themselves, never Max's record.
    assert "is confirmed" in await verify(store, desk, clock, "telegram:9", "max@example.com")
    stranger = await person_id(store, "telegram:9")
    assert stranger != max_ and await person_id(store, "email:max@example.com") == stranger
    assert (await say(desk, "telegram:9", f"/customer {max_}", clock=clock)).template == "not_allowed"
    assert ("telegram:9", "address_claimed", "email:max@example.com") in await actions(store)


# ---- customers' own changes ---------------------------------------------------------------------

async def test_first_name_is_taken_and_a_later_change_waits_for_an_admin(store, config, clock):
    desk = await practice(store, config, clock)
    assert "Thank you, Donald Duck." in await text_of(desk, "telegram:5", "/name Donald Duck", clock=clock)
    kim = await person_id(store, "telegram:5")
    await text_of(desk, OWNER, f"/customer rename {kim} Kim Novak", clock=clock)
    pending = await text_of(desk, "telegram:5", "/name Kimberly Novak", clock=clock)
    assert "passed your name" in pending and "Kim Novak" not in pending  # the admin's correction stays private
    assert f"#{kim} Kim Novak" in await text_of(desk, OWNER, "/customers", clock=clock)  # record unchanged

    changes = await say(desk, OWNER, "/changes", clock=clock)
    assert f'customer #{kim} Kim Novak · name: "Kim Novak" → "Kimberly Novak"' in changes.text
    accept_button = next(c for c in changes.choices if c.command.startswith("accept"))
    done = (await desk.handle(inbound(OWNER, choice=accept_button.key, clock=clock)))[0].text
    assert f'the name of customer #{kim} is now "Kimberly Novak"' in done
    assert "no longer waiting (it was accepted)" in await text_of(desk, OWNER, f"/{accept_button.command}",
                                                                   clock=clock)
    assert "No changes by customers are waiting" in await text_of(desk, OWNER, "/changes", clock=clock)
    log = await actions(store)
    assert ("telegram:5", "name_change_proposed", f"customer:{kim}") in log
    assert (OWNER, "change_accepted", f"customer:{kim}") in log


async def test_a_newer_change_supersedes_and_ignore_keeps_the_record(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim")
    await text_of(desk, "telegram:5", "/name Kimmy", clock=clock)
    await text_of(desk, "telegram:5", "/name Kim N.", clock=clock)
    async with store.uow() as uow:
        first, second = (await uow.session.scalars(select(ProfileChange).order_by(ProfileChange.id))).all()
    assert (first.status, second.status) == ("superseded", "pending")
    assert "the customer changed it again" in await text_of(desk, OWNER, f"/accept {first.id}", clock=clock)
    assert "keeps its name" in await text_of(desk, OWNER, f"/ignore {second.id}", clock=clock)
    assert f"#{kim} Kim ·" in await text_of(desk, OWNER, "/customers", clock=clock)
    assert (OWNER, "change_ignored", f"customer:{kim}") in await actions(store)


async def test_a_second_verified_email_is_a_change_and_accepting_replaces_the_old(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim", "old@example.com")
    async with store.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(ProfileChange)) == 0  # first email: no change
    await verify(store, desk, clock, "telegram:5", "new@example.com")
    card = await say(desk, OWNER, f"/customer {kim}", clock=clock)
    assert "new@example.com (verified) — their own change, waiting for a decision" in card.text
    assert f"#{kim} Kim · old@example.com ·" in await text_of(desk, OWNER, "/customers", clock=clock)
    assert [c.label for c in card.choices][:1] and card.choices[0].command.startswith("accept")
    await desk.handle(inbound(OWNER, choice=card.choices[0].key, clock=clock))
    async with store.uow() as uow:
        emails = (await uow.session.scalars(select(Address.address).where(Address.person_id == kim,
                                                                          Address.kind == "email"))).all()
    assert emails == ["email:new@example.com"]
    assert f"#{kim} Kim · new@example.com ·" in await text_of(desk, OWNER, "/customers", clock=clock)


async def test_an_ignored_email_change_stays_out_of_the_record(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim", "old@example.com")
    await verify(store, desk, clock, "telegram:5", "new@example.com")
    async with store.uow() as uow:
        change = await uow.session.scalar(select(ProfileChange.id))
    await text_of(desk, OWNER, f"/ignore {change}", clock=clock)
    assert "new@example.com (verified) — their own change, not taken into the record" in await text_of(
        desk, OWNER, f"/customer {kim}", clock=clock)
    assert f"#{kim} Kim · old@example.com ·" in await text_of(desk, OWNER, "/customers", clock=clock)


# ---- bad input ----------------------------------------------------------------------------------

async def test_bad_input_gets_clear_refusals_and_changes_nothing(store, config, clock):
    desk = await practice(store, config, clock)
    kim = await customer_with(store, desk, clock, "telegram:5", "Kim")
    lukas = await person_id(store, LUKAS)
    cases = {
        "/customer": "Which customer?",
        "/customer 999": "There is no customer #999",
        f"/customer {lukas}": f"There is no customer #{lukas}",  # staff are not customers
        "/customer 99999999999": "There is no customer #0",
        "/customer kim": '"kim" is not a number',
        f"/customer rename {kim}": 'Please give a name',
        f"/customer rename {kim} " + "x" * 201: "too long: 201 characters, at most 200",
        f"/customer note {kim}": "The note is empty",
        f"/customer note {kim} " + "y" * 2001: "at most 2000",
        f"/customer group {kim}": "Please name the group",
        f"/customer ungroup {kim} Nowhere": 'There is no group "Nowhere"',
        "/customer new": "Please give a name",
        "/customer new Kim not-an-email@": "does not look like an email",
        "/booking": "/booking note ID TEXT",
        "/booking note 77 hello": "There is no appointment #77",
        "/booking note x hello": '"x" is not a number',
        "/accept 5": "There is no change #5",
        "/ignore": '"" is not a number',
        "/name": "Please give a name",
    }
    for typed, expected in cases.items():
        assert expected in await text_of(desk, OWNER, typed, clock=clock), typed
    assert "Bitte nennen Sie einen Namen" in await text_of(desk, "telegram:5", "/name   ", clock=clock, lang="de")
    async with store.uow() as uow:
        assert (await uow.session.get(Person, kim)).name == "Kim"
        assert await uow.session.scalar(select(func.count()).select_from(ProfileChange)) == 0
